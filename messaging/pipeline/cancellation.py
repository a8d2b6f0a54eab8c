"""Staff stop a send that is still going: what has not gone to Solapi is cancelled and its
credit released at once; what Solapi may already have is left to finish, and said so.

Racing the send step safely rests on two facts of messaging/pipeline/delivery.py:
- the send step goes on only with a chunk that is HELD or SENDING, checked under the
  chunk's row lock (`_claim`), and every later write and every Solapi call of it is fenced
  on its lease token under the same lock (`_locked`);
- the row of a `send_group` call is written under that fence *before* the call, as
  ambiguous, so `Chunk.may_have_been_sent()` is true from the moment a send may start.

So, under the chunk's row lock, a chunk whose group may have been sent is left alone
(its messages finish and are reported as in flight), and so is a chunk whose messages may
be registered in a group other chunks share (any of them sends the whole group); any other
chunk is cancelled: its
unsent messages fail as `cancelled`, its lease is taken away (an execution still holding
it gets LeaseLost at its next fenced step, before any call), and it is finalized here, so
the guard skips it from then on. Nothing is sent after the cancel answers unless the
answer counted it in `in_flight` or `accepted`; nothing cancelled is charged.

Idempotent: a second cancel cancels whatever became cancellable since (nothing, usually)
and answers the same totals.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q

from billing import ledger
from billing.models import HoldStatus
from messaging.failures import FailureClass
from messaging.models import UNSENT_STATUSES, Chunk, ChunkStatus, Message, MessageStatus, SendRequest, SolapiOperation
from messaging.pipeline import delivery, settlement
from messaging.selectors import send_request_of
from project import clock
from tenants.models import Tenant

logger = logging.getLogger(__name__)

CANCEL_REASON = ("발송 취소: 솔라피로 보내기 전에 취소되어 충전금이 환원되었습니다 "
                 "(cancelled by staff before sending; credit released)")
# Messages that have not reached Solapi, in a chunk that can still be stopped.
_UNSENT = UNSENT_STATUSES
_CANCELLABLE_CHUNKS = [ChunkStatus.QUEUED, ChunkStatus.HELD, ChunkStatus.SENDING]


@dataclass(frozen=True)
class CancelOutcome:
    send_request_id: int
    # None when the request had finished before any cancel: there was nothing to stop.
    cancelled_at: datetime | None
    # Totals for the whole request, whichever cancel call got them there.
    cancelled: int
    released: Decimal
    # Solapi accepted these before the cancel (delivered or failed later, or still waiting).
    accepted: int
    # Their chunk's send may have reached Solapi: they finish, and are charged only if accepted.
    in_flight: int
    # Messages just cancelled by this call (0 when repeated).
    cancelled_now: int


def cancel_send_request(tenant: Tenant, send_request_id: int, *, user=None) -> CancelOutcome:
    """Cancel the tenant's send request (another academy's id is NOT_FOUND, by the caller's
    selector). Runs in one transaction under the request's row lock, which dispatch takes to
    put messages into chunks, so no chunk appears meanwhile."""
    send_request_of(tenant, send_request_id)
    with transaction.atomic():
        send_request = SendRequest.objects.select_for_update().get(id=send_request_id, tenant=tenant)
        cancelled: list[int] = []
        chunk_ids = list(send_request.chunks.filter(status__in=_CANCELLABLE_CHUNKS).values_list("id", flat=True))
        for chunk_id in chunk_ids:
            cancelled += _cancel_chunk(chunk_id)
        # Last: a chunk's reserve step may just have put night ads back outside any chunk.
        unchunked = Message.objects.filter(send_request=send_request, chunk__isnull=True, status__in=_UNSENT)
        ids = list(unchunked.values_list("id", flat=True))
        _fail_cancelled(Message.objects.filter(id__in=ids))
        settlement.settle(list(Message.objects.filter(id__in=ids).only(*settlement.SETTLED_FIELDS)))
        cancelled += ids
        # A request that had finished before the cancel keeps its status: nothing was stopped.
        if send_request.cancelled is None and (cancelled or send_request.completed is None):
            send_request.cancelled, send_request.cancelled_by = clock.now(), user if user and user.pk else None
            send_request.save(update_fields=["cancelled", "cancelled_by"])
    logger.info("send_request_cancelled send_request=%s cancelled_now=%s", send_request_id, len(cancelled))
    return _outcome(send_request, cancelled_now=len(cancelled))


def _cancel_chunk(chunk_id: int) -> list[int]:
    """Cancel one chunk's unsent messages unless its group may have been sent. The caller's
    transaction holds the request's row lock; this takes the chunk's, as the send step does."""
    chunk = Chunk.objects.select_for_update(of=("self",)).get(id=chunk_id)
    if chunk.status not in _CANCELLABLE_CHUNKS or chunk.may_have_been_sent() or _registered_in_shared_group(chunk):
        logger.info("cancel_left_to_finish chunk=%s status=%s", chunk.id, chunk.status)
        return []
    unsent = chunk.messages.filter(status__in=_UNSENT)
    ids = list(unsent.values_list("id", flat=True))
    _fail_cancelled(Message.objects.filter(id__in=ids))
    # Taking the lease away fences out an execution that holds it: its next step raises
    # LeaseLost before any call. SENT makes finalize_chunk (capture, release, outcome rows:
    # the same bookkeeping as a chunk that ran to its end) settle it now; it leaves it
    # FINALIZED, which every step's guard skips.
    Chunk.objects.filter(id=chunk.id).update(status=ChunkStatus.SENT, lease_token="", lease_until=None,
                                             paused_since=None, pause_class="", last_error="cancelled by staff",
                                             updated=clock.now())
    delivery.finalize_chunk(chunk.id)
    return ids


def _registered_in_shared_group(chunk: Chunk) -> bool:
    """Whether the chunk's messages may be registered in a Solapi group other chunks share
    (small requests sent together: messaging/pipeline/express.py). Any of those chunks,
    resumed on its own, sends the whole group, this chunk's messages included: so they may
    still go out whatever happens to this chunk, and it is left to finish with them."""
    if not chunk.solapi_group_id:
        return False
    shared = Chunk.objects.filter(solapi_group_id=chunk.solapi_group_id).exclude(id=chunk.id).exists()
    return shared and (chunk.messages_added is not None or chunk.attempts.filter(
        operation=SolapiOperation.ADD_MESSAGES).exists())


def _fail_cancelled(messages) -> int:
    return messages.update(status=MessageStatus.FAILED, failure_class=FailureClass.CANCELLED,
                           failure_reason=CANCEL_REASON, completed_at=clock.now())


def _outcome(send_request: SendRequest, *, cancelled_now: int) -> CancelOutcome:
    messages = Message.objects.filter(send_request=send_request)
    cancelled_ids = list(messages.filter(failure_class=FailureClass.CANCELLED).values_list("id", flat=True))
    released = sum((h.amount for h in ledger.holds_for(cancelled_ids).values() if h.status == HoldStatus.RELEASED),
                   Decimal("0"))
    # One statement, one snapshot: counted apart, a message the send step moved from in flight
    # to accepted between the two counts was in neither (or, the other way, in both).
    totals = messages.aggregate(
        accepted=Count("id", filter=Q(accepted_at__isnull=False) | Q(status__in=[MessageStatus.ACCEPTED,
                                                                                MessageStatus.DELIVERED])),
        in_flight=Count("id", filter=Q(status__in=_UNSENT)))
    return CancelOutcome(send_request_id=send_request.id, cancelled_at=send_request.cancelled,
                         cancelled=len(cancelled_ids), released=released, accepted=totals["accepted"],
                         in_flight=totals["in_flight"], cancelled_now=cancelled_now)
