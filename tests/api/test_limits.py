"""Oversized input is refused whole, at once, in a small answer: no error per item, no copy
of a shared value per message.

Each attack is what a review did for real (100,000 ids, 10,000 template keys). The answer
must be small (asserted) and fast (printed, not asserted: the machine's load is not ours).
"""

import json
import time
from decimal import Decimal

import pytest

from harness.academies import make_template
from messaging.api.serializers import (
    MAX_ITEM_ERRORS,
    MAX_RECIPIENT_STUDENTS,
    MAX_REPLACEMENT_KEY_LENGTH,
    MAX_REPLACEMENT_VALUE_LENGTH,
    MAX_REPLACEMENTS,
)
from messaging.models import Chunk, Message, SendRequest
from messaging.pipeline.delivery import _outgoing
from tests.api.conftest import assert_refusal, send_body

SEND_URL = "/api/v1/messages/send"
PREVIEW_URL = "/api/v1/messages/preview"
SMALL_ANSWER = 10_000  # bytes


def _timed_post(api, url: str, payload: dict, what: str):
    api.post(url, {}, format="json")  # warm up: the first request of a process loads translations
    body = json.dumps(payload)
    started = time.perf_counter()
    response = api.post(url, body, content_type="application/json")
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"\n{what}: {len(body):,} bytes in, {len(response.content):,} bytes out, {elapsed_ms:.1f} ms")
    assert len(response.content) < SMALL_ANSWER, len(response.content)
    return response


@pytest.mark.parametrize("url", [SEND_URL, PREVIEW_URL])
def test_100000_student_ids_are_refused_whole_in_a_small_answer(academy, api, url):
    response = _timed_post(api, url, send_body([0] * 100_000), "100,000 zeros")

    body = assert_refusal(response, 400, "too_many_items")
    assert (body["field"], body["count"], body["limit"]) == ("student_ids", 100_000, MAX_RECIPIENT_STUDENTS)


def test_a_list_within_the_limit_reports_only_a_few_bad_items(academy, api):
    response = _timed_post(api, SEND_URL, send_body([0] * MAX_RECIPIENT_STUDENTS), "10,000 zeros")

    body = assert_refusal(response, 400, "invalid_request")
    assert len(body["errors"]["student_ids"]) == MAX_ITEM_ERRORS


def test_10000_template_keys_are_refused_before_anything_is_stored(academy, api):
    replacements = {f"k{i}": "x" * 10 for i in range(10_000)}

    response = _timed_post(api, SEND_URL, send_body(academy.student_ids, alimtalk_replacements=replacements),
                           "10,000 replacement keys")

    body = assert_refusal(response, 400, "too_many_items")
    assert (body["field"], body["limit"]) == ("alimtalk_replacements", MAX_REPLACEMENTS)
    assert SendRequest.objects.count() == Message.objects.count() == 0


def test_keys_the_text_does_not_use_are_refused_and_named(academy, api):
    response = api.post(SEND_URL, send_body(academy.student_ids, alimtalk_replacements={"반": "A", "unused": "x"}),
                        format="json")

    body = assert_refusal(response, 400, "unused_variable")
    assert body["variables"] == ["unused", "반"]
    assert SendRequest.objects.count() == 0


@pytest.mark.parametrize(
    "replacements",
    [
        pytest.param({"k" * (MAX_REPLACEMENT_KEY_LENGTH + 1): "x"}, id="key-too-long"),
        pytest.param({"반": "x" * (MAX_REPLACEMENT_VALUE_LENGTH + 1)}, id="value-too-long"),
    ],
)
def test_overlong_keys_and_values_are_invalid_request(academy, api, replacements):
    response = api.post(SEND_URL, send_body(academy.student_ids, alimtalk_replacements=replacements), format="json")

    body = assert_refusal(response, 400, "invalid_request")
    assert "alimtalk_replacements" in body["errors"]


def test_shared_variables_are_stored_once_and_merged_into_each_outgoing_message(academy, api, broker):
    make_template(academy.tenant, template_id="TPL_CLASS", content="#{이름} 학생의 #{반} 수업: #{안내}")
    shared = {"반": "수학A", "안내": "가" * MAX_REPLACEMENT_VALUE_LENGTH}

    response = api.post(SEND_URL, send_body(academy.student_ids, message_mode="alimtalk", template_id="TPL_CLASS",
                                            body="", alimtalk_replacements=shared), format="json")

    assert response.status_code == 202, response.json()
    send_request = SendRequest.objects.get()
    assert send_request.alimtalk_replacements == shared
    messages = list(send_request.messages.values("id", "phone", "text", "message_type", "subject", "variables"))
    assert [m["variables"] for m in messages] == [{"이름": s.name} for s in academy.students]
    chunk = Chunk(send_request=send_request, index=0)
    for row, student in zip(messages, academy.students, strict=True):
        kakao = _outgoing(row, chunk).to_request().kakao_options
        assert kakao.variables == {"#{이름}": student.name, "#{반}": "수학A", "#{안내}": shared["안내"]}
        assert row["text"] == f"{student.name} 학생의 수학A 수업: {shared['안내']}"
    assert Decimal(response.json()["estimated_cost"]) == 3 * Decimal("9")


@pytest.mark.parametrize("url", [SEND_URL, "/admin/login/"])
def test_a_body_over_the_upload_limit_is_413_in_json(academy, api, settings, url):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    payload = json.dumps(send_body(academy.student_ids, body="가" * 200_000))

    started = time.perf_counter()
    response = api.post(url, payload, content_type="application/json")
    print(f"\n{len(payload):,} bytes to {url}: {len(response.content)} bytes out, "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["code"], body["limit"]) == ("request_too_large", 100_000) and body["detail"]
    assert len(response.content) < SMALL_ANSWER
    assert SendRequest.objects.count() == 0


def test_json_nested_deeper_than_the_parser_goes_is_invalid_request_not_a_500(academy, api):
    payload = '{"student_ids": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = _timed_post_raw(api, payload)

    assert_refusal(response, 400, "invalid_request")


def _timed_post_raw(api, payload: str):
    started = time.perf_counter()
    response = api.post(SEND_URL, payload, content_type="application/json")
    print(f"\n{len(payload):,} bytes nested: {len(response.content):,} bytes out, "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")
    assert len(response.content) < SMALL_ANSWER
    return response
