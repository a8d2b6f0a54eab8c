"""Credit movements: top up, hold, capture, release, refund, adjust.

Each function is one transaction that locks the academy's account row first
(SELECT … FOR UPDATE), so concurrent workers serialize on the balance instead of
racing on a stale read, and writes one ledger entry per movement. Hold, capture,
release and refund are keyed by message id and idempotent: a redelivered task that
repeats one changes nothing.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Coalesce, Round

from billing.models import ZERO, CreditAccount, EntryKind, Hold, HoldStatus, LedgerEntry
from project import clock
from tenants.models import Tenant


class InsufficientCredit(Exception):
    code = "insufficient_credit"

    def __init__(self, *, available: Decimal, requested: Decimal):
        self.available, self.requested = available, requested
        super().__init__(f"requested {requested}, available {available}")


@dataclass(frozen=True)
class HoldRequest:
    message_id: int
    amount: Decimal


@dataclass
class HoldOutcome:
    held: list[int] = field(default_factory=list)
    # Messages whose hold did not fit in the available credit; nothing was written for them.
    refused: list[int] = field(default_factory=list)


def account_for(tenant: Tenant) -> CreditAccount:
    account, _ = CreditAccount.objects.get_or_create(tenant=tenant)
    return account


def top_up(*, tenant: Tenant, amount: Decimal, memo: str = "", user=None) -> LedgerEntry:
    if amount <= 0:
        raise ValueError("a top-up must be positive")
    account_for(tenant)
    with transaction.atomic():
        account = _lock_account(tenant_id=tenant.id)
        return _apply(account, [_Entry(EntryKind.TOP_UP, balance=amount, memo=memo, user=user)])[0]


def adjust(*, tenant: Tenant, amount: Decimal, memo: str, user=None) -> LedgerEntry:
    """A correction by staff. It may take credit away, but never below what is held."""
    if not memo:
        raise ValueError("an adjustment needs a memo saying why")
    account_for(tenant)
    with transaction.atomic():
        account = _lock_account(tenant_id=tenant.id)
        if account.balance + amount < account.held:
            raise InsufficientCredit(available=account.available, requested=-amount)
        return _apply(account, [_Entry(EntryKind.ADJUSTMENT, balance=amount, memo=memo, user=user)])[0]


def hold_credit(*, tenant: Tenant, requests: Sequence[HoldRequest], all_or_nothing: bool = False) -> HoldOutcome:
    """Reserve credit for many messages in one transaction.

    Messages that already have a hold count as held and are not charged again.
    A request that does not fit in what is left is refused and changes nothing; with
    `all_or_nothing`, one that does not fit raises InsufficientCredit and nothing is held
    (a send request is accepted whole or refused whole).
    """
    outcome = HoldOutcome()
    if not requests:
        return outcome
    account_for(tenant)
    with transaction.atomic():
        account = _lock_account(tenant_id=tenant.id)
        existing = set(
            Hold.objects.filter(message_id__in=[r.message_id for r in requests]).values_list(
                "message_id", flat=True
            )
        )
        available = account.available
        new_holds, entries = [], []
        for request in requests:
            if request.message_id in existing:
                outcome.held.append(request.message_id)
            elif request.amount <= available:
                available -= request.amount
                new_holds.append(Hold(account=account, message_id=request.message_id, amount=request.amount))
                entries.append(_Entry(EntryKind.HOLD, held=request.amount, message_id=request.message_id))
                outcome.held.append(request.message_id)
            else:
                outcome.refused.append(request.message_id)
        if all_or_nothing and outcome.refused:
            wanted = sum((r.amount for r in requests if r.message_id not in existing), ZERO)
            raise InsufficientCredit(available=account.available, requested=wanted)
        Hold.objects.bulk_create(new_holds)
        _apply(account, entries)
    return outcome


def capture_holds(*, message_ids: Iterable[int], amounts: Mapping[int, Decimal] | None = None) -> int:
    """Charge held messages. `amounts` captures less than was held (what was actually
    billed, e.g. an AlimTalk that did not fall back to LMS); the rest is released."""
    amounts = amounts or {}
    # A negative charge would credit the account, and the ledger would still balance.
    if any(amount < 0 for amount in amounts.values()):
        raise ValueError("a captured amount cannot be negative")

    def close(hold: Hold) -> tuple[list["_Entry"], dict]:
        charged = min(amounts.get(hold.message_id, hold.amount), hold.amount)
        entries = [_Entry(EntryKind.CAPTURE, balance=-charged, held=-charged, message_id=hold.message_id)]
        if charged < hold.amount:
            entries.append(_Entry(EntryKind.RELEASE, held=charged - hold.amount, message_id=hold.message_id))
        return entries, {"status": HoldStatus.CAPTURED, "captured_amount": charged}

    return _close_holds(message_ids, status=HoldStatus.HELD, close=close)


def release_holds(*, message_ids: Iterable[int], memo: str = "") -> int:
    """Give held credit back for messages that were not sent."""

    def close(hold: Hold) -> tuple[list["_Entry"], dict]:
        entries = [_Entry(EntryKind.RELEASE, held=-hold.amount, message_id=hold.message_id, memo=memo)]
        return entries, {"status": HoldStatus.RELEASED}

    return _close_holds(message_ids, status=HoldStatus.HELD, close=close)


def refund_captured(*, message_ids: Iterable[int], memo: str = "") -> int:
    """Return a captured charge once, for a message that failed after Solapi accepted it
    (Solapi refunds us for those too)."""

    def close(hold: Hold) -> tuple[list["_Entry"], dict]:
        entries = [_Entry(EntryKind.REFUND, balance=hold.captured_amount, message_id=hold.message_id, memo=memo)]
        return (entries if hold.captured_amount else []), {"refunded": True}

    return _close_holds(message_ids, status=HoldStatus.CAPTURED, close=close, refunded=False)


# --- reads: other apps see holds and entries through these, never through the models ---


@dataclass(frozen=True)
class HoldState:
    """Where one message's credit stands."""

    message_id: int
    amount: Decimal
    status: str
    captured_amount: Decimal
    refunded: bool


