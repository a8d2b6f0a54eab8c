"""Credit movements: top up, hold, capture, release, refund, adjust.

The write path (docs/exactly-once.md, "Credit: the write path"):

- **The account row is locked for one statement.** Every movement changes the account with
  one conditional UPDATE (`balance + Δbalance >= held + Δheld`, so it never overspends) that
  writes its ledger entry in the same statement (from the UPDATE's RETURNING, so the entry's
  balance_after/held_after are the row's own). Its row lock lasts from that statement to the
  commit right after it: chunks of one academy no longer queue behind each other's inserts.
- **Per-message rows are written before it, outside the lock.** A Hold per message, keyed by
  message id, inserted with ON CONFLICT DO NOTHING; capture, release and refund move holds
  with one UPDATE … WHERE status = <from>. Only the rows that statement actually wrote or
  moved (RETURNING) are counted into the account, so a repeated or concurrent call moves
  each message's credit once. Holds are locked in message-id order, accounts in id order
  after them: no two movements wait for each other in a circle.
- **One ledger entry per movement, not per message.** A chunk's thousand holds are one HOLD
  entry (message_count 1000), their captures one CAPTURE entry (its held delta includes what
  a cheaper delivery released). Per-message entries are not needed for correctness: the
  Hold already says what each message was held, charged and refunded, and billing_audit
  checks that the entries of each kind sum to the holds (billing/audit.py).
- **When a whole chunk does not fit** (credit is running out), the decision falls back to
  message by message: lock the account row, keep in order what fits, delete the holds of
  the rest (this transaction's own rows) and move the account once.

PostgreSQL gets set-based SQL (unnest arrays, one statement per step); SQLite, the dev stack
and `make test`, the ORM, where the database-wide write lock already serializes movements.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Coalesce, Round

from billing.models import ZERO, CreditAccount, EntryKind, Hold, HoldStatus, LedgerEntry
from project import clock
from project.sql import in_values, insert_ignoring_conflicts, insert_rows, on_postgresql
from tenants.models import Tenant


class InsufficientCredit(Exception):
    code = "insufficient_credit"

    def __init__(self, *, available: Decimal, requested: Decimal):
        self.available, self.requested = available, requested
        super().__init__(f"requested {requested}, available {available}")


class HoldRequest(NamedTuple):
    """One message's credit to hold. A tuple: a send asks for up to 10,000 at once."""

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
    account = account_for(tenant)
    with transaction.atomic():
        return _move(account.id, EntryKind.TOP_UP, balance=amount, memo=memo, user=user)


def adjust(*, tenant: Tenant, amount: Decimal, memo: str, user=None) -> LedgerEntry:
    """A correction by staff. It may take credit away, but never below what is held."""
    if not memo:
        raise ValueError("an adjustment needs a memo saying why")
    account = account_for(tenant)
    with transaction.atomic():
        entry = _move(account.id, EntryKind.ADJUSTMENT, balance=amount, memo=memo, user=user)
    if entry is None:
        account.refresh_from_db()
        raise InsufficientCredit(available=account.available, requested=-amount)
    return entry


