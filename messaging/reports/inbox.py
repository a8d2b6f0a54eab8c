"""The webhook's inbox: a POST's reports are stored as they arrive and applied after the answer.

Applying a POST (messaging/reports/apply.py, then settlement.settle) waits for the messages'
row locks, captures credit and recounts send requests: under the everyday load it took
0.3-1.5 s, in the same process that answers /healthz. Solapi only needs to know the reports
are safe, so the webhook stores the POST in one insert (store), answers 200, and a task on the
interactive queue applies it (apply_published): one task due at a time, which takes every batch
waiting (messaging/pipeline/due_marks.py), and which gives way to small sends' dispatches. Why
none is lost or applied twice:

- The POST is committed before the answer: a 200 means it is stored. A crash before the
  commit answers nothing, and Solapi sends the POST again.
- A batch is claimed with its row locked (FOR UPDATE SKIP LOCKED: two workers take different
  batches) and marked applied in the transaction that stores its reports and moves its
  messages. A crash mid-apply rolls all of it back: the batch waits for the next try, whole.
- Solapi's re-delivery of an event comes in another POST, so another batch. The event id is
  unique among the stored reports (DeliveryReport), so whichever batch is applied second
  finds it stored and counts a duplicate, whether the first was applied before it arrived or
  not (two workers applying both at once: apply.py's per-report fallback).
- The task is published after the commit (or found due, and clears its mark before it looks);
  a publish that fails or a task that is lost leaves the batch waiting, and beat's sweep
  (publish_for_waiting) publishes the apply again once a batch has waited
  MESSAGING_REPORT_REAPPLY_AFTER_SECONDS. A batch whose apply raises is recorded as a failed
  attempt and stays waiting; the others go on without it.
- Credit moves after the commit, as before (settle is idempotent; the reconciliation sweep
  settles what a crash between the two left open).
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from celery import signature
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Min, Sum

from messaging.models import ReceivedReportBatch
from messaging.pipeline import due_marks, queues, settlement
from messaging.reports.apply import ReportSummary, record_reports
from messaging.solapi.reports import parse_webhook
from project import clock

logger = logging.getLogger(__name__)

APPLY_TASK = "messaging.apply_received_reports"


def store(body: list) -> ReceivedReportBatch:
    """Store a POST's reports (its JSON list, as check_envelope let it through) and publish their
    apply once they are committed. The caller answers 200 after this returns."""
    with transaction.atomic():
        # ASCII: a NUL or lone surrogate is escaped, so PostgreSQL stores it like any text.
        text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
        batch = ReceivedReportBatch.objects.create(body=text, reports=len(body))
        transaction.on_commit(lambda: request_apply(batch.id))
    return batch


def request_apply(up_to: int) -> bool:
    """After a POST's commit: publish an apply of the waiting batches up to `up_to`, unless one
    is due to start already, which takes this batch too (messaging/pipeline/due_marks.py).
    Returns whether an apply covers the batch (False: the publish failed, the sweep repeats it)."""
    if not due_marks.claim(_mark()):
        return True
    if publish_apply(up_to):
        return True
    due_marks.clear(_mark())
    return False


def publish_apply(up_to: int) -> bool:
    """Publish an apply of the waiting batches up to batch `up_to`. No retry in the request: a
    lost publish is the sweep's to repeat. Returns whether it was published."""
    try:
        # Read when called: a test's own queue (tests' own_queues) takes the place of the real one.
        signature(APPLY_TASK, args=(up_to,)).apply_async(queue=queues.INTERACTIVE_QUEUE, retry=False)
    except Exception as exc:  # kombu and botocore raise many types for "broker unreachable"
        logger.warning("report_apply_publish_failed error=%s", type(exc).__name__)
        return False
    return True


def _mark() -> str:
    # Read when called, as publish_apply's queue.
    return f"{queues.INTERACTIVE_QUEUE}#reports"


def apply_published(up_to: int, *, time_budget: float) -> dict[str, int]:
    """The apply task: every batch waiting up to the newest stored when it starts (POSTs that
    found this task due published none of their own), each in its own transaction.

    Sends come before bookkeeping: the task stops after a batch when a small send's dispatch
    is due on the interactive queue, or when its time budget is spent, and publishes the rest's
    apply behind it. Under a burst the dispatches then get both of a worker's slots, and the
    reports follow once the burst is through (issue 18: a dispatch waited up to 1.4 s behind
    report applies, and sends went out one group at a time)."""
    due_marks.clear(_mark())
    newest = ReceivedReportBatch.objects.filter(applied__isnull=True).aggregate(last=Max("id"))["last"]
    up_to = max(up_to, newest or 0)
    applied, failed, left = _apply_until(up_to, time_budget=time_budget,
                                        stop=lambda: due_marks.is_due(queues.INTERACTIVE_QUEUE))
    if left:
        request_apply(up_to)
    return {"applied": applied, "failed": failed}


