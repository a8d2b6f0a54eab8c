"""/healthz: can this deployment send messages right now, and if not, why?

- database: a query answers;
- broker: the SQS queues answer GetQueueAttributes (depth, in flight, delayed);
- breaker: whether Solapi sending is paused platform-wide, why and since when;
- workers: heartbeat rows (messaging/operations/liveness.py), since SQS cannot answer `inspect ping`;
- pipeline: the oldest chunk still moving and undispatched requests, from our own tables.
  SQS exposes no age-of-oldest-message attribute (that is a CloudWatch metric); the
  oldest unfinished chunk is the same signal, measured from the outbox's side.
- backlog: per queue, what is ahead and the estimated wait of a send accepted now
  (messaging/operations/backlog.py, from our own tables).

200 when the database and the broker answer (status "ok", or "degraded" with the breaker
open, no live worker, or a queue whose estimated wait exceeds MESSAGING_BACKLOG_WARN_SECONDS);
503 otherwise.

Anyone gets the status alone ({"status": "ok"}, and the same HTTP status): enough for a
load balancer. The details name hosts, queues and error texts, so they are for staff
(an admin session) or a caller with HEALTH_TOKEN in the X-Health-Token header.
"""

import hmac
from datetime import timedelta
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from messaging.models import BreakerState, Chunk, ChunkStatus, SendRequest, WorkerHeartbeat
from messaging.operations.backlog import queue_backlogs
from messaging.operations.liveness import ALIVE_WITHIN_SECONDS
from messaging.pipeline import breaker
from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE
from project import clock

_QUEUE_ATTRIBUTES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


HEALTH_TOKEN_HEADER = "X-Health-Token"


def healthz(request) -> JsonResponse:
    report = _report()
    status = 200 if report["status"] != "down" else 503
    if not _may_see_details(request):
        report = {"status": report["status"]}
    return JsonResponse(report, status=status)


def _may_see_details(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = request.headers.get(HEALTH_TOKEN_HEADER, "")
    return bool(settings.HEALTH_TOKEN and token) and hmac.compare_digest(token.encode(),
                                                                        settings.HEALTH_TOKEN.encode())


def _report() -> dict:
    database = _check(_database)
    broker = _check(_broker)
    report = {"database": database, "broker": broker}
    if database["ok"]:
        report |= {"breaker": _breaker(), "workers": _workers(), "pipeline": _pipeline(), "backlog": _backlog()}
    healthy = database["ok"] and broker["ok"]
    degraded = healthy and (report["breaker"]["state"] == BreakerState.OPEN
                            or not any(w["alive"] for w in report["workers"])
                            or any(queue["delayed"] for queue in report["backlog"].values()))
    report["status"] = "down" if not healthy else "degraded" if degraded else "ok"
    return report


def _check(probe) -> dict:
    try:
        return {"ok": True, **probe()}
    except Exception as exc:  # a health check reports failures; it does not raise them
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def _broker() -> dict:
    client = _sqs_client()
    predefined = {BULK_QUEUE: settings.SQS_QUEUE_URL, INTERACTIVE_QUEUE: settings.SQS_INTERACTIVE_QUEUE_URL}
    queues = {}
    for name, url in predefined.items():
        try:
            url = url or client.get_queue_url(QueueName=name)["QueueUrl"]
        except client.exceptions.QueueDoesNotExist:
            queues[name] = {"exists": False}  # created on first use (dev)
            continue
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=list(_QUEUE_ATTRIBUTES))["Attributes"]
        queues[name] = {label: int(attributes.get(key, 0)) for key, label in _QUEUE_ATTRIBUTES.items()}
    return {"queues": queues}


def _sqs_client():
    """A client for the broker's endpoint, with short timeouts and no retries."""
    url = urlsplit(settings.CELERY_BROKER_URL)
    options = {"region_name": settings.AWS_REGION,
               "config": Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1})}
    if url.hostname:
        scheme = "http" if url.hostname in ("127.0.0.1", "localhost") else "https"
        options["endpoint_url"] = f"{scheme}://{url.hostname}:{url.port}" if url.port else f"{scheme}://{url.hostname}"
    if url.username:
        options |= {"aws_access_key_id": unquote(url.username), "aws_secret_access_key": unquote(url.password or "")}
    return boto3.client("sqs", **options)


def _breaker() -> dict:
    state = breaker.current()
    return {"state": state.state, "failure_class": state.failure_class, "error_code": state.error_code,
            "since": state.opened_at if state.state == BreakerState.OPEN else None, "detail": state.detail}


def _workers() -> list[dict]:
    alive_after = clock.now() - timedelta(seconds=ALIVE_WITHIN_SECONDS)
    return [
        {"hostname": w.hostname, "last_seen": w.last_seen, "alive": w.stopped is None and w.last_seen >= alive_after}
        for w in WorkerHeartbeat.objects.all()[:50]
    ]


def _backlog() -> dict:
    """Per queue: requests and messages ahead, the drain rate, the estimated wait, `delayed`."""
    return {queue: backlog.as_dict() for queue, backlog in queue_backlogs().items()}


def _pipeline() -> dict:
    now = clock.now()
    oldest = Chunk.objects.exclude(status=ChunkStatus.FINALIZED).order_by("created").values_list(
        "created", flat=True).first()
    return {
        "oldest_unfinished_chunk_age_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        "undispatched_send_requests": SendRequest.objects.filter(dispatched__isnull=True).count(),
        "paused_chunks": Chunk.objects.filter(paused_since__isnull=False).exclude(status=ChunkStatus.FINALIZED)
        .count(),
    }
