"""The credit ledger: every movement is one locked transaction with ledger entries
that rebuild the stored balance and held amount, and repeats change nothing."""

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from billing import ledger
from billing.audit import audit_accounts
from billing.ledger import HoldRequest, InsufficientCredit
from billing.models import CreditAccount, EntryKind, Hold, HoldStatus, LedgerEntry, MessageType
from billing.pricing import hold_amount
from harness.academies import make_tenant
from tests.billing.conftest import PLATFORM_PRICES, Snapshot, hold, ledger_chain_breaks, snapshot

pytestmark = pytest.mark.django_db

SMS = PLATFORM_PRICES[MessageType.SMS]  # 8.40


def entries(tenant, message_id=None) -> list[tuple]:
    rows = LedgerEntry.objects.filter(account__tenant=tenant).order_by("id")
    if message_id is not None:
        rows = rows.filter(message_id=message_id)
    return list(rows.values_list("kind", "balance_delta", "held_delta", "balance_after", "held_after"))


def funded(amount: str):
    tenant = make_tenant()
    ledger.top_up(tenant=tenant, amount=Decimal(amount))
    return tenant


# --- top-up and adjustment ----------------------------------------------------------


def test_top_up_raises_the_balance_with_one_entry(tenant):
    user = get_user_model().objects.create_user("원장")
    ledger.top_up(tenant=tenant, amount=Decimal("10000.00"), memo="계좌이체", user=user)
    ledger.top_up(tenant=tenant, amount=Decimal("5000.00"))
    account = CreditAccount.objects.get(tenant=tenant)
    assert (account.balance, account.held, account.available) == (Decimal("15000.00"), 0, Decimal("15000.00"))
    assert entries(tenant) == [
        (EntryKind.TOP_UP, Decimal("10000.00"), 0, Decimal("10000.00"), 0),
        (EntryKind.TOP_UP, Decimal("5000.00"), 0, Decimal("15000.00"), 0),
    ]
    first = LedgerEntry.objects.filter(account=account).order_by("id").first()
    assert (first.memo, first.created_by) == ("계좌이체", user)
    assert audit_accounts() == []


@pytest.mark.parametrize("amount", ["0", "-1.00"])
def test_top_up_must_be_positive(amount):
    tenant = funded("100.00")
    before = snapshot(tenant)
    with pytest.raises(ValueError, match="positive"):
        ledger.top_up(tenant=tenant, amount=Decimal(amount))
    assert snapshot(tenant) == before


def test_adjust_takes_credit_away_down_to_what_is_held_but_not_below():
    tenant = funded("100.00")
    assert hold(tenant, 1, Decimal("30.00"))

    ledger.adjust(tenant=tenant, amount=Decimal("-70.00"), memo="오입금 정정")
    after_adjust = snapshot(tenant)
    assert (after_adjust.balance, after_adjust.held) == (Decimal("30.00"), Decimal("30.00"))

    with pytest.raises(InsufficientCredit) as caught:
        ledger.adjust(tenant=tenant, amount=Decimal("-0.01"), memo="한 푼 더")
    assert caught.value.code == "insufficient_credit"
    assert snapshot(tenant) == after_adjust

    ledger.adjust(tenant=tenant, amount=Decimal("20.00"), memo="보상")
    assert snapshot(tenant).balance == Decimal("50.00")
    kinds = [e[0] for e in entries(tenant)]
    assert kinds == [EntryKind.TOP_UP, EntryKind.HOLD, EntryKind.ADJUSTMENT, EntryKind.ADJUSTMENT]
    assert audit_accounts() == []


def test_adjust_needs_a_memo():
    tenant = funded("100.00")
    before = snapshot(tenant)
    with pytest.raises(ValueError, match="memo"):
        ledger.adjust(tenant=tenant, amount=Decimal("5.00"), memo="")
    assert snapshot(tenant) == before


# --- holds ------------------------------------------------------------------------


