"""Prepaid credit: one account per academy, an append-only ledger, and holds.

Money moves in two columns. `balance` is what the academy owns; `held` is the part
of it reserved for messages in flight, so available = balance − held. Every change
writes one LedgerEntry carrying both deltas, so the ledger alone rebuilds both
columns (billing_audit checks this).

A movement of many messages (a chunk's holds, its captures) is one LedgerEntry for all of
them; what each message was held, charged and refunded is on its Hold, the per-message row
that makes every movement idempotent (docs/exactly-once.md, "Credit: the write path").
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

    message_type = models.CharField("메시지 유형", max_length=8, choices=MessageType.choices, unique=True)
    amount = models.DecimalField("단가", **MONEY)

    class Meta:
        verbose_name = "기본 단가"
        verbose_name_plural = "기본 단가"
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="price_not_negative")]

    def __str__(self) -> str:
        return f"{self.message_type} {self.amount}"


class TenantPrice(models.Model):
    """A negotiated price for one academy, overriding Price."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="prices", verbose_name="학원")
    message_type = models.CharField("메시지 유형", max_length=8, choices=MessageType.choices)
    amount = models.DecimalField("단가", **MONEY)

    class Meta:
        verbose_name = "학원별 단가"
        verbose_name_plural = "학원별 단가"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "message_type"], name="one_override_per_type"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="tenant_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.message_type} {self.amount}"


class CreditAccount(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="credit_account", verbose_name="학원")
    balance = models.DecimalField("잔액", default=ZERO, **MONEY)
    held = models.DecimalField("예약 금액", default=ZERO, **MONEY)
    updated = ClockDateTimeField("변경 시각", auto_now=True)

    class Meta:
        verbose_name = "충전금 계정"
        verbose_name_plural = "충전금 계정"
        # Admin actions check these when they run (billing/admin.py).
        permissions = [("top_up_credit", "Can top up an academy's credit (충전)")]
        constraints = [
            # The database refuses what the services must never do.
            models.CheckConstraint(condition=Q(balance__gte=0), name="balance_never_negative"),
            models.CheckConstraint(condition=Q(held__gte=0), name="held_never_negative"),
            models.CheckConstraint(condition=Q(held__lte=F("balance")), name="held_within_balance"),
        ]

    def __str__(self) -> str:
        # The academy only: the balance changes, and a ledger row printing the account would
        # show today's balance next to its own balance_after.
        return f"{self.tenant} 충전금 계정"

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

    account = models.ForeignKey(
        CreditAccount, on_delete=models.PROTECT, related_name="entries", verbose_name="충전금 계정"
    )
    kind = models.CharField("종류", max_length=16, choices=EntryKind.choices)
    balance_delta = models.DecimalField("잔액 증감", default=ZERO, **MONEY)
    held_delta = models.DecimalField("예약 증감", default=ZERO, **MONEY)
    balance_after = models.DecimalField("이 항목 후 잔액", **MONEY)
    held_after = models.DecimalField("이 항목 후 예약 금액", **MONEY)
    # The message a hold, capture, release or refund belongs to, when it moved one message
    # only; a chunk's movement names none (its messages' Holds say what each one moved).
    # A plain id, not a foreign key: billing sits below messaging and knows nothing of its models.
    message_id = models.BigIntegerField("메시지 ID", null=True, blank=True, db_index=True)
    # How many messages' holds this entry moved (0 for a top-up or an adjustment).
    message_count = models.PositiveIntegerField("메시지 수", default=0)
    memo = models.CharField("메모", max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+", verbose_name="작성자"
    )
    created = ClockDateTimeField("기록 시각", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "충전금 원장 항목"
        verbose_name_plural = "충전금 원장"
        ordering = ["-id"]

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

    # A send writes up to 10,000 holds in its request (issue 17), and PostgreSQL would check this
    # key for each of them at commit. No constraint: holds are written only by
    # ledger.hold_credit, in the transaction whose one UPDATE of this account (its row locked to
    # the commit) writes the movement's ledger entry, whose key is checked; a hold whose movement
    # did not happen is rolled back or deleted, and accounts are never deleted (their entries
    # PROTECT them, their admin is read-only). No index of its own: (account, status) serves
    # every lookup by account.
    account = models.ForeignKey(
        CreditAccount, on_delete=models.PROTECT, related_name="holds", verbose_name="충전금 계정",
        db_constraint=False, db_index=False,
    )
    message_id = models.BigIntegerField("메시지 ID", unique=True)
    amount = models.DecimalField("예약 금액", **MONEY)
    status = models.CharField("상태", max_length=16, choices=HoldStatus.choices, default=HoldStatus.HELD)
    captured_amount = models.DecimalField("차감 금액", default=ZERO, **MONEY)
    # A captured message that failed after acceptance is refunded once.
    refunded = models.BooleanField("환불됨", default=False)
    created = ClockDateTimeField("예약 시각", auto_now_add=True)
    closed = models.DateTimeField("종료 시각", null=True, blank=True)
    refunded_at = models.DateTimeField("환불 시각", null=True, blank=True)

    class Meta:
        verbose_name = "충전금 예약"
        verbose_name_plural = "충전금 예약"
        indexes = [models.Index(fields=["account", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="hold_not_negative"),
            models.CheckConstraint(
                condition=Q(captured_amount__lte=F("amount")), name="capture_within_hold"
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.amount} for message {self.message_id} ({self.status})"
