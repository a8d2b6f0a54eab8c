"""Each row of the retry-policy table (messaging/pipeline/policies.py), driven by the sandbox.

Every test asserts the final message states, the ledger, the MessageOutcome rows and
the sandbox's own count of what it accepted.
"""

from decimal import Decimal

import pytest

from billing.ledger import InsufficientCredit, adjust, release_holds
from harness.academies import make_academy
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.compose.resend import retry_failed_messages
from messaging.failures import FailureClass
from messaging.models import (
    Chunk,
    DeliveryAttempt,
    Message,
    MessageOutcome,
    MessageStatus,
    OutcomeEvent,
    SuppressedRecipient,
)
from messaging.pipeline import outbox
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from tenants.models import SenderStatus
from tests.pipeline.conftest import assert_books_balance, send, statuses, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _outcomes(messages) -> set[tuple[str, bool]]:
    return {(o.event, o.success) for o in MessageOutcome.objects.filter(message__in=messages)}


# --- transient: retry with backoff ---------------------------------------------------------


@pytest.mark.parametrize(("action", "transient", "rate_limited"), [("5xx", 2, 0), ("drop", 2, 0), ("429", 0, 2)])
def test_transient_failures_are_retried_and_the_messages_go_out_once(worker, sandbox, academy, action, transient,
                                                                     rate_limited):
    sandbox.fail_next("send_group", times=2, action=action)

    messages = wait_settled(send(academy))

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    chunk = Chunk.objects.get(send_request=messages[0].send_request)
    # A 429 is not a failure of the message: it is counted apart from the transient budget.
    assert (chunk.transient_failures, chunk.rate_limited) == (transient, rate_limited)
    assert DeliveryAttempt.objects.filter(chunk=chunk, operation="send_group").count() == 3
    assert_books_balance(academy, spent=Decimal("39"))


def test_a_read_timeout_after_solapi_accepted_is_not_a_second_send(worker, sandbox, academy):
    # Solapi registers the send, the client sees a read timeout; the retry re-sends the
    # same group and Solapi answers 409: already sent.
    sandbox.fail_next("send_group", action="accept_then_timeout", hang_seconds=6)

    messages = wait_settled(send(academy))

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    attempts = DeliveryAttempt.objects.filter(operation="send_group").order_by("id")
    assert [(a.ambiguous, a.http_status, a.error_code) for a in attempts] == [
        (True, None, ""), (False, 409, "AlreadySent")]
    assert_books_balance(academy, spent=Decimal("39"))


def test_transient_failures_past_the_limit_fail_the_messages_and_release_the_credit(worker, sandbox, academy,
                                                                                     settings):
    sandbox.fail_next("send_group", times=100, action="5xx")

    messages = wait_settled(send(academy), timeout=90)

    assert statuses(messages) == [MessageStatus.FAILED] * 3
    assert {m.failure_class for m in messages} == {FailureClass.TRANSIENT_EXHAUSTED}
    assert Chunk.objects.get(send_request=messages[0].send_request).transient_failures == 6
    assert sandbox.accepted_total == 0
    assert _outcomes(messages) == {(OutcomeEvent.FAILED, False)}
    assert_books_balance(academy, spent=Decimal("0"))


# --- 429: wait as long as Solapi asks, for a bounded time ---------------------------------


def test_a_429_waits_as_long_as_retry_after_says(worker, sandbox, academy):
    # The suite's backoff is 1-4 s; Solapi asks for 6.
    sandbox.fail_next("create_group", action="429", retry_after=6)

    messages = wait_settled(send(academy))

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    told, retried = [r.at for r in sandbox.request_log if r.operation == "create_group"]
    assert retried - told >= 6
    assert_books_balance(academy, spent=Decimal("39"))


QUEUE = f"{INTERACTIVE_QUEUE}-policies"


def test_429s_past_the_longest_wait_fail_the_messages_and_release_the_credit(sandbox, transactional_db,
                                                                            start_worker):
    start_worker("short-wait", env={"MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS": "4"}, extra_args=("-Q", QUEUE))
    academy = make_academy()
    sandbox.storm_429(60)

    messages = wait_settled(send(academy, queue=QUEUE), timeout=60)

    assert statuses(messages) == [MessageStatus.FAILED] * 3
    assert {m.failure_class for m in messages} == {FailureClass.TRANSIENT_EXHAUSTED}
    chunk = Chunk.objects.get(send_request=messages[0].send_request)
    assert chunk.rate_limited >= 2 and chunk.transient_failures == 0
    assert sandbox.accepted_total == 0
    assert_books_balance(academy, spent=Decimal("0"))


