"""The delivery pipeline's steps, as plain services. messaging/pipeline/tasks.py runs them.

    dispatch:  split a send request's pending messages into chunks
    reserve:   re-check the academy and each recipient (opt-out, consent, night window),
               hold credit for each message that may go (one transaction)
    send:      one Solapi group per chunk: create, add messages, send
    finalize:  capture what Solapi accepted, release the rest, log every outcome
    roll back: after an unexpected failure, release what was not accepted

Every step is safe to run twice, because SQS delivers at least once: state guards
under row locks decide what is left to do, credit moves are keyed by message id,
and a Solapi group is sent at most once (a repeated send answers 409).
"""

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Count, DateTimeField, Q, Value
from django.db.models.functions import Coalesce

from billing import ledger
from billing.ledger import HoldRequest
from messaging.compose import rules
from messaging.compose.message_rows import new_chunks_of
from messaging.compose.planning import message_variables
from messaging.compose.recipient_checks import Recipient, standing_of
from messaging.eligibility import why_academy_cannot_send
from messaging.failures import FailureClass
from messaging.models import (
    UNSENT_STATUSES,
    Chunk,
    ChunkStatus,
    DeliveryAttempt,
    Message,
    MessageMode,
    MessageStatus,
    SendRequest,
    SolapiOperation,
)
from messaging.operations.counts import refresh_counts_of
from messaging.pipeline import breaker, pacing, queue_progress, settlement
from messaging.solapi.client import MessageResult, OutgoingMessage, get_client
from messaging.solapi.errors import SolapiError
from project import clock
from project.sql import update_rows
from tenants.models import Tenant
from tenants.services import sender_reject

logger = logging.getLogger(__name__)


# --- dispatch -------------------------------------------------------------------------


def split_into_chunks(send_request_id: int) -> list[int]:
    """Put the request's unchunked pending messages into chunks; return every chunk
    still waiting for its chain (new ones, and ones a crashed dispatch left behind)."""
    with transaction.atomic():
        chunk_due_messages([send_request_id])
        return list(Chunk.objects.filter(send_request_id=send_request_id, status=ChunkStatus.QUEUED)
                    .values_list("id", flat=True))


def chunk_due_messages(send_request_ids: Sequence[int]) -> list[int]:
    """Put the requests' unchunked pending messages that are due into new chunks, under the
    requests' row locks (taken in id order, as every taker of several does); return the new
    chunks' ids. A fixed number of statements however many requests: small sends sharing a
    Solapi group bring dozens (messaging/pipeline/express.py)."""
    with transaction.atomic():
        requests = list(SendRequest.objects.select_for_update().filter(id__in=send_request_ids).order_by("id"))
        due = Message.objects.filter(send_request_id__in=send_request_ids, status=MessageStatus.PENDING,
                                     chunk__isnull=True).exclude(not_before__gt=clock.now())
        by_request: dict[int, list[int]] = defaultdict(list)
        for request_id, message_id in due.order_by("id").values_list("send_request_id", "id"):
            by_request[request_id].append(message_id)
        if not by_request:
            return []
        existing = dict(Chunk.objects.filter(send_request_id__in=by_request).values_list("send_request_id")
                        .annotate(n=Count("id")).order_by())
        chunks = new_chunks_of([(request, by_request[request.id], existing.get(request.id, 0))
                                for request in requests if request.id in by_request])
        update_rows([Message(id=message_id, chunk_id=chunk_id) for chunk_id, part in chunks for message_id in part],
                    ["chunk"])
        return [chunk_id for chunk_id, _ in chunks]


@dataclass(frozen=True)
class StaleChunk:
    id: int
    queue: str
    # Where its chain starts again (a step name of tasks.chunk_pipeline).
    first_step: str


_RESUME_AT = {ChunkStatus.QUEUED: "reserve", ChunkStatus.HELD: "send", ChunkStatus.SENDING: "send",
              ChunkStatus.SENT: "finalize"}


@dataclass(frozen=True)
class StaleChunks:
    # Their queue has moved past the moment they last moved: their next step was lost.
    stuck: list[StaleChunk]
    # Idle as long, but their queue has not reached that moment yet: per queue, how many.
    waiting: dict[str, int]


