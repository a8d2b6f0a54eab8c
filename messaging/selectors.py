"""Reads: a send request's progress, an academy's credit, recipients' marketing consent."""

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from billing.ledger import account_for, recent_entries
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.compose.rules import Consent
from messaging.models import SendRequest
from messaging.operations import pauses
from messaging.operations.counts import count_messages
from project import clock
from tenants.models import CONSENT_VALID_FOR, MarketingConsent, Tenant

MAX_PAGE_SIZE = 1000


def send_request_of(tenant: Tenant, send_request_id: int) -> SendRequest:
    """The tenant's own request, or NOT_FOUND (also for another academy's id)."""
    send_request = SendRequest.objects.filter(tenant=tenant, id=send_request_id).first()
    if send_request is None:
        raise Refusal(RefusalCode.NOT_FOUND)
    return send_request


def send_request_detail(send_request: SendRequest, *, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    page, page_size = max(page, 1), min(max(page_size, 1), MAX_PAGE_SIZE)
    messages = send_request.messages.order_by("id").values(
        "id", "student_id", "recipient_kind", "phone", "message_type", "price", "status", "skip_reason",
        "failure_class", "failure_reason", "solapi_status_code", "accepted_at", "completed_at", "chunk_id",
    )
    counts = count_messages(send_request.id)
    total = counts["total"]
    offset = (page - 1) * page_size
    # Past the last page there is nothing to read; an offset beyond a bigint would crash the query.
    rows = list(messages[offset : offset + page_size]) if offset < total else []
    # Messages a platform pause holds back show as paused, with the reason, not as sending.
    paused_by_chunk = pauses.paused_chunks(send_request.id)
    counts[pauses.PAUSED] = 0
    for status, n in pauses.count_paused(send_request.id, list(paused_by_chunk)).items():
        counts[status] -= n
        counts[pauses.PAUSED] += n
    for row in rows:
        pause = paused_by_chunk.get(row.pop("chunk_id"))
        row["status"] = pauses.shown_status(row["status"], pause)
        row["paused"] = pause if row["status"] == pauses.PAUSED else None
    return {
        "id": send_request.id,
        "created": send_request.created,
        "mode": send_request.mode,
        "purpose": send_request.purpose,
        "dispatched": send_request.dispatched is not None,
        "completed": send_request.completed,
        "estimated_cost": str(send_request.estimated_cost),
        "counts": counts,
        "paused": next(iter(paused_by_chunk.values()), None),
        "messages": [{**row, "price": str(row["price"])} for row in rows],
        "page": page,
        "page_size": page_size,
        "total_messages": total,
    }


def credit_summary(tenant: Tenant, *, recent: int = 50) -> dict[str, Any]:
    account = account_for(tenant)
    entries = recent_entries(tenant, limit=recent)
    return {
        "balance": str(account.balance),
        "held": str(account.held),
        "available": str(account.available),
        "ledger": [{**e, **{k: str(e[k]) for k in ("balance_delta", "held_delta", "balance_after", "held_after")}}
                   for e in entries],
    }


def consents_for(student_ids: list[int]) -> dict[tuple[int, str], Consent]:
    """(student id, recipient kind) → what that recipient agreed to."""
    rows = MarketingConsent.objects.filter(student_id__in=student_ids)
    return {(c.student_id, c.recipient): Consent(c.allows_ads, c.allows_night_ads) for c in rows}


def consents_due_for_reconfirmation(tenant: Tenant, *, now: datetime | None = None) -> QuerySet[MarketingConsent]:
    """Consents two years old or older (§50⑧): the academy must remind these recipients."""
    cutoff = (now or clock.now()) - CONSENT_VALID_FOR
    return MarketingConsent.objects.filter(
        student__tenant=tenant, withdrawn_at__isnull=True, marketing_consented_at__lte=cutoff
    ).select_related("student").order_by("marketing_consented_at")