def test_hold_credit_reserves_a_batch_without_touching_the_balance():
    tenant = funded("100.00")
    outcome = ledger.hold_credit(tenant=tenant, requests=[HoldRequest(i, SMS) for i in range(1, 6)])
    assert (outcome.held, outcome.refused) == ([1, 2, 3, 4, 5], [])
    account = CreditAccount.objects.get(tenant=tenant)
    assert (account.balance, account.held, account.available) == (Decimal("100.00"), Decimal("42.00"), Decimal("58.00"))
    assert Hold.objects.filter(account=account, status=HoldStatus.HELD, amount=SMS).count() == 5
    # One entry for the batch, naming how many messages it reserved for (each one's share
    # is on its Hold), not one per message.
    assert entries(tenant)[1:] == [(EntryKind.HOLD, 0, Decimal("42.00"), Decimal("100.00"), Decimal("42.00"))]
    batch = LedgerEntry.objects.get(account=account, kind=EntryKind.HOLD)
    assert (batch.message_id, batch.message_count) == (None, 5)
    assert [(m.kind, m.held_delta) for m in ledger.movements_for_message(3)] == [(EntryKind.HOLD, SMS)]
    assert audit_accounts() == []


def _hold_batch_queries(tenant, first_id: int, size: int) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        outcome = ledger.hold_credit(
            tenant=tenant, requests=[HoldRequest(i, Decimal("1.00")) for i in range(first_id, first_id + size)]
        )
    assert len(outcome.held) == size
    return [q["sql"] for q in captured.captured_queries]


def test_holding_a_chunk_is_one_transaction_whose_queries_do_not_grow_with_its_size():
    tenant = funded("1000.00")
    one = _hold_batch_queries(tenant, first_id=1, size=1)
    many = _hold_batch_queries(tenant, first_id=100, size=60)
    assert len(many) == len(one)
    # Inside the test's transaction, hold_credit's atomic block is a savepoint: exactly one.
    assert sum(sql.startswith("SAVEPOINT") for sql in many) == 1
    if connection.vendor == "postgresql":
        # The account row is locked by one statement, the transaction's last: the conditional
        # UPDATE that also writes the entry. The holds were inserted before it, unlocked.
        account_statements = [i for i, sql in enumerate(many) if "billing_creditaccount" in sql
                              and not sql.startswith("SELECT")]
        assert account_statements == [len(many) - 2]  # then RELEASE SAVEPOINT
        assert "UPDATE billing_creditaccount" in many[-2] and "INSERT INTO billing_ledgerentry" in many[-2]
        assert not any("FOR UPDATE" in sql for sql in many)
        assert any(sql.startswith("INSERT INTO \"billing_hold\"") and "unnest" in sql for sql in many)
    assert snapshot(tenant).held == Decimal("61.00")


def test_a_chunk_that_does_not_fit_whole_is_decided_message_by_message():
    tenant = funded("20.00")
    assert hold(tenant, 1, Decimal("3.20"))
    # 16.80 is left: the chunk (25.20) does not fit, its first two messages do.
    outcome = ledger.hold_credit(tenant=tenant, requests=[HoldRequest(i, SMS) for i in (7, 5, 6)])
    assert (outcome.held, outcome.refused) == ([7, 5], [6])
    assert sorted(Hold.objects.values_list("message_id", flat=True)) == [1, 5, 7]
    assert entries(tenant)[-1] == (EntryKind.HOLD, 0, SMS * 2, Decimal("20.00"), Decimal("20.00"))
    assert LedgerEntry.objects.filter(account__tenant=tenant).first().message_count == 2
    assert audit_accounts() == []


def test_a_hold_that_does_not_fit_is_refused_and_writes_nothing():
    tenant = funded("20.00")
    # 8.40 + 8.40 fit in 20.00; the third does not, the cheap fourth still does.
    outcome = ledger.hold_credit(
        tenant=tenant,
        requests=[HoldRequest(1, SMS), HoldRequest(2, SMS), HoldRequest(3, SMS), HoldRequest(4, Decimal("3.20"))],
    )
    assert (outcome.held, outcome.refused) == ([1, 2, 4], [3])
    assert not Hold.objects.filter(message_id=3).exists()
    assert entries(tenant, message_id=3) == []
    after = snapshot(tenant)
    assert (after.balance, after.held) == (Decimal("20.00"), Decimal("20.00"))

    assert not hold(tenant, 5, Decimal("0.01"))
    assert snapshot(tenant) == after
    assert not Hold.objects.filter(message_id=5).exists()
    assert audit_accounts() == []


