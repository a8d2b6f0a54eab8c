"""Each message is sent once and charged once, even when the bad things really happen:
the worker is kill -9'd after Solapi accepted the chunk, and tasks are delivered twice."""

from decimal import Decimal

import pytest

from harness.academies import make_academy
from messaging.models import DeliveryAttempt, MessageStatus
from messaging.pipeline import delivery, outbox
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from messaging.pipeline.tasks import chunk_pipeline
from tests.pipeline.conftest import assert_books_balance, send, statuses, wait_settled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

QUEUE = f"{INTERACTIVE_QUEUE}-exactly-once"


def test_kill_9_after_solapi_accepted_and_before_the_ack(sandbox, transactional_db, start_worker):
    academy = make_academy()
    # Solapi accepts the send and then keeps the connection open: the worker is mid-call,
    # its SQS message unacknowledged, when it dies.
    sandbox.fail_next("send_group", action="accept_then_timeout", hang_seconds=60)
    doomed = start_worker("doomed", extra_args=("-Q", QUEUE))

    send_request = send(academy, queue=QUEUE)
    wait_until(lambda: sandbox.accepted_total == 3, what="Solapi to accept the chunk")
    doomed.kill()
    # The unacked message becomes visible again after the visibility timeout, for a new worker.
    start_worker("successor", extra_args=("-Q", QUEUE))
    messages = wait_settled(send_request, timeout=120)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    # The successor re-sent the same group, and Solapi said it had already gone out.
    resend = DeliveryAttempt.objects.filter(operation="send_group").last()
    assert (resend.http_status, resend.error_code) == (409, "AlreadySent")
    assert_books_balance(academy, spent=Decimal("39"))


def test_a_dispatch_delivered_twice_sends_each_message_once(worker, sandbox, academy):
    send_request = send(academy)
    assert outbox.publish_dispatch(send_request)

    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    assert_books_balance(academy, spent=Decimal("39"))


def test_two_chains_for_one_chunk_at_once_send_and_charge_once(worker, sandbox, academy):
    send_request = send(academy, publish=False)
    (chunk_id,) = delivery.split_into_chunks(send_request.id)

    chunk_pipeline(chunk_id, queue=send_request.queue).apply_async()
    chunk_pipeline(chunk_id, queue=send_request.queue).apply_async()
    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    assert_books_balance(academy, spent=Decimal("39"))
