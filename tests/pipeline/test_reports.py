"""Delivery reports over the real webhook: the sandbox POSTs Solapi single reports to
the running app, re-delivers some of them, and the ledger follows what was delivered."""

from decimal import Decimal

import pytest
from django.conf import settings

from messaging.failures import FailureClass
from messaging.models import (
    DeliveryReport,
    MessageOutcome,
    MessageStatus,
    OutcomeEvent,
    ReceivedReportBatch,
    SuppressedRecipient,
)
from tests.pipeline.conftest import assert_books_balance, finished, send, statuses, wait_settled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_delivered_reports_finish_the_messages_once_despite_redelivered_webhooks(worker, reporting_sandbox, academy):
    reporting_sandbox.set_duplicate_report_rate(1.0)  # every report arrives twice

    send_request = send(academy)
    wait_settled(send_request)
    messages = finished(send_request)

    assert statuses(messages) == [MessageStatus.DELIVERED] * 3
    wait_until(lambda: reporting_sandbox.report_status().get("events_delivered") == 6,
               what="each report to be delivered twice")
    assert DeliveryReport.objects.filter(message__in=messages).count() == 3
    wait_until(lambda: MessageOutcome.objects.filter(message__in=messages, event=OutcomeEvent.DELIVERED).count() == 3,
               what="the delivered outcomes")
    events = sorted(MessageOutcome.objects.filter(message__in=messages).values_list("event", flat=True))
    assert events == [OutcomeEvent.ACCEPTED] * 3 + [OutcomeEvent.DELIVERED] * 3
    assert_books_balance(academy, spent=Decimal("39"))


def test_a_failure_after_acceptance_refunds_the_academy_and_suppresses_a_dead_number(worker, reporting_sandbox,
                                                                                    academy):
    dead, busy = academy.parent_phones()[:2]
    reporting_sandbox.set_recipient_outcome(dead, stage="report", code="3010")
    reporting_sandbox.set_recipient_outcome(busy, stage="report", code="3041")

    messages = finished(send(academy))

    assert statuses(messages) == [MessageStatus.FAILED, MessageStatus.FAILED, MessageStatus.DELIVERED]
    assert [m.failure_class for m in messages[:2]] == [FailureClass.RECIPIENT_INVALID, FailureClass.TRANSIENT]
    assert reporting_sandbox.accepted_total == 3
    # Charged on acceptance and refunded on the failure report (or, when the report overtakes
    # the send step's bookkeeping, never charged): each failed one nets to zero.
    wait_until(lambda: MessageOutcome.objects.filter(message__in=messages[:2], event=OutcomeEvent.FAILED).count() == 2,
               what="the failed outcomes")
    net = {m.id: sum(MessageOutcome.objects.filter(message=m).values_list("amount", flat=True)) for m in messages}
    assert net == {messages[0].id: 0, messages[1].id: 0, messages[2].id: Decimal("13")}
    assert_books_balance(academy, spent=Decimal("13"))
    assert list(SuppressedRecipient.objects.values_list("phone", "reason")) == [(dead, "invalid")]


def test_alimtalk_with_fallback_captures_what_solapi_actually_delivered(worker, reporting_sandbox, academy):
    fell_back = academy.parent_phones()[0]
    reporting_sandbox.set_recipient_outcome(fell_back, fallback=True)

    messages = finished(send(academy, mode="both"))

    assert statuses(messages) == [MessageStatus.DELIVERED] * 3
    assert [m.delivered_type for m in messages] == ["SMS", "ATA", "ATA"]
    # One SMS (13) and two AlimTalk (9 each); the rest of each 13-credit hold is released.
    assert_books_balance(academy, spent=Decimal("31"))


def test_the_webhook_refuses_a_wrong_secret_and_a_malformed_body(client, transactional_db):
    wrong = client.post("/api/v1/solapi/reports/guess/", data=[], content_type="application/json")
    malformed = client.post(f"/api/v1/solapi/reports/{settings.SOLAPI_WEBHOOK_SECRET}/",
                            data={"not": "a report"}, content_type="application/json")

    assert (wrong.status_code, wrong.json()["code"]) == (404, "not_found")
    assert (malformed.status_code, malformed.json()["code"]) == (400, "invalid_request")
    assert not ReceivedReportBatch.objects.exists()  # nothing stored