def test_amounts_given_as_whole_numbers_beside_decimals_are_held_and_captured():
    # PostgreSQL gets each column as one array, and psycopg refuses a list mixing int and
    # Decimal: a free message's 0 next to 8.40 must still go through.
    tenant = funded("100.00")
    outcome = ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, 0), HoldRequest(2, SMS), HoldRequest(3, 2)])
    assert outcome.held == [1, 2, 3]
    assert ledger.capture_holds(message_ids=[1, 2, 3], amounts={2: 5, 3: Decimal("1.50")}) == 3
    assert (snapshot(tenant).balance, snapshot(tenant).held) == (Decimal("93.50"), Decimal("0.00"))
    assert audit_accounts() == []


def test_an_academy_without_credit_is_refused():
    tenant = make_tenant()
    assert not hold(tenant, 1, SMS)
    assert snapshot(tenant) == Snapshot(balance=Decimal("0.00"), held=Decimal("0.00"), entries=0, holds=())


def test_holds_of_one_academy_do_not_touch_another():
    rich, poor = funded("100.00"), funded("5.00")
    assert hold(rich, 1, SMS)
    assert not hold(poor, 2, SMS)
    assert (snapshot(rich).held, snapshot(poor).held) == (SMS, Decimal("0.00"))


# --- idempotency --------------------------------------------------------------------


def test_holding_again_for_the_same_message_returns_the_existing_hold():
    tenant = funded("100.00")
    ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS), HoldRequest(2, SMS)])
    before = snapshot(tenant)
    # A redelivered task, even one that computed another price, gets the first hold back.
    outcome = ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, Decimal("25.90")), HoldRequest(2, SMS)])
    assert (outcome.held, outcome.refused) == ([1, 2], [])
    assert hold(tenant, 1, SMS)
    assert snapshot(tenant) == before
    assert Hold.objects.get(message_id=1).amount == SMS


def test_a_redelivered_hold_succeeds_even_when_credit_ran_out_since():
    tenant = funded("8.40")
    assert hold(tenant, 1, SMS)
    before = snapshot(tenant)
    # available is now 0, but message 1 is already paid for: not refused.
    outcome = ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS)])
    assert (outcome.held, outcome.refused) == ([1], [])
    assert snapshot(tenant) == before


def test_a_batch_naming_a_message_twice_cannot_hold_it_twice():
    # No caller does this (message ids come from a queryset); if one did, the whole batch
    # is refused rather than reserving twice (the unique key on Hold.message_id would too).
    tenant = funded("100.00")
    before = snapshot(tenant)
    with pytest.raises(ValueError, match="twice"):
        ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS), HoldRequest(1, SMS)])
    assert snapshot(tenant) == before


def test_capturing_twice_changes_nothing_the_second_time():
    tenant = funded("100.00")
    ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS), HoldRequest(2, SMS)])
    assert ledger.capture_holds(message_ids=[1, 2]) == 2
    after = snapshot(tenant)
    assert (after.balance, after.held) == (Decimal("83.20"), Decimal("0.00"))

    assert ledger.capture_holds(message_ids=[1, 2]) == 0
    assert ledger.release_holds(message_ids=[1, 2]) == 0  # a late "not sent" must not hand credit back
    assert ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS)]).held == [1]  # nor hold again
    assert snapshot(tenant) == after
    assert [e[:3] for e in entries(tenant)[1:]] == [
        (EntryKind.HOLD, 0, SMS * 2), (EntryKind.CAPTURE, -SMS * 2, -SMS * 2)]
    assert [(m.kind, m.balance_delta, m.held_delta) for m in ledger.movements_for_message(1)] == [
        (EntryKind.HOLD, 0, SMS), (EntryKind.CAPTURE, -SMS, -SMS)]
    assert audit_accounts() == []


def test_releasing_twice_changes_nothing_the_second_time():
    tenant = funded("100.00")
    ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS), HoldRequest(2, SMS)])
    assert ledger.release_holds(message_ids=[1], memo="수신거부") == 1
    after = snapshot(tenant)
    assert (after.balance, after.held) == (Decimal("100.00"), SMS)

    assert ledger.release_holds(message_ids=[1]) == 0
    assert ledger.capture_holds(message_ids=[1]) == 0  # a released message is never charged
    assert ledger.refund_captured(message_ids=[1]) == 0
    assert snapshot(tenant) == after
    assert entries(tenant, message_id=1)[-1] == (EntryKind.RELEASE, 0, -SMS, Decimal("100.00"), SMS)
    assert audit_accounts() == []


