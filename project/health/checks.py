"""What /healthz looks at, one check each; `run_checks()` turns them into one report.

- database: a query answers;
- broker: the SQS queues answer GetQueueAttributes (depth, in flight, delayed);
- breaker: whether Solapi sending is paused platform-wide, why and since when;
- workers: heartbeat rows (messaging/operations/liveness.py), since SQS cannot answer `inspect ping`;
- pipeline: the oldest chunk still moving and undispatched requests, from our own tables.
  SQS exposes no age-of-oldest-message attribute (that is a CloudWatch metric); the
  oldest unfinished chunk is the same signal, measured from the outbox's side.
- alerts: the alert conditions that stop sending, as check_alerts sees them (docs/alerts.md);
- backlog: per queue, what is ahead and the estimated wait of a send accepted now
  (messaging/operations/backlog.py, from our own tables).

The status is the worst any check says: "down" when the database or the broker does not
answer; "degraded" with the breaker open, no live worker, a stuck chunk (the alerts check:
messaging/operations/alerts.py), or a queue whose estimated wait exceeds
MESSAGING_BACKLOG_WARN_SECONDS; "ok" otherwise. A new check is one function
returning (its section of the report, its status) and one line in CHECKS.

These run in the background (project/health/monitor.py), never on a request's path.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config
from django.conf import settings
from django.db import connection

from messaging.models import BreakerState, Chunk, ChunkStatus, SendRequest, WorkerHeartbeat
from messaging.operations import alerts
from messaging.operations.backlog import queue_backlogs
from messaging.operations.liveness import ALIVE_WITHIN_SECONDS, queues_without_live_worker
from messaging.pipeline import breaker
from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE
from project import clock


class HealthStatus(StrEnum):
    # In order of severity: the report's status is the worst of its checks'.
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


_SEVERITY = list(HealthStatus)

Finding = tuple[Any, HealthStatus]  # a check's section of the report, and what it means for the whole


@dataclass(frozen=True)
class Check:
    name: str  # its key in the report
    run: Callable[[], Finding]
    # What a check that raises means: the database and the broker are what sending needs;
    # the other checks read the database, so they fail with it (already "down") or on their own.
    when_it_fails: HealthStatus


def run_checks() -> dict[str, Any]:
    """Every check, each in its own guard: {"status": …, <check name>: <its section>, …}."""
    report: dict[str, Any] = {}
    statuses = []
    for check in CHECKS:
        try:
            section, status = check.run()
        except Exception as exc:  # a health check reports failures; it does not raise them
            section, status = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}, check.when_it_fails
        report[check.name] = section
        statuses.append(status)
    return {"status": worst(statuses), **report}


def worst(statuses: list[HealthStatus]) -> HealthStatus:
    return max(statuses, key=_SEVERITY.index, default=HealthStatus.OK)


# --- the checks ------------------------------------------------------------------------------

def database() -> Finding:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}, HealthStatus.OK


_QUEUE_ATTRIBUTES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}
# The queues' URLs once found (GetQueueUrl), so a refresh costs one call per queue.
_queue_urls: dict[str, str] = {}


def broker() -> Finding:
    client = _sqs_client()
    predefined = {BULK_QUEUE: settings.SQS_QUEUE_URL, INTERACTIVE_QUEUE: settings.SQS_INTERACTIVE_QUEUE_URL}
    queues = {}
    for name, url in predefined.items():
        try:
            url = url or _queue_urls.get(name) or client.get_queue_url(QueueName=name)["QueueUrl"]
        except client.exceptions.QueueDoesNotExist:
            queues[name] = {"exists": False}  # created on first use (dev)
            continue
        try:
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=list(_QUEUE_ATTRIBUTES))
        except Exception:
            _queue_urls.pop(name, None)  # a lost queue: look its URL up again next time
            raise
        _queue_urls[name] = url
        queues[name] = {label: int(attributes["Attributes"].get(key, 0)) for key, label in _QUEUE_ATTRIBUTES.items()}
    return {"ok": True, "queues": queues}, HealthStatus.OK


_client = None


def _sqs_client():
    """A client for the broker's endpoint, with bounded timeouts and no retries; made once (a
    boto3 client costs tens of milliseconds of CPU to build). The check runs in the background
    (monitor.py), so a slow answer delays no request: the read timeout is as long as a refresh
    interval, and only a broker slower than that reads as down (under the everyday load the local
    SQS took over 2 s at times, and a 2 s timeout answered 503 while every message still went)."""
    global _client
    if _client is not None:
        return _client
    url = urlsplit(settings.CELERY_BROKER_URL)
    options = {"region_name": settings.AWS_REGION,
               "config": Config(connect_timeout=1, read_timeout=settings.HEALTH_REFRESH_SECONDS,
                                 retries={"max_attempts": 1})}
    if url.hostname:
        scheme = "http" if url.hostname in ("127.0.0.1", "localhost") else "https"
        options["endpoint_url"] = f"{scheme}://{url.hostname}:{url.port}" if url.port else f"{scheme}://{url.hostname}"
    if url.username:
        options |= {"aws_access_key_id": unquote(url.username), "aws_secret_access_key": unquote(url.password or "")}
    _client = boto3.client("sqs", **options)
    return _client


def breaker_state() -> Finding:
    state = breaker.current()
    is_open = state.state == BreakerState.OPEN
    section = {"state": state.state, "failure_class": state.failure_class, "error_code": state.error_code,
               "since": state.opened_at if is_open else None, "detail": state.detail}
    return section, HealthStatus.DEGRADED if is_open else HealthStatus.OK


def workers() -> Finding:
    """Each worker's heartbeat; degraded while a queue has no live worker consuming it."""
    now = clock.now()
    alive_after = now - timedelta(seconds=ALIVE_WITHIN_SECONDS)
    rows = [
        {"hostname": w.hostname, "queues": w.queues, "last_seen": w.last_seen,
         "alive": w.stopped is None and w.last_seen >= alive_after}
        for w in WorkerHeartbeat.objects.all()[:50]
    ]
    return rows, HealthStatus.DEGRADED if queues_without_live_worker(now) else HealthStatus.OK


