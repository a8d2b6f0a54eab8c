"""Changes to an academy's state that other apps trigger."""

from datetime import datetime

from project import clock
from tenants.models import MarketingConsent, SenderStatus, Student, Tenant


def sender_reject(*, tenant_id: int, reason: str) -> bool:
    """Solapi says the 발신번호 is not registered: refuse further sends until staff fix it.
    Returns whether the status changed."""
    changed = Tenant.objects.filter(id=tenant_id).exclude(messaging_sender_status=SenderStatus.REJECTED).update(
        messaging_sender_status=SenderStatus.REJECTED,
        messaging_sender_status_reason=reason[:200],
        messaging_sender_status_changed=clock.now(),
    )
    return bool(changed)


def sender_register(*, tenant: Tenant, number: str) -> Tenant:
    """Staff registered (or re-registered) the number with Solapi; sends may resume."""
    tenant.messaging_sender = number
    tenant.messaging_sender_status = SenderStatus.VERIFIED
    tenant.messaging_sender_status_reason = ""
    tenant.messaging_sender_status_changed = clock.now()
    tenant.full_clean()
    tenant.save()
    return tenant


def consent_record(*, student: Student, recipient: str, marketing: bool, night: bool,
                   now: datetime | None = None) -> MarketingConsent:
    """Record a recipient's answer to the advertising consent (a renewal re-dates it, which
    is what re-confirmation every two years means). Night consent needs marketing consent."""
    now = now or clock.now()
    consent, _ = MarketingConsent.objects.get_or_create(student=student, recipient=recipient)
    if marketing:
        consent.marketing_consented_at, consent.withdrawn_at = now, None
        consent.night_consented_at = now if night else None
    else:
        consent.withdrawn_at, consent.night_consented_at = now, None
    consent.save()
    return consent