def test_closing_unknown_messages_changes_nothing():
    tenant = funded("100.00")
    before = snapshot(tenant)
    assert ledger.capture_holds(message_ids=[999]) == 0
    assert ledger.release_holds(message_ids=[999]) == 0
    assert ledger.refund_captured(message_ids=[999]) == 0
    assert ledger.capture_holds(message_ids=[]) == 0
    assert snapshot(tenant) == before


def test_capture_and_release_across_academies_in_one_call():
    first, second = funded("50.00"), funded("50.00")
    assert hold(first, 1, SMS)
    assert hold(second, 2, Decimal("25.90"))
    assert hold(second, 3, SMS)
    assert ledger.capture_holds(message_ids=[1, 2]) == 2
    assert ledger.release_holds(message_ids=[3]) == 1
    assert (snapshot(first).balance, snapshot(first).held) == (Decimal("41.60"), 0)
    assert (snapshot(second).balance, snapshot(second).held) == (Decimal("24.10"), 0)
    assert audit_accounts() == []


def test_cents_stay_exact_through_many_movements():
    # SQLite does NUMERIC arithmetic in binary floating point: held 34.30 − 25.90 was
    # stored as 8.399999999999999, and releasing the 8.40 still held then broke
    # CHECK (held >= 0). The ledger rounds in SQL; the audit compares in cents.
    tenant = funded("50.00")
    assert hold(tenant, 1, Decimal("25.90"))
    assert hold(tenant, 2, SMS)
    ledger.capture_holds(message_ids=[1])
    assert ledger.release_holds(message_ids=[2]) == 1
    assert (snapshot(tenant).balance, snapshot(tenant).held) == (Decimal("24.10"), Decimal("0.00"))

    prices = [SMS, Decimal("25.90"), Decimal("6.50"), Decimal("0.10"), Decimal("0.20"), Decimal("60.00")]
    expected = Decimal("24.10") + Decimal("10000.00")
    ledger.top_up(tenant=tenant, amount=Decimal("10000.00"))
    for i in range(100, 220):
        price = prices[i % len(prices)]
        assert hold(tenant, i, price)
        if i % 3 == 0:
            ledger.release_holds(message_ids=[i])
        else:
            billed = min(price, Decimal("6.50")) if i % 3 == 1 else price
            ledger.capture_holds(message_ids=[i], amounts={i: billed})
            expected -= billed
    account = CreditAccount.objects.get(tenant=tenant)
    assert (account.balance, account.held) == (expected, Decimal("0.00"))
    assert ledger_chain_breaks(account) == []
    assert audit_accounts() == []


# --- partial capture: AlimTalk with fallback -------------------------------------------


def test_alimtalk_holds_the_fallback_price_and_captures_what_was_billed():
    tenant = funded("100.00")
    held = hold_amount(PLATFORM_PRICES, MessageType.ATA, MessageType.SMS)
    assert held == SMS
    ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, held), HoldRequest(2, held)])

    # Message 1 arrived as AlimTalk (6.50); message 2 fell back to SMS (8.40, the full hold).
    ata = PLATFORM_PRICES[MessageType.ATA]
    assert ledger.capture_holds(message_ids=[1, 2], amounts={1: ata, 2: SMS}) == 2

    account = CreditAccount.objects.get(tenant=tenant)
    assert (account.balance, account.held) == (Decimal("100.00") - ata - SMS, Decimal("0.00"))
    # One capture entry for both: it charges what was billed and releases the held rest
    # (1.90), so its held delta is larger than its balance delta.
    assert [e[:3] for e in entries(tenant)[1:]] == [
        (EntryKind.HOLD, 0, SMS * 2), (EntryKind.CAPTURE, -ata - SMS, -SMS * 2)]
    assert [(m.kind, m.balance_delta, m.held_delta) for m in ledger.movements_for_message(1)] == [
        (EntryKind.HOLD, 0, SMS),
        (EntryKind.CAPTURE, -ata, -ata),
        # The unbilled remainder (1.90) goes back to available credit.
        (EntryKind.RELEASE, 0, ata - SMS),
    ]
    assert [(m.kind, m.balance_delta, m.held_delta) for m in ledger.movements_for_message(2)] == [
        (EntryKind.HOLD, 0, SMS), (EntryKind.CAPTURE, -SMS, -SMS)]
    hold = Hold.objects.get(message_id=1)
    assert (hold.status, hold.captured_amount, hold.amount) == (HoldStatus.CAPTURED, ata, SMS)
    assert audit_accounts() == []