# A chunk that backed off (a retry, a 429, a breaker pause) may have its next step delayed in SQS.
_MAY_BE_DELAYED = Q(transient_failures__gt=0) | Q(rate_limited__gt=0) | Q(paused_since__isnull=False)


def stale_chunks(limit: int = 500) -> StaleChunks:
    """Unfinished chunks that stopped moving, stuck or waiting (messaging/pipeline/queue_progress.py
    tells which). Paused chunks touch `updated` on every deferral, so they are not stale while
    the breaker holds them."""
    cutoff = clock.now() - timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS)
    # A broadcast's chunk waiting for its academy's share is not stale: it was never published.
    idle = (Chunk.objects.filter(updated__lte=cutoff).exclude(status=ChunkStatus.FINALIZED)
            .exclude(pacing.waiting_to_be_published()))
    stuck = queue_progress.overtaken(moment="updated", queue="send_request__queue", delayed=_MAY_BE_DELAYED)
    waiting = idle.exclude(stuck).values_list("send_request__queue").annotate(n=Count("id")).order_by()
    return StaleChunks(stuck=_resumable(idle.filter(stuck), limit=limit), waiting=dict(waiting))


def unfinished_chunks(chunk_ids: list[int]) -> list[StaleChunk]:
    """The given chunks that have not finished, with the step each goes on from."""
    return _resumable(Chunk.objects.filter(id__in=chunk_ids))


def _resumable(chunks, limit: int | None = None) -> list[StaleChunk]:
    rows = chunks.exclude(status=ChunkStatus.FINALIZED).values_list("id", "send_request__queue", "status")[:limit]
    return [StaleChunk(id=chunk_id, queue=queue, first_step=_RESUME_AT[status]) for chunk_id, queue, status in rows]


# --- reserve credit ---------------------------------------------------------------------


def reserve_chunk(chunk_id: int) -> None:
    """The reserve step of one chunk's chain (reserve_chunks says what it checks)."""
    reserve_chunks([chunk_id])


def reserve_chunks(chunk_ids: Sequence[int]) -> None:
    """Check again, for every pending message of the chunks, what may have changed since its
    request was accepted, then hold credit for what may go:
    - the academy (messaging switched off, sender rejected): its messages fail;
    - the recipient (opted out, consent withdrawn): skipped with the reason, credit released;
    - the night window (an ad reaching this step at night: a retry, a stale chunk): back to
      waiting for 08:00 KST, its credit still held;
    - the credit: held now unless the request's acceptance held it already (holds are keyed
      by message id), and a message whose hold does not fit fails with insufficient_credit.

    One transaction for all of them, with a fixed number of statements per academy and
    purpose: small sends sharing a Solapi group (express.py) bring a chunk per request, often
    dozens, and a statement per chunk per check was most of their worker's time
    (docs/benchmarks.md, "Small sends: one pass for the whole group")."""
    with transaction.atomic():
        # Locked in id order, as every other taker of several chunks does: no deadlock.
        chunks = list(Chunk.objects.select_for_update(of=("self",)).select_related("send_request")
                      .filter(id__in=chunk_ids, status=ChunkStatus.QUEUED).order_by("id"))
        if not chunks:
            return
        Chunk.objects.filter(id__in=[c.id for c in chunks]).update(status=ChunkStatus.HELD, updated=clock.now())
        tenants = Tenant.objects.in_bulk({c.send_request.tenant_id for c in chunks})
        holds: list[tuple[Tenant, list[HoldRequest]]] = []
        for tenant_id, purpose, its_chunks in _by_academy_and_purpose(chunks):
            tenant = tenants[tenant_id]
            # The messages that may go stay pending: the chunk's HELD says their credit is held
            # (messaging/models.py, UNSENT_STATUSES: no write of their rows for it).
            pending = Message.objects.filter(chunk__in=its_chunks, status=MessageStatus.PENDING)
            refusal = why_academy_cannot_send(tenant)
            if refusal:
                _fail(pending, refusal, str(refusal.label))
                continue
            may_go = _recheck_recipients(tenant_id, purpose, list(pending.values(
                "id", "price", "phone", "student_id", "recipient_kind", "send_request_id")))
            holds.append((tenant, [HoldRequest(i, price) for i, price in may_go]))
        # Last in the transaction, academy by academy in id order: a hold not made at acceptance
        # locks the academy's account row from its conditional UPDATE to this commit
        # (billing/ledger.py), so nothing slow follows it, and two takers lock accounts in one order.
        for tenant, requests in sorted(holds, key=lambda hold: hold[0].id):
            outcome = ledger.hold_credit(tenant=tenant, requests=requests)
            if outcome.refused:
                _fail(Message.objects.filter(id__in=outcome.refused, status__in=UNSENT_STATUSES),
                      FailureClass.INSUFFICIENT_CREDIT, "충전금이 부족합니다 (not enough credit for this message)")


