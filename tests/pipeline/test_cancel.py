"""POST send-requests/{id}/cancel: what has not gone to Solapi is cancelled and its credit
released at once; what may have gone is left to finish and reported; a repeat changes
nothing. Step by step against the send step's guard and fence, then racing a real worker
sending a broadcast through the local SQS and the sandbox (PostgreSQL: row locks)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from billing.audit import audit_accounts
from billing.ledger import account_for
from billing.models import Hold, HoldStatus, LedgerEntry
from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.models import Chunk, ChunkStatus, DeliveryAttempt, Message, MessageStatus, SolapiOperation
from messaging.operations.counts import refresh_counts
from messaging.pipeline import delivery
from messaging.pipeline.cancellation import cancel_send_request
from messaging.pipeline.queues import BULK_QUEUE
from project import clock
from tests.api.conftest import assert_refusal, client_for
from tests.pipeline.conftest import assert_books_balance, send, wait_settled, wait_until

CREDIT = Decimal("10000")


def cancel_url(send_request_id: int) -> str:
    return f"/api/v1/messages/send-requests/{send_request_id}/cancel"


def held(academy) -> Decimal:
    return account_for(academy.tenant).held


@pytest.mark.django_db
def test_a_send_not_yet_dispatched_is_cancelled_whole_and_its_credit_released(broker):
    academy = make_academy()
    send_request = send(academy, publish=False)
    assert held(academy) == 3 * Decimal("13")

    response = client_for(academy.user).post(cancel_url(send_request.id))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert {k: body[k] for k in ("id", "cancelled", "cancelled_now", "released", "accepted", "in_flight")} == {
        "id": send_request.id, "cancelled": 3, "cancelled_now": 3, "released": "39.00", "accepted": 0,
        "in_flight": 0}
    assert body["status_url"] == f"/api/v1/messages/send-requests/{send_request.id}"
    messages = Message.objects.filter(send_request=send_request)
    assert {(m.status, m.failure_class) for m in messages} == {(MessageStatus.FAILED, FailureClass.CANCELLED)}
    assert held(academy) == 0 and account_for(academy.tenant).balance == CREDIT
    # Dispatch, later, finds nothing to put into chunks.
    assert delivery.split_into_chunks(send_request.id) == []


@pytest.mark.django_db
def test_cancelling_twice_answers_the_same_and_changes_nothing(broker):
    academy = make_academy()
    send_request = send(academy, publish=False)
    api = client_for(academy.user)
    first = api.post(cancel_url(send_request.id)).json()
    entries = LedgerEntry.objects.count()

    second = api.post(cancel_url(send_request.id)).json()

    assert second == {**first, "cancelled_now": 0}
    assert LedgerEntry.objects.count() == entries


@pytest.mark.django_db
def test_another_academys_send_request_is_not_found_and_not_cancelled():
    mine, theirs = make_academy(), make_academy()
    send_request = send(theirs, publish=False)

    assert_refusal(client_for(mine.user).post(cancel_url(send_request.id)), 404, "not_found")
    assert_refusal(client_for(mine.user).post(cancel_url(987654321)), 404, "not_found")
    assert not Message.objects.filter(send_request=send_request, status=MessageStatus.FAILED).exists()


@pytest.mark.django_db
def test_cancelling_a_send_that_has_finished_stops_nothing_and_keeps_its_status(broker):
    academy = make_academy()
    send_request = send(academy, publish=False)
    (chunk_id,) = delivery.split_into_chunks(send_request.id)
    delivery.reserve_chunk(chunk_id)
    lease = delivery.Lease(chunk_id)
    delivery._claim(lease)
    delivery._mark_sent([lease])
    delivery.finalize_chunk(chunk_id)
    Message.objects.filter(send_request=send_request).update(status=MessageStatus.DELIVERED)
    refresh_counts(send_request.id)

    body = client_for(academy.user).post(cancel_url(send_request.id)).json()

    assert (body["cancelled"], body["accepted"], body["cancelled_at"]) == (0, 3, None)
    send_request.refresh_from_db()
    assert send_request.cancelled is None and send_request.completed is not None


def _claimed_chunk(academy) -> tuple[int, delivery.Lease]:
    send_request = send(academy, publish=False)
    (chunk_id,) = delivery.split_into_chunks(send_request.id)
    delivery.reserve_chunk(chunk_id)
    lease = delivery.Lease(chunk_id, task_id="t")
    assert delivery._claim(lease) is not None
    return chunk_id, lease


@pytest.mark.django_db
def test_a_chunk_being_sent_but_not_yet_sent_is_cancelled_and_its_sender_fenced_out():
    academy = make_academy()
    chunk_id, lease = _claimed_chunk(academy)

    outcome = cancel_send_request(academy.tenant, Chunk.objects.get(id=chunk_id).send_request_id)

    assert (outcome.cancelled, outcome.in_flight, outcome.released) == (3, 0, Decimal("39"))
    # The execution that held the lease reaches its send call: it is refused before calling Solapi.
    with pytest.raises(delivery.LeaseLost), delivery._attempt([lease], SolapiOperation.SEND_GROUP):
        pytest.fail("a cancelled chunk must not reach Solapi")
    assert not DeliveryAttempt.objects.filter(chunk_id=chunk_id, operation=SolapiOperation.SEND_GROUP).exists()
    # Its retry, or a copy of the task, finds a chunk the guard skips, and finalize settles nothing new.
    assert delivery._claim(delivery.Lease(chunk_id, task_id="t")) is None
    assert delivery.finalize_chunk(chunk_id) == {"accepted": 0, "failed": 3}
    assert Chunk.objects.get(id=chunk_id).status == ChunkStatus.FINALIZED
    assert held(academy) == 0 and account_for(academy.tenant).balance == CREDIT


@pytest.mark.django_db
def test_a_chunk_whose_send_may_have_reached_solapi_is_left_to_finish_and_reported():
    academy = make_academy()
    chunk_id, lease = _claimed_chunk(academy)
    # The send call's row is written, under the fence, before the call: from then on the
    # group may be at Solapi.
    DeliveryAttempt.objects.create(chunk_id=chunk_id, operation=SolapiOperation.SEND_GROUP, ambiguous=True,
                                   detail="in progress")

    outcome = cancel_send_request(academy.tenant, Chunk.objects.get(id=chunk_id).send_request_id)

    assert (outcome.cancelled, outcome.in_flight, outcome.accepted) == (0, 3, 0)
    chunk = Chunk.objects.get(id=chunk_id)
    assert (chunk.status, chunk.lease_token) == (ChunkStatus.SENDING, lease.token)
    # The sender goes on; what Solapi accepts is charged as usual.
    assert delivery._mark_sent([lease]) == 3
    delivery.finalize_chunk(chunk_id)
    assert held(academy) == 0 and account_for(academy.tenant).balance == CREDIT - 3 * Decimal("13")
    # A later cancel reports them as accepted.
    assert cancel_send_request(academy.tenant, chunk.send_request_id).accepted == 3


@pytest.mark.django_db
def test_a_chunk_registered_in_a_group_shared_with_another_request_is_left_to_finish():
    """Small requests share Solapi groups (messaging/pipeline/express.py): once this chunk's
    messages are in a shared group, the other chunk sending that group sends them too."""
    academy = make_academy()
    chunk_id, lease = _claimed_chunk(academy)
    other_id, _ = _claimed_chunk(academy)
    Chunk.objects.filter(id__in=[chunk_id, other_id]).update(solapi_group_id="G4V-SHARED")
    DeliveryAttempt.objects.create(chunk_id=chunk_id, operation=SolapiOperation.ADD_MESSAGES,
                                   solapi_group_id="G4V-SHARED", http_status=200)

    outcome = cancel_send_request(academy.tenant, Chunk.objects.get(id=chunk_id).send_request_id)

    assert (outcome.cancelled, outcome.in_flight) == (0, 3)
    assert Chunk.objects.get(id=chunk_id).lease_token == lease.token
    for chunk in Chunk.objects.filter(id__in=[chunk_id, other_id]):  # settle what the test held
        Message.objects.filter(chunk=chunk).update(status=MessageStatus.FAILED, failure_class=FailureClass.INTERNAL)
        Chunk.objects.filter(id=chunk.id).update(status=ChunkStatus.SENT)
        delivery.finalize_chunk(chunk.id)


@pytest.mark.django_db
def test_a_chunk_of_a_shared_group_whose_messages_are_not_registered_yet_is_cancelled():
    academy = make_academy()
    chunk_id, lease = _claimed_chunk(academy)
    other_id, other_lease = _claimed_chunk(academy)
    Chunk.objects.filter(id__in=[chunk_id, other_id]).update(solapi_group_id="G4V-SHARED")

    outcome = cancel_send_request(academy.tenant, Chunk.objects.get(id=chunk_id).send_request_id)

    assert (outcome.cancelled, outcome.in_flight) == (3, 0)
    # The shared send cannot register or send the group any more: one of its leases is gone.
    with pytest.raises(delivery.LeaseLost), delivery._attempt([other_lease, lease], SolapiOperation.ADD_MESSAGES):
        pytest.fail("a cancelled chunk's messages must not be registered")
    cancel_send_request(academy.tenant, Chunk.objects.get(id=other_id).send_request_id)


QUEUE = f"{BULK_QUEUE}-cancel"
BROADCAST = 2000
CHUNK_SIZE = 100


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_racing_a_broadcast_in_a_real_worker_sends_nothing_after_its_answer(sandbox, broker, start_worker):
    """2,000 messages in 20 chunks, each send call slowed down to a second: cancelled once a
    chunk went out while another one's send call is under way (left to finish). Every message
    the answer did not count as accepted or in flight never reaches Solapi; the academy pays
    for exactly what Solapi accepted."""
    credit = Decimal("100000")
    academy = make_academy(students=BROADCAST, credit=credit)
    start_worker("cancel", env={"MESSAGING_CHUNK_SIZE": str(CHUNK_SIZE)}, extra_args=("-Q", QUEUE))
    sandbox.set_latency(1000, "send_group")
    send_request = send(academy, queue=QUEUE)

    def mid_way() -> bool:
        """A chunk went out, and another one's send call is under way right now."""
        went_out = Chunk.objects.filter(send_request=send_request,
                                        status__in=[ChunkStatus.SENT, ChunkStatus.FINALIZED]).exists()
        return went_out and DeliveryAttempt.objects.filter(
            chunk__send_request=send_request, operation=SolapiOperation.SEND_GROUP, http_status__isnull=True,
            ambiguous=True).exists()

    wait_until(mid_way, what="a chunk to go out and another to be sending")

    response = client_for(academy.user).post(cancel_url(send_request.id))

    assert response.status_code == 200, response.json()
    answer = response.json()
    messages = wait_settled(send_request)
    sent = sandbox.sends_per_message_id()
    cancelled = {str(m.id) for m in messages if m.failure_class == FailureClass.CANCELLED}
    assert answer["cancelled"] == len(cancelled) > 0
    assert answer["accepted"] >= CHUNK_SIZE
    assert answer["accepted"] + answer["in_flight"] + answer["cancelled"] == BROADCAST
    assert set(sent.values()) == {1}
    assert not cancelled & set(sent), "a cancelled message reached Solapi"
    assert answer["accepted"] <= len(sent) <= answer["accepted"] + answer["in_flight"]
    went_out = [m for m in messages if m.accepted_at]
    assert {str(m.id) for m in went_out} == set(sent)
    assert Hold.objects.filter(message_id__in=[int(i) for i in cancelled], status=HoldStatus.RELEASED).count() == \
        len(cancelled)
    spent = Message.objects.filter(id__in=[m.id for m in went_out]).aggregate(total=Sum("price"))["total"]
    assert_books_balance(academy, spent=spent, credit=credit)
    assert audit_accounts() == []


@pytest.mark.django_db
def test_the_answer_counts_accepted_and_in_flight_at_one_moment():
    """The send step may move messages from in flight to accepted while the answer counts them:
    both totals come from one statement, so each message is counted once, in one of them."""
    academy = make_academy()
    chunk_id, _lease = _claimed_chunk(academy)
    DeliveryAttempt.objects.create(chunk_id=chunk_id, operation=SolapiOperation.SEND_GROUP, ambiguous=True,
                                   detail="in progress")
    first = Message.objects.filter(chunk_id=chunk_id).order_by("id").first()
    Message.objects.filter(id=first.id).update(status=MessageStatus.ACCEPTED, accepted_at=clock.now())

    with CaptureQueriesContext(connection) as queries:
        outcome = cancel_send_request(academy.tenant, Chunk.objects.get(id=chunk_id).send_request_id)

    assert (outcome.accepted, outcome.in_flight, outcome.cancelled) == (1, 2, 0)
    counts = [q["sql"] for q in queries.captured_queries if 'COUNT("messaging_message"' in q["sql"]]
    assert len(counts) == 1, counts