# --- the academy's problems: fail now, release, tell them ---------------------------------


def test_an_unregistered_sender_fails_now_releases_and_blocks_further_sends(worker, sandbox, transactional_db):
    academy = make_academy(messaging_sender="0311112222")  # not registered in the sandbox

    messages = wait_settled(send(academy))

    assert statuses(messages) == [MessageStatus.FAILED] * 3
    assert {(m.failure_class, m.solapi_status_code) for m in messages} == {(FailureClass.SENDER_UNREGISTERED, "1062")}
    assert sandbox.accepted_total == 0
    assert_books_balance(academy, spent=Decimal("0"))
    academy.tenant.refresh_from_db()
    assert academy.tenant.messaging_sender_status == SenderStatus.REJECTED
    with pytest.raises(Refusal) as refused:
        send(academy)
    assert refused.value.code == RefusalCode.SENDER_UNREGISTERED


@pytest.mark.parametrize(
    ("code", "failure_class", "suppressed"),
    [
        ("1061", FailureClass.RECIPIENT_OPTED_OUT, "opted_out"),
        ("3010", FailureClass.RECIPIENT_INVALID, "invalid"),
        ("1031", FailureClass.CONTENT, None),
        ("1043", FailureClass.KAKAO_CONFIG, None),
    ],
)
def test_a_refused_recipient_fails_alone_and_is_remembered_when_the_number_is_at_fault(
        worker, sandbox, academy, code, failure_class, suppressed):
    refused_phone = academy.parent_phones()[0]
    sandbox.set_recipient_outcome(refused_phone, stage="register", code=code)

    messages = wait_settled(send(academy))

    assert statuses(messages) == [MessageStatus.FAILED, MessageStatus.ACCEPTED, MessageStatus.ACCEPTED]
    assert (messages[0].failure_class, messages[0].solapi_status_code) == (failure_class, code)
    assert sandbox.accepted_total == 2
    assert_books_balance(academy, spent=Decimal("26"))
    entry = SuppressedRecipient.objects.filter(tenant=academy.tenant, phone=refused_phone).first()
    assert (entry.reason if entry else None) == suppressed
    if suppressed:
        # The next send skips the number, with the reason.
        again = send(academy, publish=False)
        assert again.response["skipped"] == [
            {"student_id": academy.students[0].id, "recipient": "parent",
             "reason": "opted_out" if suppressed == "opted_out" else "invalid_phone"}]


# --- credit and the academy's state, checked again at send time ----------------------------


def test_credit_held_at_acceptance_cannot_be_spent_before_the_send(worker, sandbox, academy):
    send_request = send(academy, publish=False)

    with pytest.raises(InsufficientCredit):
        adjust(tenant=academy.tenant, amount=Decimal("-9974"), memo="would take what the send holds")
    adjust(tenant=academy.tenant, amount=Decimal("-9961"), memo="leave exactly what the send holds")
    assert outbox.publish_dispatch(send_request)
    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert_books_balance(academy, credit=Decimal("39"), spent=Decimal("39"))


def test_a_retry_whose_credit_was_spent_meanwhile_fails_the_messages_that_no_longer_fit(worker, sandbox, academy):
    # A staff retry is held by its reserve step, not when it is made: that step re-checks the credit.
    originals = list(send(academy, publish=False).messages.order_by("id"))
    Message.objects.filter(id__in=[m.id for m in originals]).update(status=MessageStatus.FAILED,
                                                                   failure_class=FailureClass.TRANSIENT)
    release_holds(message_ids=[m.id for m in originals])
    adjust(tenant=academy.tenant, amount=Decimal("-9974"), memo="leave room for two SMS")

    (retry,) = retry_failed_messages([m.id for m in originals])
    messages = wait_settled(retry)

    assert statuses(messages) == [MessageStatus.ACCEPTED, MessageStatus.ACCEPTED, MessageStatus.FAILED]
    assert messages[2].failure_class == FailureClass.INSUFFICIENT_CREDIT
    assert sandbox.accepted_total == 2
    assert_books_balance(academy, credit=Decimal("26"), spent=Decimal("26"))


def test_messaging_switched_off_after_the_request_sends_nothing(worker, sandbox, academy):
    send_request = send(academy, publish=False)
    academy.tenant.messaging_is_active = False
    academy.tenant.save()

    assert outbox.publish_dispatch(send_request)
    messages = wait_settled(send_request)

    assert {m.failure_class for m in messages} == {FailureClass.MESSAGING_INACTIVE}
    assert sandbox.accepted_total == 0
    assert_books_balance(academy, spent=Decimal("0"))