def _by_academy_and_purpose(chunks: list[Chunk]) -> Iterator[tuple[int, str, list[Chunk]]]:
    """The chunks grouped by what their recheck reads: the academy's suppression list, and
    consents when the purpose is an ad."""
    groups: dict[tuple[int, str], list[Chunk]] = defaultdict(list)
    for chunk in chunks:
        groups[(chunk.send_request.tenant_id, chunk.send_request.purpose)].append(chunk)
    for (tenant_id, purpose), its_chunks in groups.items():
        yield tenant_id, purpose, its_chunks


def _recheck_recipients(tenant_id: int, purpose: str, rows: list[dict]) -> list[tuple[int, Decimal]]:
    """Skip the messages whose recipient may no longer get them, put night ads back to wait
    for 08:00, and return (id, price) of the rest. Two queries for all the rows (one academy,
    one purpose), and a statement per skip reason."""
    standing = standing_of(tenant_id=tenant_id, purpose=purpose,
                           phones=[r["phone"] for r in rows], student_ids=[r["student_id"] for r in rows])
    now = clock.kst_now()
    skipped: dict[str, list[int]] = defaultdict(list)
    waiting: list[int] = []
    may_go = []
    touched: set[int] = set()
    for row in rows:
        recipient = Recipient(student_id=row["student_id"], kind=row["recipient_kind"], phone=row["phone"])
        reason = standing.skip_reason(recipient)
        if reason:
            skipped[reason].append(row["id"])
            touched.add(row["send_request_id"])
        elif standing.must_wait(recipient, now):
            waiting.append(row["id"])
            touched.add(row["send_request_id"])
        else:
            may_go.append((row["id"], row["price"]))
    for reason, ids in skipped.items():
        Message.objects.filter(id__in=ids, status=MessageStatus.PENDING).update(
            status=MessageStatus.SKIPPED, skip_reason=reason, completed_at=clock.now())
        logger.info("skipped_at_send_time tenant=%s reason=%s count=%s", tenant_id, reason, len(ids))
    if skipped:
        # Held when the request was accepted; a staff retry's messages have no hold yet.
        ledger.release_holds(message_ids=[i for ids in skipped.values() for i in ids],
                             memo="skipped at send time: opted out or consent withdrawn")
    morning = rules.next_morning(now)
    for position in range(0, len(waiting), rules.RELEASE_WAVE_SIZE):
        # Out of the chunk: dispatch takes it again when it is due (outbox.release_due_deferred).
        Message.objects.filter(id__in=waiting[position : position + rules.RELEASE_WAVE_SIZE]).update(
            chunk=None, not_before=rules.release_time(morning, position))
    if waiting:
        logger.info("deferred_at_send_time tenant=%s count=%s until=%s", tenant_id, len(waiting), morning.isoformat())
    if touched:
        refresh_counts_of(touched)
    return may_go

# --- send -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SendOutcome:
    accepted: int
    failed: int
    already_sent: bool = False


@dataclass(frozen=True)
class Lease:
    """One execution of the send step. Its token is its own: SQS can hand the same task
    (same task id) to two consumers at once, so the task id cannot tell them apart."""

    chunk_id: int
    task_id: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class ChunkBusy(Exception):
    """Another execution holds the chunk's send lease."""

    def __init__(self, seconds_left: float):
        self.seconds_left = seconds_left
        super().__init__(f"chunk is being sent by another execution for up to {seconds_left:.0f}s")


