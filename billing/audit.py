"""The ledger invariants, checked against what is stored, and the checks other apps add.

Billing sits below messaging and imports nothing from it. Checks that need messaging's
tables (our books against Solapi's bill, group by group) are registered by messaging when
it loads (messaging/apps.py) and run by `billing_audit` with the ledger's own.
"""

from collections.abc import Callable
from decimal import Decimal

from django.db.models import Count, Q, Sum

from billing.models import ZERO, CreditAccount, EntryKind, HoldStatus

Check = Callable[[], list[str]]
_checks: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add a check to billing_audit: it returns one line per problem, none when all is well."""
    _checks[name] = check


def audit() -> list[str]:
    """Every problem billing_audit knows of: the ledger's, then each registered check's."""
    problems = audit_accounts()
    for name, check in _checks.items():
        problems.extend(f"{name}: {problem}" for problem in check())
    return problems


def audit_accounts() -> list[str]:
    """Every way the stored balances disagree with the ledger; empty when all is well."""
    problems = []
    accounts = CreditAccount.objects.select_related("tenant").annotate(
        ledger_balance=Sum("entries__balance_delta", default=ZERO),
        ledger_held=Sum("entries__held_delta", default=ZERO),
    )
    open_holds = dict(
        CreditAccount.objects.annotate(
            open_holds=Sum("holds__amount", filter=Q(holds__status=HoldStatus.HELD), default=ZERO)
        ).values_list("id", "open_holds")
    )
    by_kind = _entries_against_holds()
    over_captured = dict(
        CreditAccount.objects.annotate(
            n=Count("holds", filter=Q(holds__refunded=True) & ~Q(holds__status=HoldStatus.CAPTURED))
        ).values_list("id", "n")
    )
    for account in accounts:
        name = f"{account.tenant.slug} (account {account.id})"
        # Money has two decimal places. SQLite sums in floating point (8.4 − 8.4 + … can
        # come to −1.8E-15), so sums are compared in whole cents, not to the last bit.
        ledger_balance, ledger_held = _cents(account.ledger_balance), _cents(account.ledger_held)
        held_open = _cents(open_holds[account.id])
        if ledger_balance != account.balance:
            problems.append(f"{name}: balance {account.balance} but the ledger sums to {ledger_balance}")
        if ledger_held != account.held:
            problems.append(f"{name}: held {account.held} but the ledger sums to {ledger_held}")
        if held_open != account.held:
            problems.append(f"{name}: held {account.held} but open holds sum to {held_open}")
        if account.balance < 0:
            problems.append(f"{name}: negative balance {account.balance}")
        if account.held > account.balance:
            problems.append(f"{name}: held {account.held} exceeds balance {account.balance}")
        if over_captured[account.id]:
            problems.append(f"{name}: {over_captured[account.id]} refunded holds were never captured")
        problems.extend(f"{name}: {problem}" for problem in by_kind.get(account.id, []))
    return problems


# A chunk's movement is one entry for all its messages (billing/ledger.py); each message's
# share is on its Hold. Per kind, the entries must add up to the holds they moved.
# (ledger sum of this kind, per account; holds' sum, per account; what it is)
_KIND_CHECKS = (
    (Sum("entries__held_delta", filter=Q(entries__kind=EntryKind.HOLD), default=ZERO),
     Sum("holds__amount", default=ZERO), "hold entries reserve {} but the holds sum to {}"),
    (Sum("entries__balance_delta", filter=Q(entries__kind=EntryKind.CAPTURE), default=ZERO),
     -Sum("holds__captured_amount", filter=Q(holds__status=HoldStatus.CAPTURED), default=ZERO),
     "capture entries charge {} but the captured holds {}"),
    (Sum("entries__balance_delta", filter=Q(entries__kind=EntryKind.REFUND), default=ZERO),
     Sum("holds__captured_amount", filter=Q(holds__refunded=True), default=ZERO),
     "refund entries return {} but the refunded holds {}"),
)


def _entries_against_holds() -> dict[int, list[str]]:
    """Account id → each kind whose entries disagree with the holds. Each side is summed in a
    query of its own: joining entries and holds in one would multiply the rows."""
    problems: dict[int, list[str]] = {}
    for entries_sum, holds_sum, text in _KIND_CHECKS:
        ledger_side = dict(CreditAccount.objects.annotate(total=entries_sum).values_list("id", "total"))
        holds_side = dict(CreditAccount.objects.annotate(total=holds_sum).values_list("id", "total"))
        for account_id, total in ledger_side.items():
            if _cents(total) != _cents(holds_side[account_id]):
                problems.setdefault(account_id, []).append(text.format(_cents(total), _cents(holds_side[account_id])))
    return problems


def _cents(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(Decimal("0.01"))