def hold_credit(*, tenant: Tenant, requests: Sequence[HoldRequest], all_or_nothing: bool = False,
                new_messages: bool = False, account: CreditAccount | None = None) -> HoldOutcome:
    """Reserve credit for many messages in one transaction.

    Messages that already have a hold count as held and are not charged again.
    A request that does not fit in what is left is refused and changes nothing; with
    `all_or_nothing`, one that does not fit raises InsufficientCredit and nothing is held
    (a send request is accepted whole or refused whole).

    Inside a caller's transaction (the API's send), the account's row stays locked from
    this call's last statement until that transaction commits: call it last. `new_messages`:
    the messages were written in that transaction, so none can have a hold yet, and the holds
    are inserted without looking for one (a hold there would fail the whole transaction).
    With `all_or_nothing`, InsufficientCredit leaves a caller's transaction unusable: let it
    end that transaction. `account`: the tenant's, when the caller has read it already (only
    its id is used: the movement is one conditional UPDATE of the row as it is then).
    """
    outcome = HoldOutcome()
    if not requests:
        return outcome
    message_ids = [r.message_id for r in requests]
    if len(set(message_ids)) != len(message_ids):
        raise ValueError("a message is named twice in one hold_credit call")
    account = account or account_for(tenant)
    now = clock.now()
    # All or nothing, a refusal fails the caller's transaction whole (the API's send raises on
    # it): a savepoint to undo only this call would cost two round trips for nothing.
    with transaction.atomic(savepoint=not all_or_nothing):
        # The per-message rows first, without the account's lock. Sorted by message id: two
        # executions of one chunk wait for each other on the unique key, in the same order.
        rows = [{"message_id": message_id, "amount": amount} for message_id, amount in sorted(requests)]
        same = {"account_id": account.id, "status": HoldStatus.HELD, "captured_amount": ZERO, "refunded": False,
                "created": now}
        # Only the holds written now are charged: an existing one (a redelivered task, the
        # API's hold at acceptance) counts as held as it is.
        if new_messages:
            insert_rows(Hold, rows, same=same)
            fresh = {row["message_id"]: row["amount"] for row in rows}
        else:
            fresh = dict(insert_ignoring_conflicts(Hold, rows, same=same, returning=("message_id", "amount")))
        refused: list[int] = []
        if fresh:
            total = sum(fresh.values(), ZERO)
            if _move(account.id, EntryKind.HOLD, held=total, message_ids=list(fresh)) is None:
                if all_or_nothing:
                    account.refresh_from_db()
                    raise InsufficientCredit(available=account.available, requested=total)
                refused = _hold_what_fits(account.id, [i for i in message_ids if i in fresh], fresh)
    refused_set = set(refused)
    outcome.held = [i for i in message_ids if i not in refused_set]
    outcome.refused = refused
    return outcome


def capture_holds(*, message_ids: Iterable[int], amounts: Mapping[int, Decimal] | None = None) -> int:
    """Charge held messages. `amounts` captures less than was held (what was actually
    billed, e.g. an AlimTalk that did not fall back to LMS); the rest is released, in the
    same ledger entry (its held delta is larger than its balance delta by that much)."""
    amounts = amounts or {}
    # A negative charge would credit the account, and the ledger would still balance.
    if any(amount < 0 for amount in amounts.values()):
        raise ValueError("a captured amount cannot be negative")
    return _close_holds(_CAPTURE, message_ids, amounts=amounts)


def release_holds(*, message_ids: Iterable[int], memo: str = "") -> int:
    """Give held credit back for messages that were not sent."""
    return _close_holds(_RELEASE, message_ids, memo=memo)