class LeaseLost(Exception):
    """Another execution took the chunk over (this one's lease had run out): stop, change nothing."""


def send_chunk(lease: Lease) -> SendOutcome:
    """Send the chunk's held messages as one Solapi group, at most once.

    Raises SolapiError, breaker.PlatformPaused, ChunkBusy or LeaseLost for the task's policy
    to handle; the task releases the lease after the policy has run (release_lease).
    """
    chunk = _claim(lease)
    if chunk is None:
        return SendOutcome(accepted=0, failed=0)
    return _send([(lease, chunk)])


def send_together(leases: Sequence[Lease]) -> SendOutcome:
    """Send several chunks' held messages in one shared Solapi group: the small requests that
    arrived together (messaging/pipeline/express.py). A group may carry messages of many
    academies and senders; credit, state and reports stay per message, and every chunk gets
    its own row for each call on its timeline, so each chunk still knows whether its group
    may have gone out.

    A chunk another execution is sending is left to it (its holder finishes it); a chunk
    resumed after a crash has its own group already and is sent on its own. Raises like
    send_chunk; the caller releases the leases.
    """
    fresh: list[tuple[Lease, Chunk]] = []
    outcomes = []
    claimed, _busy = _claim_all(leases)
    for lease, chunk in claimed:
        if chunk.messages_added:
            outcomes.append(_send([(lease, chunk)]))
        else:
            fresh.append((lease, chunk))
    if fresh:
        outcomes.append(_send(fresh))
    return SendOutcome(accepted=sum(o.accepted for o in outcomes), failed=sum(o.failed for o in outcomes),
                       already_sent=any(o.already_sent for o in outcomes))


def release_lease(lease: Lease) -> None:
    """Give the lease up, if this execution still holds it. A database that cannot be reached
    changes nothing: the lease runs out by itself (MESSAGING_TASK_TIME_LIMIT after the claim)."""
    release_leases([lease])


def release_leases(leases: Sequence[Lease]) -> None:
    """release_lease for many, one UPDATE per lease token."""
    by_token: dict[str, list[int]] = defaultdict(list)
    for lease in leases:
        by_token[lease.token].append(lease.chunk_id)
    for token, chunk_ids in by_token.items():
        try:
            Chunk.objects.filter(id__in=chunk_ids, lease_token=token).update(lease_token="", lease_until=None)
        except DatabaseError as error:
            logger.warning("lease_release_failed chunks=%s error=%s", chunk_ids[:5], type(error).__name__)


def _send(claimed: list[tuple[Lease, Chunk]]) -> SendOutcome:
    """One Solapi group for the claimed chunks: all new (no messages registered yet), or one
    chunk resumed after a crash, whose group is its own."""
    # Every decision below reads the chunks as the last fenced read left them: under their
    # row locks, after the claim, with this execution still holding the leases. Nobody else
    # can have changed them since, or that read would have raised LeaseLost.
    going = _with_messages_to_send(claimed)
    if not going:
        # Every message was refused before sending (credit, academy state): nothing to call.
        return SendOutcome(accepted=0, failed=0)
    breaker.ensure_closed_or_claim_probe()
    client = get_client()
    failed = 0
    leases = [lease for lease, _ in going]
    if not going[0][1].messages_added:
        # A group that never got its messages registered was never sent: start a new one.
        with _attempt(leases, SolapiOperation.CREATE_GROUP) as attempt:
            attempt.solapi_group_id = client.create_group()
        chunks = _fenced_all(leases, solapi_group_id=attempt.solapi_group_id)
        # Plain rows, not model instances: building a thousand models costs as much as the calls.
        rows = list(Message.objects.filter(chunk__in=chunks, status__in=UNSENT_STATUSES).values(
            "chunk_id", *_OUTGOING_FIELDS))
        by_id = {chunk.id: chunk for chunk in chunks}
        with _attempt(leases, SolapiOperation.ADD_MESSAGES):
            results = client.add_messages(attempt.solapi_group_id,
                                          [_outgoing(row, by_id[row["chunk_id"]]) for row in rows])
        chunk_of = {row["id"]: by_id[row["chunk_id"]] for row in rows}
        failed = _record_registrations(going, results, chunk_of)
    going = _with_messages_to_send(list(zip(leases, _fenced_all(leases), strict=True)))
    if not going:
        return SendOutcome(accepted=0, failed=failed)
    leases = [lease for lease, _ in going]
    with _attempt(leases, SolapiOperation.SEND_GROUP) as attempt:
        group = client.send_group(going[0][1].solapi_group_id)
        if group.already_sent:
            attempt.http_status, attempt.error_code = 409, "AlreadySent"
            attempt.detail = "the group had already gone out: an earlier try was accepted"
    breaker.close("a Solapi send succeeded")
    accepted = _mark_sent(leases)
    return SendOutcome(accepted=accepted, failed=failed, already_sent=group.already_sent)


