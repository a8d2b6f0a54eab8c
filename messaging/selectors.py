"""Reads: send requests (listed, filtered, their progress and messages), an academy's credit,
recipients' marketing consent."""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet

from billing.ledger import account_for, recent_entries
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.compose.rules import Consent
from messaging.failures import FailureClass
from messaging.models import Message, MessageStatus, SendRequest, SendRequestStatus, SkipReason, shown_message_status
from messaging.operations import pauses
from messaging.operations.counts import count_messages, counts_of_statuses
from messaging.operations.progress import progress
from project import clock
from project.clock import KST
from tenants.models import CONSENT_VALID_FOR, MarketingConsent, Tenant
from tenants.phones import mask_phone

MAX_PAGE_SIZE = 1000


def send_request_of(tenant: Tenant, send_request_id: int) -> SendRequest:
    """The tenant's own request, or NOT_FOUND (also for another academy's id)."""
    send_request = SendRequest.objects.filter(tenant=tenant, id=send_request_id).first()
    if send_request is None:
        raise Refusal(RefusalCode.NOT_FOUND)
    return send_request


def send_request_status(send_request: SendRequest, *, now: datetime | None = None) -> str:
    """Where the request stands for staff (SendRequestStatus); the same rules as
    send_requests_for's `status` filter."""
    if send_request.cancelled:
        return SendRequestStatus.CANCELLED
    if send_request.completed:
        return SendRequestStatus.COMPLETED
    if send_request.send_at and send_request.send_at > (now or clock.now()):
        return SendRequestStatus.SCHEDULED
    return SendRequestStatus.SENDING


def _status_filter(status: str, now: datetime) -> Q:
    open_ = Q(cancelled__isnull=True, completed__isnull=True)
    return {
        SendRequestStatus.CANCELLED: Q(cancelled__isnull=False),
        SendRequestStatus.COMPLETED: Q(cancelled__isnull=True, completed__isnull=False),
        SendRequestStatus.SCHEDULED: open_ & Q(send_at__gt=now),
        SendRequestStatus.SENDING: open_ & (Q(send_at__isnull=True) | Q(send_at__lte=now)),
    }[status]


def send_requests_for(tenant: Tenant, *, status: str | None = None, purpose: str | None = None,
                      created_from: date | None = None, created_to: date | None = None) -> QuerySet[SendRequest]:
    """The academy's send requests, newest first. `created_from`/`created_to` are days in
    Korea, both included."""
    requests = SendRequest.objects.filter(tenant=tenant)
    if status:
        requests = requests.filter(_status_filter(status, clock.now()))
    if purpose:
        requests = requests.filter(purpose=purpose)
    if created_from:
        requests = requests.filter(created__gte=datetime.combine(created_from, time.min, tzinfo=KST))
    if created_to:
        requests = requests.filter(created__lt=datetime.combine(created_to + timedelta(days=1), time.min, tzinfo=KST))
    return requests.order_by("-created", "-id")


