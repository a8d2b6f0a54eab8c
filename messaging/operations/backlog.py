"""How long a send accepted now waits before it starts: the backlog of each queue, estimated
from our own tables. The API answers it with every send and /healthz reports it, so it never
asks SQS (a call per request would cost more than the send itself, and SQS counts tasks, not
messages).

- **Ahead**: messages accepted and not yet handed to Solapi (pending and due, held, sending),
  and the send requests they belong to. Under a backlog their next step waits in the queue in
  front of a new request's. Night-deferred ads are not ahead (they wait for 08:00, not for
  the queue).
- **Drain rate**: the messages (and their requests) Solapi accepted over the last
  MESSAGING_BACKLOG_RATE_WINDOW_SECONDS, per second, measured from the first of them (a queue
  that was idle until a burst is not averaged over its idle time). A request costs broker
  round trips whatever its size, so the queue drains by messages and by requests: the wait is
  the longer of the two estimates.
- **Nothing drained in the window** while messages are ahead: no rate to go by, so the wait is
  how long the oldest of them has waited already (a queue that has stopped shows a wait that
  grows; a burst on an idle queue shows about none until its first messages are accepted).

The estimate is a guide for staff and monitoring, not a promise: a send's answer reuses one
up to MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS old, estimated again in the background
(recent_backlog_for). Its cost grows with the backlog, not with the tables: two aggregates
over `messaging_message` on its (status, accepted_at) index and the queues of the requests
they found, by key. Measured on PostgreSQL (benchmarks/backlog_cost.py): docs/exactly-once.md, "Back-pressure".
"""

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Count, Min, Q

from messaging.models import Message, MessageStatus, SendRequest
from messaging.pipeline.queues import ALL_QUEUES
from project import clock
from project.clock import KST

logger = logging.getLogger(__name__)

# Statuses of messages Solapi has accepted (a failure after acceptance counts: it drained too).
_DRAINED = [MessageStatus.ACCEPTED, MessageStatus.DELIVERED, MessageStatus.FAILED]
# A burst's first acceptances would otherwise make a rate out of a moment.
MIN_RATE_WINDOW_SECONDS = 5.0
# At most this many requests are counted per measure (ahead, drained): what an estimate costs
# in Python stays bounded, and a backlog this deep is late by any measure.
REQUESTS_CAP = 2_000


class Basis:
    """What an estimate rests on."""

    EMPTY = "empty"  # nothing ahead
    DRAIN_RATE = "drain_rate"  # what is ahead, at the rate the queue drained lately
    OLDEST_WAITING = "oldest_waiting"  # nothing drained lately: how long the oldest has waited


@dataclass(frozen=True)
class QueueBacklog:
    queue: str
    requests_ahead: int
    messages_ahead: int
    # Accepted by Solapi per second lately (0 when nothing was).
    messages_per_second: float
    requests_per_second: float
    wait_seconds: int
    basis: str
    estimated_start: datetime

    @property
    def delayed(self) -> bool:
        return self.wait_seconds > settings.MESSAGING_BACKLOG_WARN_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "estimated_start": kst_iso(self.estimated_start), "delayed": self.delayed}


def kst_iso(moment: datetime) -> str:
    """As the API writes times: ISO 8601 in Korea's time, to the second."""
    return moment.astimezone(KST).replace(microsecond=0).isoformat()