def _with_messages_to_send(claimed: list[tuple[Lease, Chunk]]) -> list[tuple[Lease, Chunk]]:
    """The claimed chunks that still have messages to send; the others are marked sent
    (finalize settles them)."""
    ids = set(Message.objects.filter(chunk_id__in=[chunk.id for _, chunk in claimed], status__in=UNSENT_STATUSES)
              .values_list("chunk_id", flat=True).distinct())
    empty = [lease for lease, chunk in claimed if chunk.id not in ids]
    if empty:
        _mark_sent(empty)
    return [(lease, chunk) for lease, chunk in claimed if chunk.id in ids]


def _claim(lease: Lease) -> Chunk | None:
    """The state guard for one chunk (the chain's send step); raises ChunkBusy when another
    execution holds its lease."""
    claimed, busy = _claim_all([lease])
    if busy:
        raise ChunkBusy(busy[0])
    return claimed[0][1] if claimed else None


def _claim_all(leases: Sequence[Lease]) -> tuple[list[tuple[Lease, Chunk]], list[float]]:
    """The state guard: only a chunk whose credit is held, or whose send was cut short,
    goes on, and only in the one execution holding its lease. Any other execution, a second
    copy of the same task included, waits until the lease is released or has run out (by
    then the hard time limit has ended its holder: the lease lasts as long as a task may).
    Returns the chunks claimed, and the seconds left on each lease another execution holds
    (those chunks are left to it). One transaction, one UPDATE per lease token: the leases of
    one execution share theirs (express.py's shared groups)."""
    now = clock.now()
    until = now + timedelta(seconds=settings.MESSAGING_TASK_TIME_LIMIT)
    claimed: list[tuple[Lease, Chunk]] = []
    busy: list[float] = []
    with transaction.atomic():
        chunks = {chunk.id: chunk for chunk in Chunk.objects.select_for_update(of=("self",)).select_related(
            "send_request__tenant", "send_request__template").filter(id__in=[lease.chunk_id for lease in leases])
            .order_by("id")}
        for lease in leases:
            chunk = chunks[lease.chunk_id]
            if chunk.status not in (ChunkStatus.HELD, ChunkStatus.SENDING):
                logger.info("send_skipped chunk=%s status=%s", chunk.id, chunk.status)
                continue
            if chunk.lease_token and chunk.lease_until and chunk.lease_until > now:
                busy.append((chunk.lease_until - now).total_seconds())
                continue
            if chunk.lease_token:
                logger.warning("lease_taken_over chunk=%s lease_until=%s", chunk.id, chunk.lease_until)
            chunk.status, chunk.lease_token, chunk.lease_until = ChunkStatus.SENDING, lease.token, until
            claimed.append((lease, chunk))
        by_token: dict[str, list[int]] = defaultdict(list)
        for lease, chunk in claimed:
            by_token[lease.token].append(chunk.id)
        for token, ids in by_token.items():
            Chunk.objects.filter(id__in=ids).update(status=ChunkStatus.SENDING, lease_token=token, lease_until=until,
                                                    updated=now)
    return claimed, busy


def _locked(lease: Lease) -> Chunk:
    return _locked_all([lease])[0]