def refund_captured(*, message_ids: Iterable[int], memo: str = "") -> int:
    """Return a captured charge once, for a message that failed after Solapi accepted it
    (Solapi refunds us for those too)."""
    return _close_holds(_REFUND, message_ids, memo=memo)


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
    # One array parameter, not a thousand (project/sql.py): finalize reads a chunk's holds back.
    rows = Hold.objects.filter(message_id__in=in_values(list(message_ids), "bigint")).values_list(
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


@dataclass(frozen=True)
class CreditMovement:
    """One message's share of a credit movement (its ledger entry may cover a whole chunk)."""

    at: datetime
    kind: str
    balance_delta: Decimal
    held_delta: Decimal


def movements_for_message(message_id: int) -> list[CreditMovement]:
    """Every credit movement of one message, oldest first, read from its Hold (which records
    each one: held, then captured or released, then perhaps refunded)."""
    hold = Hold.objects.filter(message_id=message_id).first()
    if hold is None:
        return []
    moves = [CreditMovement(hold.created, EntryKind.HOLD, ZERO, hold.amount)]
    if hold.status == HoldStatus.CAPTURED:
        moves.append(CreditMovement(hold.closed, EntryKind.CAPTURE, -hold.captured_amount, -hold.captured_amount))
        if hold.captured_amount < hold.amount:
            moves.append(CreditMovement(hold.closed, EntryKind.RELEASE, ZERO, hold.captured_amount - hold.amount))
    elif hold.status == HoldStatus.RELEASED:
        moves.append(CreditMovement(hold.closed, EntryKind.RELEASE, ZERO, -hold.amount))
    if hold.refunded and hold.captured_amount:
        moves.append(CreditMovement(hold.refunded_at or hold.closed, EntryKind.REFUND, hold.captured_amount, ZERO))
    return moves


def recent_entries(tenant: Tenant, *, limit: int) -> list[dict]:
    """The academy's latest movements, newest first, as plain rows."""
    return list(LedgerEntry.objects.filter(account__tenant=tenant).order_by("-id").values(
        "id", "kind", "balance_delta", "held_delta", "balance_after", "held_after", "message_id", "message_count",
        "memo", "created"
    )[:limit])


# --- internals ----------------------------------------------------------------------


def _lock_account(**lookup) -> CreditAccount:
    return CreditAccount.objects.select_for_update().get(**lookup)


def _hold_what_fits(account_id: int, fresh_ids: list[int], fresh: dict[int, Decimal]) -> list[int]:
    """The whole chunk did not fit: decide message by message, in the order asked, under the
    account's row lock (one short section: a read, one DELETE, one movement). Returns the
    refused message ids, whose holds (written by this transaction, seen by no one else)
    are deleted."""
    account = _lock_account(id=account_id)
    available = account.available
    fits, refused = [], []
    for message_id in fresh_ids:
        if fresh[message_id] <= available:
            available -= fresh[message_id]
            fits.append(message_id)
        else:
            refused.append(message_id)
    if refused:
        Hold.objects.filter(message_id__in=refused).delete()
    if fits and _move(account_id, EntryKind.HOLD, held=sum((fresh[i] for i in fits), ZERO),
                      message_ids=fits) is None:
        raise RuntimeError(f"account {account_id} changed under its row lock")
    return refused


def _move(account_id: int, kind: str, *, balance: Decimal = ZERO, held: Decimal = ZERO,
          message_ids: Sequence[int] = (), memo: str = "", user=None) -> LedgerEntry | None:
    """Change the account by (balance, held) and write the movement's ledger entry, only if
    the account stays whole (held within balance, neither negative); None when it would not.
    The caller is in a transaction; the account's row stays locked until it commits."""
    entry = LedgerEntry(account_id=account_id, kind=kind, balance_delta=balance, held_delta=held,
                        message_id=message_ids[0] if len(message_ids) == 1 else None,
                        message_count=len(message_ids), memo=memo[:200], created_by=user, created=clock.now())
    if on_postgresql():
        return _move_in_one_statement(entry)
    return _move_with_orm(entry)


_MOVE_SQL = f"""
    WITH moved AS (
        UPDATE {CreditAccount._meta.db_table}
        SET balance = balance + %(balance)s::numeric, held = held + %(held)s::numeric, updated = %(now)s
        WHERE id = %(account)s
          AND balance + %(balance)s::numeric >= held + %(held)s::numeric AND held + %(held)s::numeric >= 0
        RETURNING id, balance, held)
    INSERT INTO {LedgerEntry._meta.db_table} (account_id, kind, balance_delta, held_delta, balance_after,
                                             held_after, message_id, message_count, memo, created_by_id, created)
    SELECT id, %(kind)s::varchar, %(balance)s::numeric, %(held)s::numeric, balance, held, %(message)s::bigint,
           %(count)s::integer, %(memo)s::varchar, %(user)s::bigint, %(now)s::timestamptz
    FROM moved
    RETURNING id, balance_after, held_after
"""


def _move_in_one_statement(entry: LedgerEntry) -> LedgerEntry | None:
    """PostgreSQL: the conditional UPDATE and the entry's INSERT are one statement. The
    UPDATE takes the row lock and re-reads the row once it has it, so the condition and the
    entry's totals are the row's latest, whoever moved it meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute(_MOVE_SQL, {
            "account": entry.account_id, "balance": entry.balance_delta, "held": entry.held_delta,
            "kind": entry.kind, "message": entry.message_id, "count": entry.message_count, "memo": entry.memo,
            "user": entry.created_by_id, "now": entry.created,
        })
        row = cursor.fetchone()
    if row is None:
        return None
    entry.id, entry.balance_after, entry.held_after = row
    entry._state.adding, entry._state.db = False, connection.alias
    return entry


def _move_with_orm(entry: LedgerEntry) -> LedgerEntry | None:
    """SQLite: read, decide, write. Its one writer at a time makes the read current: a second
    writer that read before this one wrote cannot write (SQLITE_BUSY), it cannot go stale."""
    account = _lock_account(id=entry.account_id)
    balance, held = account.balance + entry.balance_delta, account.held + entry.held_delta
    if balance < held or held < 0:
        return None
    # Round in SQL: SQLite does NUMERIC arithmetic in floating point, and 34.30 − 25.90
    # stored as 8.399999999999999 would fail the CHECK on the next release of 8.40.
    CreditAccount.objects.filter(pk=account.pk).update(
        balance=Round(F("balance") + entry.balance_delta, 2), held=Round(F("held") + entry.held_delta, 2),
        updated=entry.created)
    entry.balance_after, entry.held_after = balance, held
    entry.save()
    return entry


@dataclass(frozen=True)
class _MovedHold:
    account_id: int
    message_id: int
    amount: Decimal
    captured_amount: Decimal


@dataclass(frozen=True)
class _Transition:
    """How capture, release and refund move a hold, and what that moves on the account."""

    kind: str
    # The holds it applies to, as SQL on alias `h` and as an ORM filter.
    sql_from: str
    orm_from: dict
    # PostgreSQL: the new values (`u.amount` is the amount asked for, NULL when none was).
    sql_set: str

    def orm_changes(self, hold: dict, amounts: Mapping[int, Decimal], now: datetime) -> dict:
        if self.kind == EntryKind.CAPTURE:
            return {"status": HoldStatus.CAPTURED,
                    "captured_amount": min(amounts.get(hold["message_id"], hold["amount"]), hold["amount"])}
        if self.kind == EntryKind.RELEASE:
            return {"status": HoldStatus.RELEASED}
        return {"refunded": True, "refunded_at": now}

    def deltas(self, holds: Sequence[_MovedHold]) -> tuple[Decimal, Decimal]:
        """(balance, held) the account moves for these holds."""
        amount = sum((h.amount for h in holds), ZERO)
        captured = sum((h.captured_amount for h in holds), ZERO)
        if self.kind == EntryKind.CAPTURE:
            return -captured, -amount  # what was not charged is released in the same entry
        if self.kind == EntryKind.RELEASE:
            return ZERO, -amount
        return captured, ZERO


_CAPTURE = _Transition(
    EntryKind.CAPTURE, "h.status = 'held'", {"status": HoldStatus.HELD},
    "status = 'captured', captured_amount = LEAST(COALESCE(u.amount, h.amount), h.amount)")
_RELEASE = _Transition(EntryKind.RELEASE, "h.status = 'held'", {"status": HoldStatus.HELD}, "status = 'released'")
_REFUND = _Transition(
    EntryKind.REFUND, "h.status = 'captured' AND NOT h.refunded", {"status": HoldStatus.CAPTURED, "refunded": False},
    "refunded = true, refunded_at = %(now)s")


def _close_holds(transition: _Transition, message_ids: Iterable[int], *,
                 amounts: Mapping[int, Decimal] | None = None, memo: str = "") -> int:
    """Move the holds still in the transition's starting state, then each account they
    belong to by their sum: one ledger entry per account. Holds already moved are left out
    by the statement that moves the others, which is what makes every caller idempotent."""
    message_ids = sorted(set(message_ids))
    if not message_ids:
        return 0
    amounts = amounts or {}
    with transaction.atomic():
        move = _move_holds_in_one_statement if on_postgresql() else _move_holds_with_orm
        moved = move(transition, message_ids, amounts, clock.now())
        by_account: dict[int, list[_MovedHold]] = defaultdict(list)
        for hold in moved:
            by_account[hold.account_id].append(hold)
        # Accounts in id order, after every hold: a fixed lock order cannot deadlock.
        for account_id in sorted(by_account):
            holds = by_account[account_id]
            balance, held = transition.deltas(holds)
            if not (balance or held):
                continue  # a refund of messages that were charged nothing moves nothing
            if _move(account_id, transition.kind, balance=balance, held=held,
                     message_ids=[h.message_id for h in holds], memo=memo or _memo(transition, balance, held)) is None:
                raise RuntimeError(f"account {account_id} would break its constraints: {transition.kind} "
                                   f"{balance}/{held}")
    return len(moved)


def _memo(transition: _Transition, balance: Decimal, held: Decimal) -> str:
    if transition.kind == EntryKind.CAPTURE and balance != held:
        return f"captured {-balance}, released {balance - held} (billed less than held)"
    return ""


def _move_holds_in_one_statement(transition: _Transition, message_ids: list[int],
                                 amounts: Mapping[int, Decimal], now: datetime) -> list[_MovedHold]:
    """PostgreSQL: one UPDATE for all the holds. The sub-select locks them in message-id
    order first; a hold another execution moved meanwhile fails `sql_from` once its lock is
    free (PostgreSQL re-checks the WHERE on the newest row) and is left out of RETURNING."""
    table = Hold._meta.db_table
    sql = f"""
        UPDATE {table} AS h SET {transition.sql_set}, closed = COALESCE(h.closed, %(now)s)
        FROM unnest(%(ids)s::bigint[], %(amounts)s::numeric[]) AS u(message_id, amount)
        WHERE h.message_id = u.message_id AND {transition.sql_from}
          AND h.id IN (SELECT h.id FROM {table} AS h WHERE h.message_id = ANY(%(ids)s::bigint[])
                       AND {transition.sql_from} ORDER BY h.message_id FOR UPDATE)
        RETURNING h.account_id, h.message_id, h.amount, h.captured_amount
    """
    with connection.cursor() as cursor:
        asked = [None if amounts.get(i) is None else Decimal(amounts[i]) for i in message_ids]
        cursor.execute(sql, {"ids": message_ids, "amounts": asked, "now": now})
        return [_MovedHold(*row) for row in cursor.fetchall()]


def _move_holds_with_orm(transition: _Transition, message_ids: list[int],
                         amounts: Mapping[int, Decimal], now: datetime) -> list[_MovedHold]:
    """SQLite: read the holds in the starting state, then one UPDATE per distinct new value
    (a chunk's captures at one price are one statement, not a thousand)."""
    holds = list(Hold.objects.select_for_update().filter(message_id__in=message_ids, **transition.orm_from)
                 .values("id", "account_id", "message_id", "amount", "captured_amount"))
    same_changes: dict[tuple, list[int]] = defaultdict(list)
    moved = []
    for hold in holds:
        changes = transition.orm_changes(hold, amounts, now)
        same_changes[tuple(sorted(changes.items()))].append(hold["id"])
        moved.append(_MovedHold(hold["account_id"], hold["message_id"], hold["amount"],
                                changes.get("captured_amount", hold["captured_amount"])))
    for changes, hold_ids in same_changes.items():
        Hold.objects.filter(id__in=hold_ids).update(**dict(changes), closed=Coalesce("closed", now))
    return moved
