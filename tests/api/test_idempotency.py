"""The Idempotency-Key header: a replay returns the original answer and sends nothing
again; the same key with a different body is 422; a refused attempt does not use the key up."""

import threading
from decimal import Decimal

import pytest

from billing.ledger import adjust, top_up
from harness.academies import make_academy
from harness.waiting import DEFAULT_TIMEOUT
from messaging.compose import send_requests
from messaging.models import Message, SendRequest
from messaging.pipeline import outbox
from tests.api.conftest import assert_refusal, client_for, send_body

SEND_URL = "/api/v1/messages/send"


def with_key(key: str) -> dict:
    return {"Idempotency-Key": key}


@pytest.mark.django_db
def test_replaying_a_key_with_the_same_body_returns_the_original_answer_and_sends_nothing_again(
    academy, post_send, broker
):
    first = post_send(academy.student_ids, headers=with_key("attendance-2024-03-04"))
    publishes = broker.request_counts()["SendMessage"]

    again = post_send(academy.student_ids, headers=with_key("attendance-2024-03-04"))

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert SendRequest.objects.count() == 1
    assert Message.objects.count() == len(academy.student_ids)
    assert broker.request_counts()["SendMessage"] == publishes == 1


@pytest.mark.django_db
def test_spelling_out_the_defaults_is_the_same_body(academy, post_send, broker):
    first = post_send(academy.student_ids, headers=with_key("k1"))
    again = post_send(academy.student_ids, headers=with_key("k1"), send_to="parent", message_mode="sms",
                      subject="", template_id="", alimtalk_replacements={})

    assert again.status_code == 202
    assert again.json() == first.json()
    assert SendRequest.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{"body": "다른 내용"}, {"send_to": "both"}, {"subject": "제목"}],
                         ids=["body", "send_to", "subject"])
def test_the_same_key_with_a_different_body_is_422_and_changes_nothing(academy, post_send, broker, change):
    first = post_send(academy.student_ids, headers=with_key("k2"))

    assert_refusal(post_send(academy.student_ids, headers=with_key("k2"), **change), 422, "idempotency_key_reused")
    assert SendRequest.objects.get().id == first.json()["id"]
    assert Message.objects.count() == len(academy.student_ids)


@pytest.mark.django_db
def test_a_different_key_or_no_key_makes_a_new_request(academy, post_send, broker):
    ids = {post_send(academy.student_ids, headers=with_key("k3")).json()["id"],
           post_send(academy.student_ids, headers=with_key("k4")).json()["id"],
           post_send(academy.student_ids).json()["id"],
           post_send(academy.student_ids).json()["id"]}

    assert len(ids) == SendRequest.objects.count() == 4


@pytest.mark.django_db
def test_a_refused_attempt_does_not_use_the_key_up(academy, post_send, broker):
    students = academy.student_ids
    adjust(tenant=academy.tenant, amount=Decimal("-9990"), memo="test: 10 KRW left, the send costs 39")

    assert_refusal(post_send(students, headers=with_key("k5")), 402, "insufficient_credit")
    top_up(tenant=academy.tenant, amount=Decimal("100"))
    retried = post_send(students, headers=with_key("k5"))

    assert retried.status_code == 202, retried.json()
    assert SendRequest.objects.get().id == retried.json()["id"]


@pytest.mark.django_db
def test_a_key_longer_than_100_characters_is_refused_not_cut_into_another_key(academy, post_send, broker):
    # Cut to 100 characters, two different keys would become one and the second send be lost.
    first = post_send(academy.student_ids, headers=with_key("a" * 100 + "-monday"))
    assert_refusal(first, 400, "invalid_request")
    assert SendRequest.objects.count() == 0


@pytest.mark.django_db
def test_a_replay_arriving_while_the_original_still_publishes_gets_the_original_answer(
    academy, post_send, broker, monkeypatch
):
    # The client times out and retries while the first request is still talking to SQS.
    replays = []
    publish = outbox.publish_task

    def slow_publish(send_request):
        replays.append(post_send(academy.student_ids, headers=with_key("k6")))
        return publish(send_request)

    monkeypatch.setattr(outbox, "publish_task", slow_publish)

    first = post_send(academy.student_ids, headers=with_key("k6"))

    [replay] = replays
    assert (first.status_code, replay.status_code) == (202, 202), replay.json()
    assert {k: v for k, v in replay.json().items() if k != "dispatched"} == {
        k: v for k, v in first.json().items() if k != "dispatched"}
    assert SendRequest.objects.count() == 1
    assert broker.request_counts()["SendMessage"] == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_send(broker, monkeypatch):
    academy = make_academy("concurrent")
    # Both requests pass the replay check before either writes: the unique constraint decides.
    both_planned = threading.Barrier(2, timeout=DEFAULT_TIMEOUT)
    plan_send = send_requests.plan_send

    def plan_together(**kwargs):
        plan = plan_send(**kwargs)
        both_planned.wait()
        return plan

    monkeypatch.setattr(send_requests, "plan_send", plan_together)
    responses = [None, None]

    def post(index):
        client = client_for(academy.user)
        responses[index] = client.post(SEND_URL, send_body(academy.student_ids), format="json",
                                       headers=with_key("k7"))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEFAULT_TIMEOUT)

    assert [r.status_code for r in responses] == [202, 202], [r.json() for r in responses]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    assert responses[0].json()["accepted"] == responses[1].json()["accepted"] == 3
    assert SendRequest.objects.count() == 1
    assert Message.objects.count() == 3
    assert broker.request_counts()["SendMessage"] == 1