def _locked_all(leases: Sequence[Lease]) -> list[Chunk]:
    """The chunks under their row locks (taken in id order, so two executions cannot
    deadlock), if this execution still holds every lease; the caller is in a transaction.
    Raises LeaseLost otherwise."""
    chunks = {chunk.id: chunk for chunk in Chunk.objects.select_for_update(of=("self",)).select_related(
        "send_request__tenant", "send_request__template").filter(id__in=[lease.chunk_id for lease in leases])
        .order_by("id")}
    for lease in leases:
        if chunks[lease.chunk_id].lease_token != lease.token:
            raise LeaseLost(f"chunk {lease.chunk_id} is leased by another execution now")
    return [chunks[lease.chunk_id] for lease in leases]


def _fenced(lease: Lease) -> Chunk:
    return _fenced_all([lease])[0]


def _fenced_all(leases: Sequence[Lease], **changes) -> list[Chunk]:
    """Read the chunks again under their row locks and write `changes`, only while this
    execution holds the leases (UPDATE … WHERE lease_token = mine, in effect)."""
    with transaction.atomic():
        chunks = _locked_all(leases)
        if changes:
            Chunk.objects.filter(id__in=[chunk.id for chunk in chunks]).update(**changes, updated=clock.now())
            for chunk in chunks:
                for name, value in changes.items():
                    setattr(chunk, name, value)
        return chunks


_OUTGOING_FIELDS = ("id", "phone", "text", "message_type", "subject", "variables")


def _outgoing(row: dict, chunk: Chunk) -> OutgoingMessage:
    tenant = chunk.send_request.tenant
    template = chunk.send_request.template
    return OutgoingMessage(
        message_id=row["id"],
        to=row["phone"],
        sender=tenant.messaging_sender,
        text=row["text"],
        message_type=row["message_type"],
        subject=row["subject"],
        pf_id=tenant.kakao_pf_id,
        template_id=template.solapi_template_id if template else "",
        variables=message_variables(row["variables"], chunk.send_request.alimtalk_replacements),
        disable_sms=chunk.send_request.mode != MessageMode.BOTH,
    )


def _record_registrations(going: list[tuple[Lease, Chunk]], results: list[MessageResult],
                          chunk_of: dict[int, Chunk]) -> int:
    """Keep Solapi's per-message verdicts. Returns how many messages it refused.
    (A refusal about our Solapi account raised in add_messages: the group is abandoned
    unsent, and the chunks wait like any platform pause.)"""
    refused = [r for r in results if r.outcome.failure_class]
    with transaction.atomic():
        chunks = _locked_all([lease for lease, _ in going])
        for result in refused:
            Message.objects.filter(id=result.message_id, status__in=UNSENT_STATUSES).update(
                status=MessageStatus.FAILED,
                failure_class=result.outcome.failure_class,
                failure_reason=result.status_message[:300] or str(result.outcome.failure_class.label),
                solapi_status_code=result.outcome.code,
                solapi_message_id=result.solapi_message_id,
                completed_at=clock.now(),
            )
        # Registered messages get their Solapi id from their delivery report: writing a
        # thousand ids here would be a thousand UPDATEs in the hot path.
        Chunk.objects.filter(id__in=[chunk.id for chunk in chunks]).update(messages_added=clock.now(),
                                                                          updated=clock.now())
    rejected_senders = {chunk_of[r.message_id].send_request.tenant_id: r for r in refused
                        if r.outcome.failure_class == FailureClass.SENDER_UNREGISTERED and r.message_id in chunk_of}
    for tenant_id, result in rejected_senders.items():
        if sender_reject(tenant_id=tenant_id, reason=f"Solapi {result.outcome.code}: {result.status_message}"):
            logger.warning("sender_rejected tenant=%s code=%s", tenant_id, result.outcome.code)
    return len(refused)


def _mark_sent(leases: Sequence[Lease]) -> int:
    """Solapi took the chunks' group: their unsent messages are accepted. One transaction for
    all of them, with a fixed number of statements. Returns how many were accepted."""
    now = clock.now()
    with transaction.atomic():
        ids = [chunk.id for chunk in _locked_all(leases)]
        accepted = Message.objects.filter(chunk_id__in=ids, status__in=UNSENT_STATUSES).update(
            status=MessageStatus.ACCEPTED, accepted_at=now
        )
        Chunk.objects.filter(id__in=ids).update(
            status=ChunkStatus.SENT, sent=Coalesce("sent", Value(now, output_field=DateTimeField())),
            paused_since=None, pause_class="", rate_limited_since=None, updated=now
        )
    return accepted


