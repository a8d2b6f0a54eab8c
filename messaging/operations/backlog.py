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

The estimate is a guide for staff and monitoring, not a promise. Three indexed aggregates over
`messaging_message` ((status, accepted_at) and the send-request key); the cost measured on
PostgreSQL is in docs/exactly-once.md ("Back-pressure").
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q

from messaging.models import Message, MessageStatus
from messaging.pipeline.queues import ALL_QUEUES
from project import clock
from project.clock import KST

# Statuses of messages Solapi has accepted (a failure after acceptance counts: it drained too).
_DRAINED = [MessageStatus.ACCEPTED, MessageStatus.DELIVERED, MessageStatus.FAILED]
# A burst's first acceptances would otherwise make a rate out of a moment.
MIN_RATE_WINDOW_SECONDS = 5.0


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
    """The backlog of each queue, in three queries whatever the number of queues."""
    now = clock.now()
    window_start = now - timedelta(seconds=settings.MESSAGING_BACKLOG_RATE_WINDOW_SECONDS)
    not_yet_at_solapi = (Q(status=MessageStatus.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
                         | Q(status__in=[MessageStatus.HELD, MessageStatus.SENDING]))
    ahead = _by_queue(Message.objects.filter(not_yet_at_solapi, send_request__queue__in=queues),
                      since="created")
    drained = _by_queue(Message.objects.filter(status__in=_DRAINED, accepted_at__gte=window_start,
                                               send_request__queue__in=queues), since="accepted_at")
    return {queue: _estimate(queue, now, ahead.get(queue), drained.get(queue)) for queue in queues}


def backlog_for(queue: str) -> QueueBacklog:
    return queue_backlogs((queue,))[queue]


def _by_queue(messages, *, since: str) -> dict[str, dict]:
    rows = (messages.values("send_request__queue")
            .annotate(messages=Count("id"), requests=Count("send_request_id", distinct=True), since=Min(since))
            .order_by())
    return {row["send_request__queue"]: row for row in rows}


def _estimate(queue: str, now: datetime, ahead: dict | None, drained: dict | None) -> QueueBacklog:
    messages_ahead, requests_ahead = (ahead["messages"], ahead["requests"]) if ahead else (0, 0)
    messages_rate = requests_rate = 0.0
    if drained:
        window = max((now - drained["since"]).total_seconds(), MIN_RATE_WINDOW_SECONDS)
        messages_rate, requests_rate = drained["messages"] / window, drained["requests"] / window
    if not messages_ahead:
        wait, basis = 0.0, Basis.EMPTY
    elif drained:
        wait, basis = max(messages_ahead / messages_rate, requests_ahead / requests_rate), Basis.DRAIN_RATE
    else:
        wait, basis = max((now - ahead["since"]).total_seconds(), 0.0), Basis.OLDEST_WAITING
    return QueueBacklog(
        queue=queue, requests_ahead=requests_ahead, messages_ahead=messages_ahead,
        messages_per_second=round(messages_rate, 2), requests_per_second=round(requests_rate, 2),
        wait_seconds=round(wait), basis=basis, estimated_start=now + timedelta(seconds=round(wait)),
    )