def backlog() -> Finding:
    """Per queue: requests and messages ahead, the drain rate, the estimated wait, `delayed`."""
    queues = {queue: estimate.as_dict() for queue, estimate in queue_backlogs().items()}
    delayed = any(queue["delayed"] for queue in queues.values())
    return queues, HealthStatus.DEGRADED if delayed else HealthStatus.OK


def pipeline() -> Finding:
    return {
        "oldest_unfinished_chunk_age_seconds": int(alerts.oldest_unfinished_chunk_age(clock.now())),
        "undispatched_send_requests": SendRequest.objects.filter(dispatched__isnull=True).count(),
        "paused_chunks": Chunk.objects.filter(paused_since__isnull=False).exclude(status=ChunkStatus.FINALIZED)
        .count(),
    }, HealthStatus.OK


def alert_conditions() -> Finding:
    """The alert conditions that stop sending (messaging/operations/alerts.py): the breaker open,
    no live worker, a chunk older than ALERT_OLDEST_CHUNK_SECONDS; what check_alerts raises."""
    active = alerts.active_conditions(health_only=True)
    return active, HealthStatus.DEGRADED if active else HealthStatus.OK


# In the report's order.
CHECKS: list[Check] = [
    Check("database", database, when_it_fails=HealthStatus.DOWN),
    Check("broker", broker, when_it_fails=HealthStatus.DOWN),
    Check("breaker", breaker_state, when_it_fails=HealthStatus.DEGRADED),
    Check("workers", workers, when_it_fails=HealthStatus.DEGRADED),
    Check("pipeline", pipeline, when_it_fails=HealthStatus.DEGRADED),
    Check("backlog", backlog, when_it_fails=HealthStatus.DEGRADED),
    Check("alerts", alert_conditions, when_it_fails=HealthStatus.DEGRADED),
]
