"""What puts things right when a step dies or a report never comes: the error callback,
and the beat tasks (resume stale chunks, poll overdue reports, expire, settle)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing import ledger
from billing.ledger import account_for
from billing.models import HoldStatus
from messaging.failures import FailureClass
from messaging.models import Chunk, ChunkStatus, Message, MessageOutcome, MessageStatus, OutcomeEvent
from messaging.pipeline import delivery, outbox
from messaging.pipeline.tasks import resume_stale_chunks
from messaging.reports.reconciliation import expire_unreported, poll_overdue_groups, settle_open_holds
from tests.pipeline.conftest import assert_books_balance, send, statuses, wait_settled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_unexpected_error_mid_send_fails_the_chunk_and_releases_its_credit(worker, sandbox, academy):
    send_request = send(academy, publish=False)
    # A row the Solapi models refuse: the send step raises something no policy knows.
    Message.objects.filter(send_request=send_request).filter(id=send_request.messages.first().id).update(
        message_type="XXX")

    assert outbox.publish_dispatch(send_request)
    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.FAILED] * 3
    assert {m.failure_class for m in messages} == {FailureClass.INTERNAL}
    assert all(m.failure_reason.startswith("messaging.send_to_solapi failed") for m in messages)
    assert sandbox.accepted_total == 0
    assert MessageOutcome.objects.filter(message__in=messages, event=OutcomeEvent.FAILED).count() == 3
    assert_books_balance(academy, spent=Decimal("0"))


def test_a_chunk_whose_chain_was_lost_is_resumed_by_beat(worker, sandbox, academy, settings, clock):
    send_request = send(academy, publish=False)
    delivery.split_into_chunks(send_request.id)  # chunks exist, but no chain was ever published
    assert resume_stale_chunks() == 0  # not stale yet
    clock.set(clock.now() + timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS + 1))
    # Its queue has not yet shown that it got past the chunk: the sweep's probes will (beat sweeps
    # every minute; here every second).
    assert resume_stale_chunks() == 0

    assert wait_until(resume_stale_chunks, interval=1.0, what="the sweep to find the chunk stuck") == 1
    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    assert_books_balance(academy, spent=Decimal("39"))


@pytest.mark.clock
def test_overdue_reports_are_polled_from_solapi(worker, sandbox, academy, settings, clock):
    messages = wait_settled(send(academy))  # no webhook: the reports never arrive by themselves
    wait_until(lambda: sandbox.report_status().get("pending", 1) == 0, what="the sandbox to settle its reports")
    assert poll_overdue_groups() == 0  # not overdue yet
    clock.set(clock.now() + timedelta(seconds=settings.MESSAGING_REPORT_POLL_AFTER_SECONDS + 1))

    assert poll_overdue_groups() == 3

    assert set(Message.objects.filter(id__in=[m.id for m in messages]).values_list("status", flat=True)) == {
        MessageStatus.DELIVERED}
    assert_books_balance(academy, spent=Decimal("39"))


@pytest.mark.clock
def test_messages_without_a_report_past_the_timeout_fail_and_are_refunded(worker, sandbox, academy, settings,
                                                                          clock):
    messages = wait_settled(send(academy))
    clock.set(clock.now() + timedelta(seconds=settings.MESSAGING_REPORT_TIMEOUT_SECONDS - 60))
    assert expire_unreported() == 0  # a minute before the timeout
    clock.set(clock.now() + timedelta(seconds=61))

    assert expire_unreported() == 3

    expired = Message.objects.filter(id__in=[m.id for m in messages])
    assert set(expired.values_list("failure_class", flat=True)) == {FailureClass.REPORT_TIMEOUT}
    assert_books_balance(academy, spent=Decimal("0"))


def test_a_final_message_whose_hold_never_moved_is_settled(sandbox, academy):
    send_request = send(academy, publish=False)
    (chunk_id,) = delivery.split_into_chunks(send_request.id)
    # Every message's credit was held when the request was accepted.
    message, *still_to_send = Message.objects.filter(chunk_id=chunk_id)
    # As if the process died between failing the message and releasing its credit.
    Message.objects.filter(id=message.id).update(status=MessageStatus.FAILED, failure_class=FailureClass.INTERNAL)
    Chunk.objects.filter(id=chunk_id).update(status=ChunkStatus.FINALIZED)

    assert settle_open_holds() == 1
    assert ledger.holds_for([message.id])[message.id].status == HoldStatus.RELEASED
    assert account_for(academy.tenant).held == sum(m.price for m in still_to_send)  # theirs stay held
