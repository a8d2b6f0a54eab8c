"""The ledger invariants, checked against what is stored, and the checks other apps add.

Billing sits below messaging and imports nothing from it. Checks that need messaging's
tables (our books against Solapi's bill, group by group) are registered by messaging when
it loads (messaging/apps.py) and run by `billing_audit` with the ledger's own.
"""

from collections.abc import Callable
from decimal import Decimal

from django.db.models import Count, Q, Sum

from billing.models import ZERO, CreditAccount, HoldStatus

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
    return problems


def _cents(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(Decimal("0.01"))