def apply_waiting(up_to: int | None = None, *, time_budget: float | None = None) -> dict[str, int]:
    """Apply waiting batches up to batch `up_to` (None: all), oldest first, each in its own
    transaction, until none is left or `time_budget` seconds are spent (the sweep publishes
    again for what is left). Bounded by `up_to`, a run does not chase POSTs that came after it.
    Returns how many batches were applied and how many failed."""
    applied, failed, _ = _apply_until(up_to, time_budget=time_budget)
    return {"applied": applied, "failed": failed}


def _apply_until(up_to: int | None, *, time_budget: float | None,
                 stop: Callable[[], bool] | None = None) -> tuple[int, int, bool]:
    """apply_waiting, also stopping after a batch when `stop()` says so. Returns the batches
    applied and failed, and whether it stopped (budget or `stop`) with batches left that it
    has not tried (one that failed in this run waits for the sweep, not for a loop of tasks)."""
    began = time.monotonic()
    applied = failed = 0
    tried: set[int] = set()
    while True:
        outcome = _apply_next(up_to, exclude=tried)
        if outcome is None:
            return applied, failed, False
        batch_id, ok = outcome
        tried.add(batch_id)  # a batch that failed is not tried again in this run
        applied, failed = applied + ok, failed + (not ok)
        if (time_budget is not None and time.monotonic() - began >= time_budget) or (stop and stop()):
            return applied, failed, _waiting(up_to).exclude(id__in=tried).exists()


def _apply_next(up_to: int | None, *, exclude: set[int]) -> tuple[int, bool] | None:
    """Claim the oldest waiting batch no other worker holds, apply it and mark it applied in one
    transaction, then settle. Returns (its id, whether it was applied), None when none waits."""
    waiting = _waiting(up_to).exclude(id__in=exclude)
    batch = None
    try:
        with transaction.atomic():
            batch = waiting.select_for_update(skip_locked=True).order_by("id").first()
            if batch is None:
                return None
            summary, finished = _record(batch)
            batch.applied = clock.now()
            batch.summary = asdict(summary)
            batch.save(update_fields=["applied", "summary"])
    except Exception as exc:
        if batch is None:
            raise
        # Rolled back whole: the batch waits, and the others go on. Recorded in a transaction of
        # its own (if the database itself is gone, this raises too and the task is retried).
        logger.exception("report_batch_failed batch=%s error=%s", batch.id, type(exc).__name__)
        ReceivedReportBatch.objects.filter(id=batch.id).update(
            failed_attempts=F("failed_attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:300])
        return batch.id, False
    settlement.settle(finished)
    return batch.id, True


def _record(batch: ReceivedReportBatch) -> tuple[ReportSummary, list]:
    """The batch's reports, read by the adapter as the webhook read them, stored and applied."""
    parsed = parse_webhook(json.loads(batch.body))
    return record_reports(parsed.reports, rejected=parsed.rejected)


def _waiting(up_to: int | None):
    waiting = ReceivedReportBatch.objects.filter(applied__isnull=True)
    return waiting if up_to is None else waiting.filter(id__lte=up_to)


@dataclass(frozen=True)
class Backlog:
    batches: int
    reports: int
    oldest_age_seconds: float  # 0: none waits


def backlog(now: datetime | None = None) -> Backlog:
    """The batches stored and not yet applied, in one statement (the partial index of waiting
    batches): how many, the reports in them, and how long the oldest has waited. /metrics and
    the report_backlog alert read it."""
    now = now or clock.now()
    waiting = _waiting(None).aggregate(batches=Count("id"), reports=Sum("reports"), oldest=Min("received"))
    age = max((now - waiting["oldest"]).total_seconds(), 0.0) if waiting["oldest"] else 0.0
    return Backlog(batches=waiting["batches"], reports=waiting["reports"] or 0, oldest_age_seconds=age)


def publish_for_waiting() -> int:
    """Beat's sweep: when a batch has waited longer than MESSAGING_REPORT_REAPPLY_AFTER_SECONDS
    (its publish failed, its task was lost, its apply failed), publish the apply again. Returns
    how many batches wait that long."""
    cutoff = clock.now() - timedelta(seconds=settings.MESSAGING_REPORT_REAPPLY_AFTER_SECONDS)
    stale = ReceivedReportBatch.objects.filter(applied__isnull=True, received__lte=cutoff).aggregate(
        n=Count("id"), last=Max("id"))
    if stale["n"]:
        logger.warning("report_batches_waiting count=%s", stale["n"])
        publish_apply(stale["last"])
    return stale["n"]
