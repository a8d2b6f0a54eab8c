"""How far each queue's consumers have got: what tells a stuck chunk from a waiting one.

A chunk that has not moved for MESSAGING_STALE_CHUNK_SECONDS is either *stuck* (its next
step was lost: a crash the errback could not settle, a queue that vanished) or *waiting*
(its next step is still in a long queue, behind hundreds of others). Publishing a waiting
chunk's chain again only makes that queue longer, so the sweep must tell them apart
without asking SQS (which cannot say whether a given message is in a queue):

- every task published, by any process, carries in a message header the moment it becomes
  visible on its queue: the publish time plus any SQS `DelaySeconds` (`before_task_publish`);
- each worker records, per queue, the newest such moment among the tasks it has started
  (`task_prerun`), in one QueueProgress row per queue, written at most about once a second
  per process and only ever forwards;
- SQS standard queues hand messages out roughly in publish order, so once tasks that became
  visible after a chunk last moved have started (its queue's head has passed that moment, by
  ORDER_SLACK), the chunk's own next step would have started too: if the chunk still has not
  moved, it is stuck. Until then it is waiting, however long that takes.

An idle queue starts nothing, so its head would stay where it was: the sweep publishes a
probe (a no-op task) to each queue it looks at, and the next sweep finds the head at the
moment of that probe once the queue has caught up with it. Times are the project clock's
(project/clock.py), like the chunks' `updated` they are compared with.
"""

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from celery import shared_task
from celery.signals import before_task_publish, task_prerun
from django.conf import settings
from django.db.models import Q

from messaging.models import QueueProgress
from messaging.pipeline.backoff import SQS_MAX_DELAY_SECONDS
from project import clock

logger = logging.getLogger(__name__)

# The headers stamped on every task message (seconds since the epoch; the queue's name).
VISIBLE_AT_HEADER = "x_visible_at"
QUEUE_HEADER = "x_queue"
# SQS standard queues keep publish order only roughly (and consumers hold a prefetched
# message while they finish another): a head this far past a moment proves it was reached.
ORDER_SLACK = timedelta(seconds=15)
# Each worker process writes its heads at most this often.
WRITE_INTERVAL_SECONDS = 1.0
PROBE_TASK = "messaging.queue_probe"


def connect() -> None:
    """Connect the signal handlers (messaging/apps.py, in every process: web, beat, worker)."""
    before_task_publish.connect(stamp_published_task, weak=False, dispatch_uid="queue_progress_stamp")
    task_prerun.connect(record_started_task, weak=False, dispatch_uid="queue_progress_record")


# --- publishing and starting tasks ----------------------------------------------------------


def stamp_published_task(*, headers: dict, routing_key: str = "", properties: dict | None = None, **_) -> None:
    """before_task_publish: stamp when the message becomes visible, and on which queue. Every
    publish stamps afresh (a retry carries its predecessor's headers)."""
    delay = (properties or {}).get("DelaySeconds") or 0
    headers[VISIBLE_AT_HEADER] = clock.now().timestamp() + float(delay)
    headers[QUEUE_HEADER] = routing_key


# Per worker process: when it last wrote each queue's head.
_last_write: dict[str, float] = {}


def record_started_task(*, task, **_) -> None:
    """task_prerun: move the queue's head forwards to the started task's moment. A task
    skipped by the write interval is overtaken by the next one written (or the next probe)."""
    request = task.request
    queue, visible_at = getattr(request, QUEUE_HEADER, None), getattr(request, VISIBLE_AT_HEADER, None)
    if not queue or not isinstance(visible_at, int | float) or getattr(request, "is_eager", False):
        return
    now = time.monotonic()
    if now - _last_write.get(queue, float("-inf")) < WRITE_INTERVAL_SECONDS:
        return
    _last_write[queue] = now
    try:
        _move_head(queue, datetime.fromtimestamp(visible_at, UTC))
    except Exception:
        # Progress is advisory: a missed write only makes the sweep wait longer; never fail the task.
        logger.warning("queue_progress_write_failed queue=%s", queue, exc_info=True)


def _move_head(queue: str, moment: datetime) -> None:
    """Forwards only, whatever order processes write in."""
    moved = QueueProgress.objects.filter(queue=queue, head_published_at__lt=moment).update(
        head_published_at=moment, updated=clock.now())
    if not moved:
        QueueProgress.objects.get_or_create(queue=queue, defaults={"head_published_at": moment,
                                                                   "updated": clock.now()})


@shared_task(name=PROBE_TASK, ignore_result=True)
def queue_probe() -> None:
    """Does nothing: starting it is the point (record_started_task moves its queue's head)."""


def publish_probes(queues: Iterable[str]) -> None:
    for queue in sorted(set(queues)):
        try:
            queue_probe.apply_async(queue=queue, retry=False)
        except Exception as exc:  # broker unreachable: the next sweep probes again
            logger.warning("queue_probe_publish_failed queue=%s error=%s", queue, type(exc).__name__)


# --- reading --------------------------------------------------------------------------------


def longest_delay() -> timedelta:
    """The longest a pipeline step waits in SQS before it is visible: every retry goes through
    backoff.retry_later (a backoff up to MESSAGING_RETRY_MAX_SECONDS, a breaker probe interval,
    a Retry-After), and SQS caps any delay at 900 s."""
    longest = max(settings.MESSAGING_RETRY_MAX_SECONDS,
                  settings.MESSAGING_BREAKER_PROBE_SECONDS + settings.MESSAGING_RETRY_BASE_SECONDS)
    return timedelta(seconds=min(SQS_MAX_DELAY_SECONDS, longest))


def overtaken(*, moment: str, queue: str, delayed: Q | None = None,
              rows_on: Callable[[str], Iterable[str]] | None = None) -> Q:
    """A filter for rows whose `moment` (a field: when the row last moved) their queue's
    consumers have provably passed: tasks that became visible after it have started. `queue`
    is the lookup of the row's queue name; `rows_on(name)`, the values of that lookup whose
    next task is on queue `name` (default: `name` itself; a send request's dispatch is not on
    its lane: queues.lanes_dispatched_on). Rows matching `delayed` may have their next step
    waiting out an SQS delay, so their queue must have passed the moment by the longest delay
    as well. A queue without a head (no task started from it yet) overtakes nothing."""
    matched = Q(pk__in=[])
    for name, head in QueueProgress.objects.values_list("queue", "head_published_at"):
        passed = head - ORDER_SLACK
        reached = Q(**{f"{moment}__lt": passed})
        if delayed is not None:
            reached = Q(**{f"{moment}__lt": passed - longest_delay()}) | (~delayed & reached)
        on_it = list(rows_on(name)) if rows_on else [name]
        matched |= Q(**{f"{queue}__in": on_it}) & reached
    return matched