def send_request_summary(send_request: SendRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """One line of the history: what was sent, when, and how it stands."""
    return {
        "id": send_request.id,
        "created": send_request.created,
        "status": send_request_status(send_request, now=now),
        "purpose": send_request.purpose,
        "mode": send_request.mode,
        "send_to": send_request.send_to,
        "body": send_request.body,
        "subject": send_request.subject,
        "counts": send_request.counts or count_messages(send_request.id),
        "estimated_cost": send_request.estimated_cost,
        "send_at": send_request.send_at,
        "cancelled": send_request.cancelled,
        "completed": send_request.completed,
    }


def korean(label: str) -> str:
    """The Korean half of a "한국어 (English)" choice label."""
    return str(label).split(" (")[0]


def reason_in_korean(status: str, failure_class: str, skip_reason: str) -> str:
    """Why a message did not go, or failed, in Korean for staff; "" when it did not fail."""
    if status == MessageStatus.FAILED and failure_class:
        return korean(FailureClass(failure_class).label)
    if status == MessageStatus.SKIPPED and skip_reason:
        return korean(SkipReason(skip_reason).label)
    return ""


_MESSAGE_FIELDS = ("id", "student_id", "recipient_kind", "phone", "message_type", "text", "price", "status",
                   "skip_reason", "failure_class", "failure_reason", "accepted_at", "completed_at", "chunk_id")


def messages_for(send_request: SendRequest, *, status: str | None = None,
                 failure_class: str | None = None) -> QuerySet:
    """The request's messages as plain rows (with the student's name), in id order."""
    # `status` is the status shown (a pending message in a chunk being sent is sending), the
    # rows' `shown_status` too.
    messages = Message.objects.filter(send_request=send_request).annotate(shown_status=shown_message_status())
    if status:
        messages = messages.filter(shown_status=status)
    if failure_class:
        messages = messages.filter(failure_class=failure_class)
    return messages.order_by("id").values(*_MESSAGE_FIELDS, "shown_status", student_name=F("student__name"))


def message_rows(send_request: SendRequest, rows: list[dict]) -> list[dict[str, Any]]:
    """Rows of messages_for as staff see them: the number masked, the reason in Korean, a
    message held back by a platform pause shown as paused."""
    paused_by_chunk = pauses.paused_chunks(send_request.id)
    return [_message_row(row, paused_by_chunk.get(row["chunk_id"])) for row in rows]


def iter_message_rows(send_request: SendRequest, *, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """Every message of the request as message_rows shows it, read in batches (an export)."""
    paused_by_chunk = pauses.paused_chunks(send_request.id)
    for row in messages_for(send_request).iterator(chunk_size=batch):
        yield _message_row(row, paused_by_chunk.get(row["chunk_id"]))


def _message_row(row: dict, pause: dict | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "student_id": row["student_id"],
        "student_name": row["student_name"] or "",
        "recipient": row["recipient_kind"],
        "phone": mask_phone(row["phone"]),
        "type": row["message_type"],
        "text": row["text"],
        "price": row["price"],
        "status": pauses.shown_status(row["shown_status"], pause),
        "failure_class": row["failure_class"],
        "skip_reason": row["skip_reason"],
        "reason": reason_in_korean(row["status"], row["failure_class"], row["skip_reason"]) or (
            korean(pause["reason"]) if pause and row["shown_status"] in pauses.PAUSABLE else ""),
        "failure_detail": row["failure_reason"],
        "accepted_at": row["accepted_at"],
        "completed_at": row["completed_at"],
    }


def send_request_detail(send_request: SendRequest, *, page: int = 1, page_size: int = 100) -> dict[str, Any]:
    page, page_size = max(page, 1), min(max(page_size, 1), MAX_PAGE_SIZE)
    messages = send_request.messages.order_by("id").values(
        "id", "student_id", "recipient_kind", "phone", "message_type", "price", "skip_reason",
        "failure_class", "failure_reason", "solapi_status_code", "accepted_at", "completed_at", "chunk_id",
        shown_status=shown_message_status(), chunk_paused_since=F("chunk__paused_since"),
    )
    first_page = list(messages[:page_size]) if page == 1 else None
    if first_page is not None and len(first_page) < page_size:
        # The whole request is on this page (nearly every small send): its counts, and whether
        # anything is paused, come from the rows just read, two statements fewer per status read.
        rows = first_page
        counts = counts_of_statuses(row["shown_status"] for row in rows)
        anything_paused = any(row["chunk_paused_since"] for row in rows)
    else:
        counts = count_messages(send_request.id)
        offset = (page - 1) * page_size
        # Past the last page there is nothing to read; an offset beyond a bigint would crash the query.
        rows = first_page if first_page is not None else (
            list(messages[offset : offset + page_size]) if offset < counts["total"] else [])
        anything_paused = True  # not known from one page: the chunks say
    total = counts["total"]
    # Messages a platform pause holds back show as paused, with the reason, not as sending.
    paused_by_chunk = pauses.paused_chunks(send_request.id) if anything_paused else {}
    counts[pauses.PAUSED] = 0
    for status, n in pauses.count_paused(send_request.id, list(paused_by_chunk)).items():
        counts[status] -= n
        counts[pauses.PAUSED] += n
    for row in rows:
        del row["chunk_paused_since"]
        pause = paused_by_chunk.get(row.pop("chunk_id"))
        row["status"] = pauses.shown_status(row.pop("shown_status"), pause)
        row["paused"] = pause if row["status"] == pauses.PAUSED else None
    return {
        "id": send_request.id,
        "created": send_request.created,
        "status": send_request_status(send_request),
        "mode": send_request.mode,
        "purpose": send_request.purpose,
        "send_at": send_request.send_at,
        "cancelled": send_request.cancelled,
        "dispatched": send_request.dispatched is not None,
        "completed": send_request.completed,
        "estimated_cost": str(send_request.estimated_cost),
        "counts": counts,
        "progress": progress(send_request, counts).as_data(),
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
