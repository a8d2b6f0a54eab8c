"""The webhook's inbox: a POST's reports are stored as they arrive and applied after the answer.

Applying a POST (messaging/reports/apply.py, then settlement.settle) waits for the messages'
row locks, captures credit and recounts send requests: under the everyday load it took
0.3-1.5 s, in the same process that answers /healthz. Solapi only needs to know the reports
are safe, so the webhook stores the POST in one insert (store), answers 200, and a task on the
interactive queue applies it (apply_waiting). Why none is lost or applied twice:

- The POST is committed before the answer: a 200 means it is stored. A crash before the
  commit answers nothing, and Solapi sends the POST again.
- A batch is claimed with its row locked (FOR UPDATE SKIP LOCKED: two workers take different
  batches) and marked applied in the transaction that stores its reports and moves its
  messages. A crash mid-apply rolls all of it back: the batch waits for the next try, whole.
- Solapi's re-delivery of an event comes in another POST, so another batch. The event id is
  unique among the stored reports (DeliveryReport), so whichever batch is applied second
  finds it stored and counts a duplicate, whether the first was applied before it arrived or
  not (two workers applying both at once: apply.py's per-report fallback).
- The task is published after the commit; a publish that fails or a task that is lost leaves
  the batch waiting, and beat's sweep (publish_for_waiting) publishes the apply again once a
  batch has waited MESSAGING_REPORT_REAPPLY_AFTER_SECONDS. A batch whose apply raises is
  recorded as a failed attempt and stays waiting; the others go on without it.
- Credit moves after the commit, as before (settle is idempotent; the reconciliation sweep
  settles what a crash between the two left open).
"""

import json
import logging
import time
from dataclasses import asdict
from datetime import timedelta

from celery import signature
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Min

from messaging.models import ReceivedReportBatch
from messaging.pipeline import queues, settlement
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
        transaction.on_commit(lambda: publish_apply(batch.id))
    return batch


def publish_apply(up_to: int) -> bool:
    """Publish an apply of the waiting batches up to batch `up_to` (every one of them, so the
    tasks of a burst of POSTs find theirs applied by the first). No retry in the request: a
    lost publish is the sweep's to repeat. Returns whether it was published."""
    try:
        # Read when called: a test's own queue (tests' own_queues) takes the place of the real one.
        signature(APPLY_TASK, args=(up_to,)).apply_async(queue=queues.INTERACTIVE_QUEUE, retry=False)
    except Exception as exc:  # kombu and botocore raise many types for "broker unreachable"
        logger.warning("report_apply_publish_failed error=%s", type(exc).__name__)
        return False
    return True


def apply_waiting(up_to: int | None = None, *, time_budget: float | None = None) -> dict[str, int]:
    """Apply waiting batches up to batch `up_to` (None: all), oldest first, each in its own
    transaction, until none is left or `time_budget` seconds are spent (the sweep publishes
    again for what is left). Bounded by `up_to`, a task does not chase POSTs that came after it
    (their own tasks follow). Returns how many batches were applied and how many failed."""
    began = time.monotonic()
    applied = failed = 0
    tried: set[int] = set()
    while time_budget is None or time.monotonic() - began < time_budget:
        outcome = _apply_next(up_to, exclude=tried)
        if outcome is None:
            break
        batch_id, ok = outcome
        tried.add(batch_id)  # a batch that failed is not tried again in this run
        applied, failed = applied + ok, failed + (not ok)
    return {"applied": applied, "failed": failed}


def _apply_next(up_to: int | None, *, exclude: set[int]) -> tuple[int, bool] | None:
    """Claim the oldest waiting batch no other worker holds, apply it and mark it applied in one
    transaction, then settle. Returns (its id, whether it was applied), None when none waits."""
    waiting = ReceivedReportBatch.objects.filter(applied__isnull=True).exclude(id__in=exclude)
    if up_to is not None:
        waiting = waiting.filter(id__lte=up_to)
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


def oldest_waiting_age() -> float:
    """Seconds the oldest waiting batch has waited (0: none waits)."""
    oldest = ReceivedReportBatch.objects.filter(applied__isnull=True).aggregate(at=Min("received"))["at"]
    return max((clock.now() - oldest).total_seconds(), 0.0) if oldest else 0.0


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
