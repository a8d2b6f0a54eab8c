"""Each message mode end to end: API service → SQS → worker → sandbox over HTTP → ledger."""

from decimal import Decimal

import pytest

from messaging.models import MessageOutcome, MessageStatus, OutcomeEvent
from tests.pipeline.conftest import assert_books_balance, captured, send, statuses, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_sms_goes_out_once_per_parent_and_is_charged_once(worker, sandbox, academy):
    send_request = send(academy)

    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert {m.message_type for m in messages} == {"SMS"}
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    assert sorted(sandbox.sends_per_recipient()) == sorted(academy.parent_phones())
    assert captured(messages) == Decimal("39")
    assert_books_balance(academy, spent=Decimal("39"))
    outcomes = MessageOutcome.objects.filter(message__in=messages)
    assert {(o.event, o.success, o.amount) for o in outcomes} == {(OutcomeEvent.ACCEPTED, True, Decimal("13"))}
    assert all("****" in o.recipient_summary for o in outcomes)


def test_long_text_goes_as_lms_at_the_lms_price(worker, sandbox, academy):
    send_request = send(academy, body="#{이름} " + "가" * 50)  # over 90 EUC-KR bytes

    messages = wait_settled(send_request)

    assert {m.message_type for m in messages} == {"LMS"}
    assert_books_balance(academy, spent=Decimal("87"))


def test_alimtalk_goes_out_as_ata_at_the_ata_price(worker, sandbox, academy):
    send_request = send(academy, mode="alimtalk")

    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert {m.message_type for m in messages} == {"ATA"}
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    assert_books_balance(academy, spent=Decimal("27"))


def test_alimtalk_with_fallback_keeps_the_dearer_hold_until_the_report(worker, sandbox, academy):
    send_request = send(academy, mode="both")

    messages = wait_settled(send_request)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert {(m.message_type, m.fallback_type) for m in messages} == {("ATA", "SMS")}
    # Held at the SMS price (13 > 9) until a delivery report says what was billed.
    assert captured(messages) == 0
    from billing.ledger import account_for

    assert account_for(academy.tenant).held == Decimal("39")
