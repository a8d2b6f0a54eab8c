"""The busiest reads answer from plain dicts (messaging/api/answers.py), not through the
serializers that document them: the answers must be exactly what those serializers write."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from billing.ledger import adjust
from harness.academies import make_students
from messaging.api.answers import with_api_times
from messaging.api.serializers import CreditsSerializer, SendRequestDetailSerializer
from messaging.failures import FailureClass
from messaging.models import Chunk, ChunkStatus, Message, MessageStatus, SendRequest
from messaging.selectors import credit_summary, send_request_detail

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 2, 0, 0, 1, 123456, tzinfo=UTC)


def as_json(data) -> bytes:
    return JSONRenderer().render(data)


def test_times_are_written_as_drf_writes_them():
    assert with_api_times({"at": [AT, None], "n": 1}) == {"at": ["2026-03-02T09:00:01.123456+09:00", None], "n": 1}


def test_credits_answer_is_what_the_documented_serializer_writes(academy, api, post_send, broker):
    adjust(tenant=academy.tenant, amount=Decimal("-12.5"), memo="정정")
    post_send(academy.student_ids[:2])

    response = api.get("/api/v1/credits")

    # Byte for byte: a negative amount, a hold of several messages, times with microseconds.
    assert response.content == as_json(CreditsSerializer(credit_summary(academy.tenant)).data)
    assert [e["kind"] for e in response.json()["ledger"]] == ["hold", "adjustment", "top_up"]


@pytest.fixture
def request_in_every_state(academy, post_send, broker) -> SendRequest:
    """Five messages: one failed, one delivered, one skipped (no phone), two in a chunk that a
    platform pause holds."""
    students = make_students(academy.tenant, 4)
    no_phone = make_students(academy.tenant, 1, parent_phone="")[0]
    send_request = SendRequest.objects.get(id=post_send([s.id for s in [*students, no_phone]]).json()["id"])
    pending = Message.objects.filter(send_request=send_request, status=MessageStatus.PENDING).order_by("id")
    failed, delivered, *held = pending
    Message.objects.filter(id=failed.id).update(
        status=MessageStatus.FAILED, failure_class=FailureClass.RECIPIENT_INVALID, failure_reason="없는 번호입니다",
        completed_at=AT)
    Message.objects.filter(id=delivered.id).update(status=MessageStatus.DELIVERED, accepted_at=AT,
                                                   completed_at=AT + timedelta(seconds=3), solapi_status_code="4000")
    chunk = Chunk.objects.create(send_request=send_request, index=0, status=ChunkStatus.SENDING, paused_since=AT,
                                 pause_class=FailureClass.AUTH_FAILED, last_error="401 Unauthorized")
    Message.objects.filter(id__in=[m.id for m in held]).update(chunk=chunk)
    return send_request


@pytest.mark.parametrize("page, page_size", [(1, 100), (1, 2), (2, 2), (4, 2)])
def test_status_answer_is_what_the_documented_serializer_writes(api, request_in_every_state, page, page_size):
    response = api.get(f"/api/v1/messages/send-requests/{request_in_every_state.id}",
                       {"page": page, "page_size": page_size})

    expected = SendRequestDetailSerializer(send_request_detail(request_in_every_state, page=page,
                                                               page_size=page_size)).data
    # The same fields and values (the serializer orders a message's keys its own way).
    assert response.json() == json.loads(as_json(expected))
    body = response.json()
    assert (body["counts"]["paused"], body["counts"]["failed"], body["counts"]["delivered"],
            body["counts"]["skipped"], body["counts"]["total"]) == (2, 1, 1, 1, 5)
    assert body["paused"]["reason_code"] == FailureClass.AUTH_FAILED


def test_a_small_request_status_takes_three_statements(academy, api, post_send, broker):
    # The token with its academies, the request, its messages: counts and pauses come from the
    # rows when the request fits one page.
    sent = post_send(academy.student_ids).json()

    with CaptureQueriesContext(connection) as queries:
        response = api.get(sent["status_url"])

    assert response.status_code == 200
    assert len(queries) == 3, [q["sql"][:120] for q in queries]
    assert response.json()["counts"]["total"] == len(academy.student_ids)