@contextmanager
def _attempt(leases: Sequence[Lease], operation: str) -> Iterator[DeliveryAttempt]:
    """Record one Solapi call on the timeline of every chunk it serves (a shared group serves
    several), whatever its outcome. The rows are written under the fence, so no execution
    that has lost a lease calls Solapi. The caller fills in the yielded attempt; every row
    gets what it says."""
    started = time.monotonic()
    # Written before the call, as "no clear answer": if the process dies during the call,
    # the rows say the request may have reached Solapi.
    with transaction.atomic():
        chunks = _locked_all(leases)
        rows = DeliveryAttempt.objects.bulk_create([
            DeliveryAttempt(chunk=chunk, operation=operation, task_id=lease.task_id,
                            solapi_group_id=chunk.solapi_group_id, ambiguous=True, detail="in progress")
            for lease, chunk in zip(leases, chunks, strict=True)])
    attempt = DeliveryAttempt(operation=operation, solapi_group_id=chunks[0].solapi_group_id)
    try:
        yield attempt
    except SolapiError as error:
        attempt.http_status = error.http_status
        attempt.error_code = error.error_code
        attempt.failure_class = error.failure_class
        attempt.ambiguous = error.ambiguous
        attempt.detail = error.detail
        raise
    except Exception as error:
        # Our own failure mid-call (a time limit, a bug): what became of the request is unknown.
        attempt.ambiguous, attempt.detail = True, f"{type(error).__name__}: {error}"[:300]
        raise
    else:
        attempt.http_status = attempt.http_status or 200
    finally:
        DeliveryAttempt.objects.filter(id__in=[row.id for row in rows]).update(
            solapi_group_id=attempt.solapi_group_id, http_status=attempt.http_status,
            error_code=attempt.error_code, failure_class=attempt.failure_class or "",
            ambiguous=attempt.ambiguous, detail=attempt.detail[:300],
            duration_ms=int((time.monotonic() - started) * 1000))


# --- when sending cannot go on --------------------------------------------------------


def record_transient_failure(lease: Lease, error: SolapiError) -> int:
    """Count a transient failure; returns how many the chunk has had."""
    with transaction.atomic():
        chunk = _locked(lease)
        chunk.transient_failures += 1
        chunk.last_error = f"{type(error).__name__}: {error.detail}"[:300]
        chunk.save(update_fields=["transient_failures", "last_error", "updated"])
        return chunk.transient_failures


def record_rate_limit(lease: Lease, error: SolapiError) -> tuple[int, timedelta]:
    """Count a 429 (apart from the transient failures); returns how many the chunk has had
    since it was last sent, and how long ago the first of them was."""
    now = clock.now()
    with transaction.atomic():
        chunk = _locked(lease)
        chunk.rate_limited += 1
        chunk.rate_limited_since = chunk.rate_limited_since or now
        chunk.last_error = f"{type(error).__name__}: {error.detail}"[:300]
        chunk.save(update_fields=["rate_limited", "rate_limited_since", "last_error", "updated"])
        return chunk.rate_limited, now - chunk.rate_limited_since


def record_pause(lease: Lease, failure_class: FailureClass, reason: str) -> timedelta:
    """Note that the platform breaker holds this chunk back, and why (its messages show as
    paused); returns how long it has waited."""
    now = clock.now()
    with transaction.atomic():
        chunk = _locked(lease)
        chunk.paused_since = chunk.paused_since or now
        chunk.pause_class = failure_class
        chunk.last_error = reason[:300]
        chunk.save(update_fields=["paused_since", "pause_class", "last_error", "updated"])
        return now - chunk.paused_since


def give_up_sending(lease: Lease, failure_class: FailureClass, reason: str) -> None:
    """Stop trying: messages that provably did not go out fail, and finalize releases their
    credit. A chunk whose group may have been sent is settled by asking Solapi first."""
    chunk = _fenced(lease)
    if chunk.may_have_been_sent() and _group_went_out(chunk, lease):
        _mark_sent([lease])
        return
    with transaction.atomic():
        chunk = _locked(lease)
        _fail(chunk.messages.filter(status__in=UNSENT_STATUSES), failure_class, reason)
        Chunk.objects.filter(id=chunk.id).update(status=ChunkStatus.SENT, paused_since=None, pause_class="",
                                                 updated=clock.now())


