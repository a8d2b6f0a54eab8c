"""What Solapi delivered and billed, against our books: every page of a group is polled, a
fallback is priced as what was delivered however Solapi signals it, and a settled group's
charges are compared with Solapi's bill (docs/exactly-once.md)."""

import logging
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from billing.models import Hold, HoldStatus
from harness.academies import PRICES, Academy, make_academy
from messaging.models import BooksStatus, GroupReconciliation, Message, MessageStatus
from messaging.reports.books import check_settled_groups
from messaging.reports.reconciliation import poll_overdue_groups
from tenants.models import AlimTalkTemplate
from tests.pipeline.conftest import assert_books_balance, finished, send, wait_settled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SHORT = "#{이름} 학생 안내입니다."  # an SMS if Kakao cannot deliver it
LONG = "#{이름} 학생 안내입니다. " + "수업 일정이 바뀌었습니다. " * 8  # over 90 bytes: an LMS


def _send_alimtalk(academy: Academy, template_text: str):
    """AlimTalk with SMS/LMS fallback; the approved template is the text."""
    AlimTalkTemplate.objects.filter(tenant=academy.tenant).update(content=template_text)
    return send(academy, mode="both")


def _captured(messages: list[Message]) -> list[Decimal]:
    holds = {h.message_id: h for h in Hold.objects.filter(message_id__in=[m.id for m in messages])}
    return [holds[m.id].captured_amount if holds[m.id].status == HoldStatus.CAPTURED else None for m in messages]


def _no_hold_open(messages: list[Message]) -> bool:
    return not Hold.objects.filter(message_id__in=[m.id for m in messages], status=HoldStatus.HELD).exists()


def _settled_at_solapi(sandbox) -> None:
    assert sandbox.wait_for_reports(), "the sandbox did not settle its reports"


def _polled(sandbox, settings) -> None:
    """Webhooks off: the reports are read by the reconciliation sweep's poll."""
    _settled_at_solapi(sandbox)
    settings.MESSAGING_REPORT_POLL_AFTER_SECONDS = 0
    poll_overdue_groups()


# --- every page of a group ---------------------------------------------------------------------


def test_a_2500_message_send_is_reconciled_completely_by_polling_a_sandbox_that_pages_by_20(
        worker, sandbox, transactional_db, settings):
    academy = make_academy(students=2500, credit="100000")
    send_request = send(academy)
    messages = wait_settled(send_request, timeout=240)
    assert {m.status for m in messages} == {MessageStatus.ACCEPTED}  # no webhook: no report came
    _settled_at_solapi(sandbox)
    settings.MESSAGING_REPORT_POLL_AFTER_SECONDS = 0

    assert poll_overdue_groups() == 2500

    statuses = Message.objects.filter(send_request=send_request).values_list("status", flat=True)
    assert sorted(set(statuses)) == [MessageStatus.DELIVERED] and len(statuses) == 2500
    listings = [r for r in sandbox.request_log if r.operation == "get_group_messages"]
    groups = send_request.chunks.count()
    assert len(listings) > groups, "every group fits one page: the paging was not exercised"
    assert_books_balance(academy, spent=2500 * PRICES["SMS"], credit=Decimal("100000"))
    assert check_settled_groups() == groups
    assert set(GroupReconciliation.objects.values_list("status", flat=True)) == {BooksStatus.MATCHED}


# --- fallback pricing --------------------------------------------------------------------------


@pytest.mark.parametrize("signal", ["type", "replacement"])
@pytest.mark.parametrize(("template_text", "fallback"), [(SHORT, "SMS"), (LONG, "LMS")])
def test_an_alimtalk_that_fell_back_is_charged_what_was_delivered(worker, reporting_sandbox, academy, signal,
                                                                 template_text, fallback):
    reporting_sandbox.set_fallback_signal(signal)
    reporting_sandbox.set_recipient_outcome(academy.parent_phones()[0], fallback=True)

    messages = finished(_send_alimtalk(academy, template_text))
    wait_until(lambda: _no_hold_open(messages), what="the reports' credit moves")

    assert [m.delivered_type for m in messages] == [fallback, "ATA", "ATA"]
    assert _captured(messages) == [PRICES[fallback], PRICES["ATA"], PRICES["ATA"]]
    assert_books_balance(academy, spent=PRICES[fallback] + 2 * PRICES["ATA"])
    _settled_at_solapi(reporting_sandbox)
    assert check_settled_groups() == 1
    books = GroupReconciliation.objects.get()
    assert (books.status, books.difference, books.fallbacks, books.solapi_fallbacks) == (
        BooksStatus.MATCHED, 0, 1, 1)