def delay_messages(backlog: QueueBacklog) -> dict[str, str]:
    """What staff are told when their send will start late (the answer's `delay_messages`)."""
    minutes = max(1, -(-backlog.wait_seconds // 60))
    at = backlog.estimated_start.astimezone(KST).strftime("%H:%M")
    return {
        "ko": f"발송 대기열이 길어 약 {minutes}분 후({at} 예정)에 발송이 시작됩니다. "
              "요청은 접수되었으며 누락되지 않습니다.",
        "en": f"The sending queue is long: sending should start in about {minutes} min (around {at} KST). "
              "The request is accepted and nothing is lost.",
    }


def queue_backlogs(queues: tuple[str, ...] = ALL_QUEUES) -> dict[str, QueueBacklog]:
    """The backlog of each queue, in four queries whatever the number of queues."""
    now = clock.now()
    window_start = now - timedelta(seconds=settings.MESSAGING_BACKLOG_RATE_WINDOW_SECONDS)
    not_yet_at_solapi = Message.objects.filter(
        Q(status=MessageStatus.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
        | Q(status__in=[MessageStatus.HELD, MessageStatus.SENDING]))
    drained = Message.objects.filter(status__in=_DRAINED, accepted_at__gte=window_start)
    ahead = _by_queue(not_yet_at_solapi, since="created", queues=queues)
    drained = _by_queue(drained, since="accepted_at", queues=queues)
    return {queue: _estimate(queue, now, ahead=ahead.get(queue, _Tally()), drained=drained.get(queue, _Tally()))
            for queue in queues}


def backlog_for(queue: str) -> QueueBacklog:
    return queue_backlogs((queue,))[queue]


# Per process: queue → (time.monotonic() when estimated, the estimate).
_recent: dict[str, tuple[float, QueueBacklog]] = {}
# An estimate older than this many times the answer's cache age is not answered while a fresh
# one is made: a process that has sent nothing for a while estimates again, in the request.
STALE_FACTOR = 10


def recent_backlog_for(queue: str) -> QueueBacklog:
    """backlog_for, reused for MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS in this process: what
    each send answers. When it runs out, the send answers the one it has and a background
    thread of the process estimates again: the estimate's queries grow with the
    backlog (tens of ms under a deep one), and a send must not wait for them exactly when the
    queue is long. Only the process's first estimate, or one far older than the cache age
    (STALE_FACTOR), is made in the request. 0 estimates in every request."""
    max_age = settings.MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS
    if max_age <= 0:
        return backlog_for(queue)
    cached = _recent.get(queue)
    age = time.monotonic() - cached[0] if cached is not None else None
    if age is None or age >= max_age * STALE_FACTOR:
        return _estimate_and_keep(queue)
    if age >= max_age:
        _refresh_in_background(queue)
    return cached[1]


def _estimate_and_keep(queue: str) -> QueueBacklog:
    started = time.monotonic()
    backlog = backlog_for(queue)
    _recent[queue] = (started, backlog)
    return backlog


# Held while a background estimate runs: one at a time per process.
_refreshing = threading.Lock()


def _refresh_in_background(queue: str) -> None:
    """Estimate `queue` again in a thread of its own, unless one is estimating already (the
    next send asks again). The thread opens its own database connection and closes it: one
    short connection at most every cache age per process, none held between sends."""
    if not _refreshing.acquire(blocking=False):
        return
    try:
        threading.Thread(target=_refresh, args=(queue,), name="backlog-refresh", daemon=True).start()
    except BaseException:
        _refreshing.release()
        raise


def _refresh(queue: str) -> None:
    try:
        _estimate_and_keep(queue)
    except Exception:
        # Sends answer the estimate they have meanwhile.
        logger.exception("backlog_refresh_failed queue=%s", queue)
    finally:
        connections.close_all()  # this thread's only
        _refreshing.release()


@dataclass
class _Tally:
    messages: int = 0
    requests: int = 0
    since: datetime | None = None


def _by_queue(messages, *, since: str, queues: tuple[str, ...]) -> dict[str, _Tally]:
    """Messages and requests per queue, and the earliest `since`. Grouped by request on the
    messages' (status, accepted_at) index first, then the requests' queues looked up by key:
    joining the send requests instead lets the planner scan that table, which only grows. At
    most REQUESTS_CAP requests are counted (a count that reaches it is a lower bound)."""
    per_request = list(messages.values("send_request_id").annotate(n=Count("id"), since=Min(since))
                       .order_by()[:REQUESTS_CAP])
    queue_of = dict(SendRequest.objects.filter(id__in=[row["send_request_id"] for row in per_request])
                    .values_list("id", "queue"))
    tallies: dict[str, _Tally] = {}
    for row in per_request:
        queue = queue_of.get(row["send_request_id"])
        if queue not in queues:
            continue
        tally = tallies.setdefault(queue, _Tally())
        tally.messages += row["n"]
        tally.requests += 1
        tally.since = min(tally.since or row["since"], row["since"])
    return tallies


def _estimate(queue: str, now: datetime, *, ahead: _Tally, drained: _Tally) -> QueueBacklog:
    messages_rate = requests_rate = 0.0
    if drained.messages:
        window = max((now - drained.since).total_seconds(), MIN_RATE_WINDOW_SECONDS)
        messages_rate, requests_rate = drained.messages / window, drained.requests / window
    if not ahead.messages:
        wait, basis = 0.0, Basis.EMPTY
    elif drained.messages:
        wait, basis = max(ahead.messages / messages_rate, ahead.requests / requests_rate), Basis.DRAIN_RATE
    else:
        wait, basis = max((now - ahead.since).total_seconds(), 0.0), Basis.OLDEST_WAITING
    return QueueBacklog(
        queue=queue, requests_ahead=ahead.requests, messages_ahead=ahead.messages,
        messages_per_second=round(messages_rate, 2), requests_per_second=round(requests_rate, 2),
        wait_seconds=round(wait), basis=basis, estimated_start=now + timedelta(seconds=round(wait)),
    )