def _group_went_out(chunk: Chunk, lease: Lease) -> bool:
    """Ask Solapi. If it cannot answer, the SolapiError propagates and the chunk stays
    unsettled for the stale-chunk sweep: better late than refunding a sent message."""
    with _attempt([lease], SolapiOperation.GET_GROUP):
        group = get_client().get_group(chunk.solapi_group_id)
    return group.went_out


# --- finalize ---------------------------------------------------------------------------


def finalize_chunk(chunk_id: int) -> dict[str, int]:
    """The finalize step of one chunk's chain (finalize_chunks says what it does)."""
    return finalize_chunks([chunk_id])


def finalize_chunks(chunk_ids: Sequence[int]) -> dict[str, int]:
    """Settle credit and write the outcome rows for every message of the chunks that reached
    an outcome, in one pass for all of them (chunks sharing a Solapi group: express.py). Safe
    to repeat: holds move once, outcome rows are unique per outcome."""
    early = Chunk.objects.filter(id__in=chunk_ids).exclude(status__in=(ChunkStatus.SENT, ChunkStatus.FINALIZED))
    for chunk_id, status in early.values_list("id", "status")[:1]:
        raise RuntimeError(f"chunk {chunk_id} is {status}; finalize runs after send")
    # Only what settle() reads: every column of a thousand rows cost about as much as its writes.
    messages = list(Message.objects.filter(
        chunk_id__in=chunk_ids, status__in=[MessageStatus.ACCEPTED, MessageStatus.DELIVERED, MessageStatus.FAILED]
    ).only(*settlement.SETTLED_FIELDS))
    settlement.settle(messages)
    Chunk.objects.filter(id__in=chunk_ids).update(status=ChunkStatus.FINALIZED, updated=clock.now())
    return {"accepted": sum(m.status != MessageStatus.FAILED for m in messages),
            "failed": sum(m.status == MessageStatus.FAILED for m in messages)}


# --- roll back --------------------------------------------------------------------------


def roll_back_chunk(chunk_id: int, *, failed_step: str, error: str) -> None:
    """After a defect in our code (messaging/pipeline/policies.py says what counts as one):
    fail and release what provably was not sent.

    Left alone (for the step's redelivery or the stale-chunk sweep, both idempotent):
    - a chunk whose reserve step had committed: what failed came after its work;
    - a chunk another execution is sending right now (its lease is live);
    - a chunk whose send may have reached Solapi: re-sending the same group settles it
      (409 = sent), and a message Solapi accepted is never refunded;
    - a chunk past sending: finalize only needs to run again.
    """
    with transaction.atomic():
        chunk = Chunk.objects.select_for_update().get(id=chunk_id)
        reserved = failed_step == "messaging.reserve_credit" and chunk.status != ChunkStatus.QUEUED
        leased = bool(chunk.lease_token and chunk.lease_until and chunk.lease_until > clock.now())
        if (reserved or leased or chunk.status in (ChunkStatus.SENT, ChunkStatus.FINALIZED)
                or chunk.may_have_been_sent()):
            logger.error("rollback_deferred chunk=%s step=%s status=%s leased=%s error=%s", chunk_id, failed_step,
                         chunk.status, leased, error)
            return
        reason = f"{failed_step} failed: {error}"[:300]
        _fail(chunk.messages.filter(status__in=UNSENT_STATUSES), FailureClass.INTERNAL, reason)
        Chunk.objects.filter(id=chunk_id).update(status=ChunkStatus.SENT, last_error=reason, updated=clock.now())
    finalize_chunk(chunk_id)
    logger.error("rollback chunk=%s step=%s error=%s", chunk_id, failed_step, error)


def _fail(messages, failure_class: FailureClass, reason: str) -> int:
    return messages.update(
        status=MessageStatus.FAILED, failure_class=failure_class, failure_reason=reason[:300],
        completed_at=clock.now(),
    )
