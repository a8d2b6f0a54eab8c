"""Billing tests' platform price list, academies (harness/academies.py), one message's
hold, and a snapshot of everything a credit movement can touch."""

from dataclasses import dataclass
from decimal import Decimal

import pytest

from billing import ledger
from billing.ledger import HoldRequest
from billing.models import ZERO, CreditAccount, Hold, LedgerEntry, MessageType
from harness.academies import make_tenant, set_platform_prices
from tenants.models import Tenant

# Realistic Solapi-like prices; ATA is cheaper than SMS, so an AlimTalk with SMS
# fallback must hold the SMS price.
PLATFORM_PRICES = {
    MessageType.SMS: Decimal("8.40"),
    MessageType.LMS: Decimal("25.90"),
    MessageType.MMS: Decimal("60.00"),
    MessageType.ATA: Decimal("6.50"),
}


def hold(tenant: Tenant, message_id: int, amount: Decimal) -> bool:
    """Hold credit for one message through hold_credit: True if held, False if refused."""
    outcome = ledger.hold_credit(tenant=tenant, requests=[HoldRequest(message_id, amount)])
    return message_id in outcome.held


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused or repeated movement must leave untouched."""

    balance: Decimal
    held: Decimal
    entries: int
    holds: tuple


def snapshot(tenant: Tenant) -> Snapshot:
    account = CreditAccount.objects.get(tenant=tenant)
    return Snapshot(
        balance=account.balance,
        held=account.held,
        entries=LedgerEntry.objects.filter(account=account).count(),
        holds=tuple(
            Hold.objects.filter(account=account)
            .order_by("message_id")
            .values_list("message_id", "amount", "status", "captured_amount", "refunded")
        ),
    )


def ledger_chain_breaks(account: CreditAccount) -> list[str]:
    """Entries whose balance_after/held_after do not follow from the entry before.

    Each movement reads the account, then writes entries carrying the totals it
    computed. If two movements read the same state (no lock), the second one's totals
    ignore the first: the chain breaks even when the stored columns add up."""
    breaks = []
    balance = held = ZERO
    for entry in LedgerEntry.objects.filter(account=account).order_by("id"):
        balance += entry.balance_delta
        held += entry.held_delta
        if (entry.balance_after, entry.held_after) != (balance, held):
            breaks.append(f"entry {entry.id} ({entry.kind}): after {entry.balance_after}/{entry.held_after}, "
                          f"expected {balance}/{held}")
        if not ZERO <= held <= balance:
            breaks.append(f"entry {entry.id} ({entry.kind}): held {held} outside 0..{balance}")
    return breaks


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant()


@pytest.fixture
def prices(db) -> dict[str, Decimal]:
    return set_platform_prices(PLATFORM_PRICES)