def test_a_fallback_read_by_polling_is_charged_what_was_delivered(worker, sandbox, academy, settings):
    sandbox.set_fallback_signal("replacement")
    sandbox.set_recipient_outcome(academy.parent_phones()[0], fallback=True)

    messages = wait_settled(_send_alimtalk(academy, LONG))
    _polled(sandbox, settings)

    messages = list(Message.objects.filter(id__in=[m.id for m in messages]).order_by("id"))
    assert [(m.status, m.delivered_type) for m in messages] == [
        (MessageStatus.DELIVERED, "LMS"), (MessageStatus.DELIVERED, "ATA"), (MessageStatus.DELIVERED, "ATA")]
    assert _captured(messages) == [PRICES["LMS"], PRICES["ATA"], PRICES["ATA"]]
    assert check_settled_groups() == 1
    assert GroupReconciliation.objects.get().status == BooksStatus.MATCHED


def test_a_fallback_told_only_by_the_groups_count_is_charged_once_the_group_settles(worker, reporting_sandbox,
                                                                                   academy):
    reporting_sandbox.set_fallback_signal("group_count")
    for phone in academy.parent_phones():
        reporting_sandbox.set_recipient_outcome(phone, fallback=True)

    messages = finished(_send_alimtalk(academy, SHORT))
    _settled_at_solapi(reporting_sandbox)

    # Delivered, but as what is not known yet: the dearer hold stays until the group tells.
    assert [m.delivered_type for m in messages] == ["", "", ""]
    assert _captured(messages) == [None, None, None]
    assert check_settled_groups() == 1
    messages = list(Message.objects.filter(id__in=[m.id for m in messages]).order_by("id"))
    assert [m.delivered_type for m in messages] == ["SMS"] * 3
    assert_books_balance(academy, spent=3 * PRICES["SMS"])
    books = GroupReconciliation.objects.get()
    assert (books.status, books.fallbacks, books.solapi_fallbacks) == (BooksStatus.MATCHED, 3, 3)


def test_a_fallback_the_group_count_cannot_attribute_is_raised_and_shows_in_the_books(
        worker, reporting_sandbox, academy, caplog):
    reporting_sandbox.set_fallback_signal("group_count")
    reporting_sandbox.set_recipient_outcome(academy.parent_phones()[1], fallback=True)  # one of three: which?

    finished(_send_alimtalk(academy, SHORT))
    _settled_at_solapi(reporting_sandbox)
    with caplog.at_level(logging.ERROR, logger="messaging.reports.books"):
        assert check_settled_groups() == 1

    # Charged as AlimTalk (never more than the academy may owe); Solapi billed one SMS more.
    assert_books_balance(academy, spent=3 * PRICES["ATA"])
    books = GroupReconciliation.objects.get()
    assert (books.status, books.difference) == (BooksStatus.DIFFERS, PRICES["SMS"] - PRICES["ATA"])
    assert {"fallback_unattributed", "group_books_differ"} <= {r.getMessage().split()[0] for r in caplog.records}


# --- our books against Solapi's ----------------------------------------------------------------


def test_solapi_billing_differently_is_recorded_raised_and_reported_by_billing_audit(worker, sandbox,
                                                                                    academy: Academy, settings,
                                                                                    caplog):
    sandbox.set_billing_fault(overbill_per_message=5)

    send_request = send(academy)
    wait_settled(send_request)
    _polled(sandbox, settings)
    with caplog.at_level(logging.ERROR, logger="messaging.reports.books"):
        assert check_settled_groups() == 1

    books = GroupReconciliation.objects.get()
    assert (books.status, books.expected, books.billed, books.difference) == (
        BooksStatus.DIFFERS, 3 * PRICES["SMS"], 3 * PRICES["SMS"] + 15, 15)
    (line,) = [r for r in caplog.records if r.getMessage().startswith("group_books_differ")]
    assert line.levelname == "ERROR" and f"chunks={books.chunk_id} " in line.getMessage()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("billing_audit")
    assert check_settled_groups() == 0  # recorded once

    GroupReconciliation.objects.update(status=BooksStatus.EXPLAINED, explanation="sandbox overbilling")
    call_command("billing_audit")
