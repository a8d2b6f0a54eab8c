"""Prepaid credit: one account per academy, an append-only ledger, and holds.

Money moves in two columns. `balance` is what the academy owns; `held` is the part
of it reserved for messages in flight, so available = balance − held. Every change
writes one LedgerEntry carrying both deltas, so the ledger alone rebuilds both
columns (billing_audit checks this).
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from project.clock import ClockDateTimeField
from tenants.models import Tenant

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


class MessageType(models.TextChoices):
    """What Solapi bills for: the type follows from EUC-KR bytes (billing/pricing.py)."""

    SMS = "SMS", "SMS (≤ 90 bytes)"
    LMS = "LMS", "LMS (≤ 2,000 bytes)"
    MMS = "MMS", "MMS"
    ATA = "ATA", "알림톡 (AlimTalk)"


class Price(models.Model):
    """The platform's price list. A type without a row cannot be sent: there is no free default."""

    message_type = models.CharField(max_length=8, choices=MessageType.choices, unique=True)
    amount = models.DecimalField(**MONEY)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="price_not_negative")]

    def __str__(self) -> str:
        return f"{self.message_type} {self.amount}"


class TenantPrice(models.Model):
    """A negotiated price for one academy, overriding Price."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="prices")
    message_type = models.CharField(max_length=8, choices=MessageType.choices)
    amount = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "message_type"], name="one_override_per_type"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="tenant_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.message_type} {self.amount}"


class CreditAccount(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="credit_account")
    balance = models.DecimalField(default=ZERO, **MONEY)
    held = models.DecimalField(default=ZERO, **MONEY)
    updated = ClockDateTimeField(auto_now=True)

    class Meta:
        # Admin actions check these when they run (billing/admin.py).
        permissions = [("top_up_credit", "Can top up an academy's credit (충전)")]
        constraints = [
            # The database refuses what the services must never do.
            models.CheckConstraint(condition=Q(balance__gte=0), name="balance_never_negative"),
            models.CheckConstraint(condition=Q(held__gte=0), name="held_never_negative"),
            models.CheckConstraint(condition=Q(held__lte=F("balance")), name="held_within_balance"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.balance} ({self.held} held)"

    @property
    def available(self) -> Decimal:
        return self.balance - self.held


class EntryKind(models.TextChoices):
    TOP_UP = "top_up", "충전 (top-up)"
    HOLD = "hold", "예약 (hold)"
    CAPTURE = "capture", "차감 (capture)"
    RELEASE = "release", "예약 해제 (release)"
    REFUND = "refund", "환불 (refund)"
    ADJUSTMENT = "adjustment", "조정 (adjustment)"


class LedgerEntry(models.Model):
    """One movement of credit. Rows are only ever inserted."""

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    balance_delta = models.DecimalField(default=ZERO, **MONEY)
    held_delta = models.DecimalField(default=ZERO, **MONEY)
    balance_after = models.DecimalField(**MONEY)
    held_after = models.DecimalField(**MONEY)
    # The message a hold, capture, release or refund belongs to. A plain id, not a
    # foreign key: billing sits below messaging and knows nothing of its models.
    message_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    memo = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = ClockDateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.balance_delta:+} / held {self.held_delta:+}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Ledger entries are append-only; write a new entry instead.")
        super().save(*args, **kwargs)


class HoldStatus(models.TextChoices):
    HELD = "held", "예약됨 (held)"
    CAPTURED = "captured", "차감됨 (captured)"
    RELEASED = "released", "해제됨 (released)"


class Hold(models.Model):
    """Credit reserved for one message. Unique per message, so a redelivered task
    that holds again gets this row back instead of a second reservation."""

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="holds")
    message_id = models.BigIntegerField(unique=True)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.HELD)
    captured_amount = models.DecimalField(default=ZERO, **MONEY)
    # A captured message that failed after acceptance is refunded once.
    refunded = models.BooleanField(default=False)
    created = ClockDateTimeField(auto_now_add=True)
    closed = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="hold_not_negative"),
            models.CheckConstraint(
                condition=Q(captured_amount__lte=F("amount")), name="capture_within_hold"
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.amount} for message {self.message_id} ({self.status})"