def test_capture_never_charges_more_than_was_held():
    tenant = funded("100.00")
    assert hold(tenant, 1, SMS)
    ledger.capture_holds(message_ids=[1], amounts={1: Decimal("60.00")})
    assert snapshot(tenant).balance == Decimal("100.00") - SMS
    assert Hold.objects.get(message_id=1).captured_amount == SMS


def test_a_negative_captured_amount_is_refused_and_mints_no_credit():
    tenant = funded("10.00")
    assert hold(tenant, 1, SMS)
    before = snapshot(tenant)
    with pytest.raises(ValueError, match="negative"):
        ledger.capture_holds(message_ids=[1], amounts={1: Decimal("-5.00")})
    assert snapshot(tenant) == before


# --- refunds ------------------------------------------------------------------------


def test_refund_returns_a_captured_charge_exactly_once():
    tenant = funded("100.00")
    ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS), HoldRequest(2, SMS)])
    ledger.capture_holds(message_ids=[1, 2], amounts={1: Decimal("6.50")})

    assert ledger.refund_captured(message_ids=[1], memo="failed after acceptance") == 1
    after = snapshot(tenant)
    assert (after.balance, after.held) == (Decimal("100.00") - SMS, Decimal("0.00"))
    # The refund gives back what was captured (6.50), not what was held (8.40).
    assert entries(tenant, message_id=1)[-1] == (EntryKind.REFUND, Decimal("6.50"), 0, after.balance, 0)
    hold = Hold.objects.get(message_id=1)
    assert (hold.status, hold.refunded) == (HoldStatus.CAPTURED, True)

    assert ledger.refund_captured(message_ids=[1]) == 0
    assert snapshot(tenant) == after
    assert audit_accounts() == []


def test_only_captured_holds_are_refunded():
    tenant = funded("100.00")
    ledger.hold_credit(tenant=tenant, requests=[HoldRequest(1, SMS), HoldRequest(2, SMS)])
    ledger.release_holds(message_ids=[2])
    before = snapshot(tenant)
    # 1 is still held and 2 was released: neither was ever charged.
    assert ledger.refund_captured(message_ids=[1, 2]) == 0
    assert snapshot(tenant) == before
    assert not Hold.objects.filter(refunded=True).exists()


# --- what the database itself refuses -------------------------------------------------


def test_ledger_entries_are_append_only():
    tenant = funded("100.00")
    entry = LedgerEntry.objects.get(account__tenant=tenant)
    entry.balance_delta = Decimal("1000000.00")
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    assert LedgerEntry.objects.get(pk=entry.pk).balance_delta == Decimal("100.00")


