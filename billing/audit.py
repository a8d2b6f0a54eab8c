"""The ledger invariants, checked against what is stored."""

from django.db.models import Count, Q, Sum

from billing.models import ZERO, CreditAccount, HoldStatus


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
        if account.ledger_balance != account.balance:
            problems.append(f"{name}: balance {account.balance} but the ledger sums to {account.ledger_balance}")
        if account.ledger_held != account.held:
            problems.append(f"{name}: held {account.held} but the ledger sums to {account.ledger_held}")
        if open_holds[account.id] != account.held:
            problems.append(f"{name}: held {account.held} but open holds sum to {open_holds[account.id]}")
        if account.balance < 0:
            problems.append(f"{name}: negative balance {account.balance}")
        if account.held > account.balance:
            problems.append(f"{name}: held {account.held} exceeds balance {account.balance}")
        if over_captured[account.id]:
            problems.append(f"{name}: {over_captured[account.id]} refunded holds were never captured")
    return problems
