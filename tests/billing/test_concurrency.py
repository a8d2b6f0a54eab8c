"""Many workers holding against one small balance at once, each on its own database
connection, on PostgreSQL where SELECT … FOR UPDATE really locks.

Every test starts its threads at a barrier so their transactions overlap. What makes
these tests able to fail is `ledger_chain_breaks`: it finds any entry written from a
stale read. The last two show what the write path rests on: a chunk that fits whole needs
no locked read at all (one conditional UPDATE), and a chunk that does not, decided message
by message, needs its lock (taken away, the decisions go stale, deterministically).
"""

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import OperationalError, connection

from billing import ledger
from billing.audit import audit_accounts
from billing.ledger import HoldRequest
from billing.models import CreditAccount, EntryKind, Hold, HoldStatus, LedgerEntry
from harness.academies import make_tenant
from harness.waiting import DEFAULT_TIMEOUT, wait_until
from tests.billing.conftest import hold, ledger_chain_breaks

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PRICE = Decimal("8.40")
BALANCE = Decimal("100.00")
FITS = int(BALANCE // PRICE)  # 11 holds: 92.40; a twelfth would need 100.80


# Each thread holds a connection of its own: more threads would only compete for the
# server's connection slots (max_connections, shared with other test sessions).
THREADS = 16


def _connected() -> bool:
    try:
        connection.ensure_connection()
        return True
    except OperationalError:  # "too many clients already": another session holds the slots
        connection.close()
        return False


def run_at_once(count: int, work) -> list:
    """Run work(i) in `count` threads released together, each already connected (waiting
    for a free connection slot if need be); return each result or exception."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(i: int) -> None:
        try:
            wait_until(_connected, what="a database connection")
            barrier.wait(timeout=DEFAULT_TIMEOUT)
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            # Each thread opened its own connection; leave none behind for the flush.
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * DEFAULT_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results


def outcome_counts(results: list) -> Counter:
    return Counter("ok" if r is True else "refused" if r is False else type(r).__name__ for r in results)


def funded_account():
    tenant = make_tenant()
    ledger.top_up(tenant=tenant, amount=BALANCE)
    return tenant, CreditAccount.objects.get(tenant=tenant)


def assert_consistent(account: CreditAccount) -> None:
    account.refresh_from_db()
    assert account.balance >= 0
    assert 0 <= account.held <= account.balance
    assert ledger_chain_breaks(account) == []
    assert audit_accounts() == []


def test_threads_holding_at_once_never_hold_more_than_the_balance():
    tenant, account = funded_account()

    results = run_at_once(THREADS, lambda i: hold(tenant, 1000 + i, PRICE))

    # Exactly as many as fit; every other one a clean refusal, nothing else.
    assert outcome_counts(results) == {"ok": FITS, "refused": THREADS - FITS}
    account.refresh_from_db()
    assert (account.balance, account.held) == (BALANCE, PRICE * FITS)
    assert Hold.objects.filter(account=account, status=HoldStatus.HELD).count() == FITS
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.HOLD).count() == FITS
    assert_consistent(account)


def test_chunks_held_at_once_fill_the_balance_and_no_more():
    tenant, account = funded_account()

    def hold_chunk(i: int) -> bool:
        requests = [HoldRequest(10_000 + 10 * i + k, PRICE) for k in range(5)]
        outcome = ledger.hold_credit(tenant=tenant, requests=requests)
        assert len(outcome.held) + len(outcome.refused) == 5
        return True

    results = run_at_once(THREADS, hold_chunk)

    assert outcome_counts(results) == {"ok": THREADS}
    account.refresh_from_db()
    assert (account.balance, account.held) == (BALANCE, PRICE * FITS)
    assert Hold.objects.filter(account=account).count() == FITS
    assert_consistent(account)


def test_holds_captures_and_releases_at_once_keep_the_ledger_whole():
    tenant, account = funded_account()

    def hold_then_settle(i: int) -> str:
        message_id = 20_000 + i
        if not hold(tenant, message_id, PRICE):
            return "refused"
        # Half the messages are sent and charged, half never go out.
        if i % 2:
            assert ledger.capture_holds(message_ids=[message_id]) == 1
            return "captured"
        assert ledger.release_holds(message_ids=[message_id]) == 1
        return "released"

    results = run_at_once(THREADS, hold_then_settle)

    counts = Counter(results)
    assert set(counts) <= {"captured", "released", "refused"}, results
    # A refusal means at least FITS holds were open or charged at that moment.
    assert counts["captured"] + counts["released"] >= FITS
    assert counts["captured"] <= FITS  # charges are never given back, so at most what fits
    account.refresh_from_db()
    assert (account.balance, account.held) == (BALANCE - PRICE * counts["captured"], Decimal("0.00"))
    assert_consistent(account)


def test_redelivered_work_for_one_message_moves_credit_once():
    tenant, account = funded_account()

    holds = run_at_once(THREADS, lambda i: hold(tenant, 1, PRICE))
    assert outcome_counts(holds) == {"ok": THREADS}
    captures = run_at_once(THREADS, lambda i: ledger.capture_holds(message_ids=[1]))
    assert sorted(captures) == [0] * (THREADS - 1) + [1]
    refunds = run_at_once(THREADS, lambda i: ledger.refund_captured(message_ids=[1]))
    assert sorted(refunds) == [0] * (THREADS - 1) + [1]

    account.refresh_from_db()
    assert (account.balance, account.held) == (BALANCE, Decimal("0.00"))
    kinds = list(LedgerEntry.objects.filter(account=account).order_by("id").values_list("kind", flat=True))
    assert kinds == [EntryKind.TOP_UP, EntryKind.HOLD, EntryKind.CAPTURE, EntryKind.REFUND]
    assert_consistent(account)


# --- the one locked statement ---------------------------------------------------------


@pytest.fixture
def unlocked_reads(monkeypatch):
    """Replace the locked read (the fallback's, when a chunk does not fit whole) with a plain
    one, and hold every worker at a barrier right after it: all of them then decide on the
    same, soon stale, account state."""

    def install(workers: int) -> None:
        barrier = threading.Barrier(workers)

        def read_without_lock(**lookup) -> CreditAccount:
            account = CreditAccount.objects.get(**lookup)
            barrier.wait(timeout=DEFAULT_TIMEOUT)
            return account

        monkeypatch.setattr(ledger, "_lock_account", read_without_lock)

    return install


def test_chunks_that_fit_whole_never_read_the_account_under_a_lock(monkeypatch):
    tenant, account = funded_account()

    def no_locked_read(**lookup):
        raise AssertionError("a chunk that fits took the account's row lock for a read")

    monkeypatch.setattr(ledger, "_lock_account", no_locked_read)
    per_chunk = FITS // 4  # 2 messages each: 8 of the 11 that fit

    def hold_chunk(i: int) -> bool:
        outcome = ledger.hold_credit(tenant=tenant, requests=[
            HoldRequest(50_000 + 10 * i + k, PRICE) for k in range(per_chunk)])
        return len(outcome.held) == per_chunk

    results = run_at_once(4, hold_chunk)

    # Each chunk was one conditional UPDATE (with its entry, from the row it updated): all of
    # them held, and the entries still chain, each one after the one before.
    assert outcome_counts(results) == {"ok": 4}
    account.refresh_from_db()
    assert account.held == PRICE * per_chunk * 4
    assert LedgerEntry.objects.filter(account=account, kind=EntryKind.HOLD, message_count=per_chunk).count() == 4
    assert_consistent(account)


def test_without_the_lock_the_fallback_decides_on_stale_reads_and_only_the_condition_stops_it(unlocked_reads):
    tenant = make_tenant()
    ledger.top_up(tenant=tenant, amount=Decimal("10.00"))
    account = CreditAccount.objects.get(tenant=tenant)
    unlocked_reads(4)

    def hold_chunk(i: int) -> bool:
        # 8.40 + 200.00 never fits whole, so every chunk decides message by message.
        outcome = ledger.hold_credit(tenant=tenant, requests=[
            HoldRequest(40_000 + i, PRICE), HoldRequest(41_000 + i, Decimal("200.00"))])
        return outcome.held == [40_000 + i]

    results = run_at_once(4, hold_chunk)

    # Every worker saw 10.00 available and believed 8.40 fitted. Its own insufficient-credit
    # decision never fired; the conditional UPDATE (balance - held >= 8.40) refused the
    # three late ones, as errors that roll their holds back. With the lock (the tests
    # above), these are clean refusals.
    assert outcome_counts(results) == {"ok": 1, "RuntimeError": 3}
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("10.00"), PRICE)
    assert Hold.objects.filter(account=account).count() == 1
    assert audit_accounts() == []