@pytest.mark.parametrize(
    ("balance", "held"),
    [
        (F("balance") - Decimal("100.01"), F("held")),  # negative balance
        (F("balance"), Decimal("-0.01")),  # negative held
        (F("balance"), F("balance") + Decimal("0.01")),  # more held than owned
    ],
    ids=["negative-balance", "negative-held", "held-over-balance"],
)
def test_the_database_refuses_impossible_accounts_even_bypassing_the_services(balance, held):
    tenant = funded("100.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(tenant=tenant).update(balance=balance, held=held)
    assert (snapshot(tenant).balance, snapshot(tenant).held) == (Decimal("100.00"), Decimal("0.00"))


def test_the_database_refuses_a_capture_above_the_hold_and_a_second_hold_per_message():
    tenant = funded("100.00")
    assert hold(tenant, 1, SMS)
    account = CreditAccount.objects.get(tenant=tenant)
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.filter(message_id=1).update(captured_amount=F("amount") + 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.create(account=account, message_id=1, amount=SMS)
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.create(account=account, message_id=2, amount=Decimal("-1.00"))
    assert Hold.objects.filter(account=account).count() == 1


# --- the audit ----------------------------------------------------------------------


def _busy_academy():
    """A little of everything: top-up, holds, partial capture, release, refund, adjustment."""
    tenant = funded("100.00")
    ledger.hold_credit(tenant=tenant, requests=[HoldRequest(i, SMS) for i in range(1, 6)])
    ledger.capture_holds(message_ids=[1, 2], amounts={1: Decimal("6.50")})
    ledger.release_holds(message_ids=[3])
    ledger.refund_captured(message_ids=[2])
    ledger.adjust(tenant=tenant, amount=Decimal("-10.00"), memo="정정")
    return tenant


def test_audit_is_clean_after_every_kind_of_movement():
    tenant = _busy_academy()
    account = CreditAccount.objects.get(tenant=tenant)
    # 100 − 6.50 (capture) − 8.40 (capture) + 8.40 (refund) − 10 (adjust); 4 and 5 still held.
    assert (account.balance, account.held) == (Decimal("83.50"), Decimal("16.80"))
    assert {kind for kind, *_ in entries(tenant)} == set(EntryKind.values)
    assert ledger_chain_breaks(account) == []
    assert audit_accounts() == []
    out = StringIO()
    call_command("billing_audit", stdout=out)
    assert "ledger consistent" in out.getvalue()


@pytest.mark.corrupts_ledger
def test_audit_reports_a_balance_changed_behind_the_ledgers_back():
    tenant = _busy_academy()
    make_tenant()  # an untouched academy is not reported
    clean = make_tenant()
    ledger.top_up(tenant=clean, amount=Decimal("1.00"))
    CreditAccount.objects.filter(tenant=tenant).update(balance=F("balance") + Decimal("1000.00"))

    account = CreditAccount.objects.get(tenant=tenant)
    assert audit_accounts() == [f"{tenant.slug} (account {account.id}): balance 1083.50 but the ledger sums to 83.50"]


@pytest.mark.corrupts_ledger
def test_audit_reports_held_that_matches_neither_the_ledger_nor_the_open_holds():
    tenant = _busy_academy()
    CreditAccount.objects.filter(tenant=tenant).update(held=Decimal("0.00"))
    name = f"{tenant.slug} (account {tenant.credit_account.id})"
    assert audit_accounts() == [
        f"{name}: held 0.00 but the ledger sums to 16.80",
        f"{name}: held 0.00 but open holds sum to 16.80",
    ]


@pytest.mark.corrupts_ledger
def test_audit_reports_an_edited_ledger_entry():
    # save() refuses edits, but a queryset update does not: the audit catches it.
    tenant = _busy_academy()
    LedgerEntry.objects.filter(account__tenant=tenant, kind=EntryKind.TOP_UP).update(balance_delta=Decimal("90.00"))
    name = f"{tenant.slug} (account {tenant.credit_account.id})"
    assert audit_accounts() == [f"{name}: balance 83.50 but the ledger sums to 73.50"]


@pytest.mark.corrupts_ledger
def test_audit_reports_a_refund_of_a_hold_that_was_never_captured():
    tenant = _busy_academy()
    Hold.objects.filter(message_id=4).update(refunded=True)
    name = f"{tenant.slug} (account {tenant.credit_account.id})"
    assert audit_accounts() == [f"{name}: 1 refunded holds were never captured"]


@pytest.mark.corrupts_ledger
def test_audit_reports_chunk_entries_that_disagree_with_their_holds():
    # One entry moves a whole chunk; each message's share is on its Hold. A Hold changed
    # behind the ledger's back no longer adds up to the entries of its kind.
    tenant = _busy_academy()
    name = f"{tenant.slug} (account {tenant.credit_account.id})"
    Hold.objects.filter(message_id=1).update(captured_amount=Decimal("5.00"))  # captured 6.50
    assert audit_accounts() == [f"{name}: capture entries charge -14.90 but the captured holds -13.40"]
    Hold.objects.filter(message_id=1).update(captured_amount=Decimal("6.50"))
    Hold.objects.filter(message_id=4).update(amount=Decimal("9.00"))  # held 8.40
    assert audit_accounts() == [f"{name}: held 16.80 but open holds sum to 17.40",
                                f"{name}: hold entries reserve 42.00 but the holds sum to 42.60"]


@pytest.mark.corrupts_ledger
def test_billing_audit_command_fails_on_drift():
    tenant = _busy_academy()
    CreditAccount.objects.filter(tenant=tenant).update(balance=F("balance") - Decimal("0.01"))
    err = StringIO()
    with pytest.raises(CommandError, match=r"billing audit: 1 problem\(s\)"):
        call_command("billing_audit", stdout=StringIO(), stderr=err)
    name = f"{tenant.slug} (account {tenant.credit_account.id})"
    assert err.getvalue() == f"{name}: balance 83.49 but the ledger sums to 83.50\n"
