"""The per-academy suppression list: numbers the next send skips, and why."""

from collections.abc import Iterable

from messaging.failures import FailureClass
from messaging.models import Message, MessageStatus, SuppressedRecipient, SuppressionReason
from project.sql import in_values

_REASONS = {
    FailureClass.RECIPIENT_OPTED_OUT: SuppressionReason.OPTED_OUT,
    FailureClass.RECIPIENT_INVALID: SuppressionReason.INVALID,
    FailureClass.RECIPIENT_BLOCKED: SuppressionReason.BLOCKED,
}


def learn_from(messages: Iterable[Message]) -> int:
    """Remember the numbers whose failure says something about the number itself."""
    rows = [
        SuppressedRecipient(tenant_id=m.tenant_id, phone=m.phone, reason=_REASONS[m.failure_class],
                            source=m.solapi_status_code or m.failure_class)
        for m in messages
        if m.status == MessageStatus.FAILED and m.failure_class in _REASONS and m.phone
    ]
    return len(SuppressedRecipient.objects.bulk_create(rows, ignore_conflicts=True))


def suppress(*, tenant_id: int, phone: str, reason: str, source: str = "staff") -> SuppressedRecipient:
    """A number staff were asked to stop messaging (e.g. a parent's 080 opt-out by phone)."""
    entry, _ = SuppressedRecipient.objects.get_or_create(
        tenant_id=tenant_id, phone=phone, defaults={"reason": reason, "source": source}
    )
    return entry


def suppressed(tenant_id: int, phones: Iterable[str]) -> dict[str, str]:
    """phone → reason, for the numbers of this academy that must be skipped."""
    rows = SuppressedRecipient.objects.filter(tenant_id=tenant_id, phone__in=in_values(set(phones), "text"))
    return dict(rows.values_list("phone", "reason"))