def holds_for(message_ids: Iterable[int]) -> dict[int, HoldState]:
    """Message id → its hold, for the messages that have one."""
    rows = Hold.objects.filter(message_id__in=list(message_ids)).values_list(
        "message_id", "amount", "status", "captured_amount", "refunded")
    return {row[0]: HoldState(*row) for row in rows}


def messages_with_open_holds() -> QuerySet:
    """Ids of the messages whose credit is still held. Lazy, so a caller can filter by it
    in one query (`id__in=`) however many there are."""
    return Hold.objects.filter(status=HoldStatus.HELD).values_list("message_id", flat=True)


def credit_totals() -> dict[str, Decimal]:
    """Balance and held credit summed over every academy (one row per academy: cheap)."""
    totals = CreditAccount.objects.aggregate(balance=Coalesce(Sum("balance"), ZERO), held=Coalesce(Sum("held"), ZERO))
    return {"balance": totals["balance"], "held": totals["held"]}


def entries_for_message(message_id: int) -> list[LedgerEntry]:
    """Every credit movement of one message, oldest first (entries are never changed)."""
    return list(LedgerEntry.objects.filter(message_id=message_id).order_by("id"))


def recent_entries(tenant: Tenant, *, limit: int) -> list[dict]:
    """The academy's latest movements, newest first, as plain rows."""
    return list(LedgerEntry.objects.filter(account__tenant=tenant).order_by("-id").values(
        "id", "kind", "balance_delta", "held_delta", "balance_after", "held_after", "message_id", "memo", "created"
    )[:limit])


# --- internals ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    kind: str
    balance: Decimal = ZERO
    held: Decimal = ZERO
    message_id: int | None = None
    memo: str = ""
    user: object = None


def _lock_account(**lookup) -> CreditAccount:
    return CreditAccount.objects.select_for_update().get(**lookup)


def _close_holds(message_ids: Iterable[int], *, status: str,
                 close: Callable[[Hold], tuple[list[_Entry], dict]], **filters) -> int:
    """Move open holds to a final state under the account lock; holds already moved
    are skipped, which is what makes every caller idempotent.

    `close(hold)` returns the hold's ledger entries and its new field values. Holds with
    the same new values are written with one UPDATE: a chunk's thousand captures are one
    statement, not a thousand."""
    message_ids = list(message_ids)
    if not message_ids:
        return 0
    account_ids = sorted(
        set(Hold.objects.filter(message_id__in=message_ids, status=status).values_list("account_id", flat=True))
    )
    changed = 0
    # One account at a time, in id order: a fixed lock order cannot deadlock.
    for account_id in account_ids:
        with transaction.atomic():
            account = _lock_account(id=account_id)
            holds = list(
                Hold.objects.select_for_update().filter(
                    account_id=account_id, message_id__in=message_ids, status=status, **filters
                )
            )
            if not holds:
                continue
            entries, same_changes = [], defaultdict(list)
            for hold in holds:
                hold_entries, changes = close(hold)
                entries.extend(hold_entries)
                same_changes[tuple(sorted(changes.items()))].append(hold.id)
            for changes, hold_ids in same_changes.items():
                Hold.objects.filter(id__in=hold_ids).update(**dict(changes), closed=Coalesce("closed", clock.now()))
            _apply(account, entries)
            changed += len(holds)
    return changed


def _apply(account: CreditAccount, entries: Sequence[_Entry]) -> list[LedgerEntry]:
    """Write the entries and the account's new totals. The caller holds the lock."""
    if not entries:
        return []
    balance, held = account.balance, account.held
    rows = []
    for entry in entries:
        balance += entry.balance
        held += entry.held
        rows.append(
            LedgerEntry(
                account=account,
                kind=entry.kind,
                balance_delta=entry.balance,
                held_delta=entry.held,
                balance_after=balance,
                held_after=held,
                message_id=entry.message_id,
                memo=entry.memo,
                created_by=entry.user,
            )
        )
    if balance < 0 or held < 0 or held > balance:
        # Unreachable through the functions above; the database constraints agree.
        raise InsufficientCredit(available=account.available, requested=account.balance - balance)
    # Round in SQL: SQLite does NUMERIC arithmetic in floating point, and 34.30 − 25.90
    # stored as 8.399999999999999 would fail the CHECK on the next release of 8.40.
    CreditAccount.objects.filter(pk=account.pk).update(
        balance=Round(F("balance") + (balance - account.balance), 2),
        held=Round(F("held") + (held - account.held), 2),
    )
    account.balance, account.held = balance, held
    return LedgerEntry.objects.bulk_create(rows)
