"""Every Celery setting, each with its reason. Loaded by project/celery.py.

The longer reason and the upstream source of each choice: docs/celery-on-sqs.md, in the
section named in parentheses below.
Values that differ between machines come from Django settings, which read the
environment; everything else is fixed here on purpose.
"""

from urllib.parse import urlsplit

from django.conf import settings
from kombu import Queue

from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE

# --- Broker: SQS ------------------------------------------------------------------
broker_url = settings.CELERY_BROKER_URL
_broker_host = urlsplit(broker_url).hostname

# Seconds a received message stays invisible before SQS hands it out again. Must exceed
# the longest a task can hold a message (time limit + countdown); check_redelivery_safety
# below refuses to start otherwise ('Visibility timeout'). Mirrored on queues created by
# infrastructure ('Predefined queues').
SQS_VISIBILITY_TIMEOUT = settings.MESSAGING_SQS_VISIBILITY_TIMEOUT

broker_transport_options = {
    # Seoul by default; every queue lives in one region.
    "region": settings.AWS_REGION,
    # kombu builds http:// for a URL with a host unless told otherwise: TLS for any real
    # endpoint, plain HTTP only for the local moto server on loopback ('Endpoint and TLS').
    "is_secure": _broker_host not in (None, "127.0.0.1", "localhost"),
    # Applied only to queues kombu creates itself (dev, tests): 'Predefined queues'.
    "visibility_timeout": SQS_VISIBILITY_TIMEOUT,
    # Long polling: an idle worker makes ~3 requests a minute, and a message that arrives
    # during the poll is returned at once. Also the delay before a message requeued by a
    # lost worker is visible again ('Long polling and the polling interval').
    "wait_time_seconds": settings.MESSAGING_SQS_WAIT_SECONDS,
    # The client-side pause after an empty poll or while the prefetch window is full. Empty
    # polls are 20 s long polls anyway, so this mostly bounds how soon a freed slot takes the
    # next chain step or chunk, already waiting in the queue (1 s made every hop of a chain wait
    # ~1 s; 0.1 s left a slot idle 50 ms on average between two chunks of a broadcast). A full
    # window is looked at again this often: a timer in the worker's main process, no SQS
    # request. Never 0: kombu would then spin at 100 % CPU with a full prefetch window (same
    # section).
    "polling_interval": 0.02,
    # botocore's timeouts for publish and ack calls (defaults: 60 s, tried 5 times). A web
    # request that publishes must answer well inside gunicorn's 30 s even when SQS hangs:
    # at most 2 tries × 5 s; the outbox publishes again later if that was not enough.
    "client-config": {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 2, "mode": "standard"}},
}
if settings.SQS_QUEUE_URL:
    # Production: queues (and their DLQ and VisibilityTimeout) come from infrastructure
    # code, so kombu never calls ListQueues/CreateQueue from web processes ('Predefined queues').
    broker_transport_options["predefined_queues"] = {
        BULK_QUEUE: {"url": settings.SQS_QUEUE_URL},
        INTERACTIVE_QUEUE: {"url": settings.SQS_INTERACTIVE_QUEUE_URL},
    }
# SQS is reached over HTTP calls; retry them at start-up instead of exiting
# ('Shutdown and connection loss').
broker_connection_retry_on_startup = True

# --- Queues -----------------------------------------------------------------------
# Bulk work (broadcast chunks) and interactive work (small sends) are separate queues,
# so one academy's 10,000-parent broadcast does not delay another's attendance alert.
task_default_queue = BULK_QUEUE
# A worker consumes both unless told otherwise (-Q); kombu polls them in turn.
task_queues = [Queue(INTERACTIVE_QUEUE), Queue(BULK_QUEUE)]

# --- Redelivery ('Acknowledgement and redelivery') ----------------------------------
# Ack after the task ran: a worker that dies mid-task loses nothing.
task_acks_late = True
# A killed pool child requeues its message instead of acking it as failed.
task_reject_on_worker_lost = True
# Business failures are recorded and rolled back by the errback; re-running them from
# a DLQ would only repeat them.
task_acks_on_failure = True
# A hard time limit is a failure like any other (the errback rolls back), not a requeue.
task_acks_on_timeout = True
# Well under the visibility timeout, so a running task is never handed out twice.
# A chunk's Solapi calls take at most 3 × SOLAPI_READ_TIMEOUT.
task_time_limit = settings.MESSAGING_TASK_TIME_LIMIT
task_soft_time_limit = int(task_time_limit * 0.8)
# Every prefetched message's visibility clock is running: hold one per process.
worker_prefetch_multiplier = 1
# On a broker connection error, cancel acks_late tasks rather than finish them unackable.
worker_cancel_long_running_tasks_on_connection_loss = True
# Let running tasks finish before a cold shutdown cancels them ('Shutdown and connection loss').
worker_soft_shutdown_timeout = 30
# No task waits for a countdown in worker memory: retries are published with SQS DelaySeconds
# (messaging/pipeline/backoff.py), so a backoff never runs into the visibility timeout
# ('Backoff through SQS DelaySeconds').
MAX_COUNTDOWN_SECONDS = 0

# --- Monitoring ('No remote control or events on SQS') -----------------------------
# SQS has no fanout: remote control and events published on it go nowhere.
worker_enable_remote_control = False
task_send_sent_event = False
# Events go to a separate Redis for Flower when one is configured (project/events_bridge.py).
events_broker_url = settings.CELERY_EVENTS_BROKER_URL
worker_send_task_events = bool(events_broker_url)
if events_broker_url:
    worker_consumer = "project.events_bridge:EventsBridgeConsumer"

# Logs go through Django's LOGGING (project/logging.py): key=value lines with phone
# numbers masked, from the worker as from the web.
worker_hijack_root_logger = False

# --- Results ('Results') ----------------------------------------------------------
# django-celery-results' "django-db", retrying writes through a dropped connection (project/results.py).
result_backend = "project.results:RetryingDatabaseBackend"
# Store task name, args, kwargs and worker on each row, for the admin.
result_extended = True
# Record STARTED, so a stuck task is visible.
task_track_started = True
# Results are for inspection. Old rows are deleted by messaging.prune_old_records (beat, below),
# in small batches after RETENTION_TASK_RESULT_DAYS; None keeps beat from also installing
# celery.backend_cleanup, which deletes every expired row in one statement ('Results').
result_expires = None
# Retry result writes through a dropped database connection: a result that cannot be stored
# fails the task after its work was done, and stops its chain.
result_backend_always_retry = True

# --- Serialization ------------------------------------------------------------------
# Tasks carry ids only; JSON keeps the queue readable and rules out pickle.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

timezone = settings.TIME_ZONE
enable_utc = True

# --- Beat ---------------------------------------------------------------------------
beat_schedule = {
    # The outbox relay: send requests whose publish failed (broker down), or whose dispatch was
    # lost with its queue, go out again.
    "redispatch-undispatched": {"task": "messaging.redispatch_undispatched", "schedule": 30.0},
    # Chunks that stopped moving (a lost chain) are driven again; all steps are idempotent. Never
    # one whose step still waits in its queue; each run probes the queues so that idle ones show
    # they have caught up (messaging/pipeline/queue_progress.py).
    "resume-stale-chunks": {"task": "messaging.resume_stale_chunks", "schedule": 60.0},
    # Ads deferred by the night window (21:00-08:00 KST) go out from 08:00, in waves.
    "release-deferred": {"task": "messaging.release_deferred", "schedule": 60.0},
    # Webhook report batches still waiting after MESSAGING_REPORT_REAPPLY_AFTER_SECONDS (their
    # apply's publish failed or its task was lost) get an apply published again
    # (messaging/reports/inbox.py).
    "reapply-waiting-reports": {"task": "messaging.reapply_waiting_reports", "schedule": 30.0},
    # Accepted messages without a report: poll Solapi, and expire them past the timeout.
    "reconcile-reports": {"task": "messaging.reconcile_reports", "schedule": 300.0},
    # Rows past their retention age that no step needs any more, a batch at a time, for at most
    # RETENTION_TIME_BUDGET_SECONDS a run (messaging/operations/retention.py, docs/retention.md).
    "prune-old-records": {"task": "messaging.prune_old_records", "schedule": 600.0},
    # Operator alerts: the breaker open, no worker heartbeat, a stuck chunk, unreported messages;
    # one ERROR line (and Sentry event) at each onset (messaging/operations/alerts.py, docs/alerts.md).
    "check-alerts": {"task": "messaging.check_alerts", "schedule": 60.0},
}

# Beat's housekeeping stores no results: thousands of rows a day saying "nothing to do" buried
# the pipeline's own tasks in Flower and the task results. A run that did something logs it
# (project/logging.py leaves those at INFO and quiets the idle ones). celery.backend_cleanup is
# the result-expiry task beat adds by itself whenever result_expires is set (it is not, above);
# messaging.queue_probe is the no-op the stale sweep publishes to each queue every minute
# (messaging/pipeline/queue_progress.py).
HOUSEKEEPING_TASKS = frozenset({entry["task"] for entry in beat_schedule.values()}
                               | {"celery.backend_cleanup", "messaging.queue_probe"})
task_annotations = {name: {"ignore_result": True} for name in sorted(HOUSEKEEPING_TASKS)}


def check_redelivery_safety(conf) -> None:
    """Refuse to start with settings that would hand one message to two workers.

    A message held longer than the visibility timeout is delivered again while the first
    copy still runs (docs/celery-on-sqs.md, 'Visibility timeout'). The longest hold is a
    task's hard time limit plus any countdown it waits for in worker memory.
    """
    from django.core.exceptions import ImproperlyConfigured

    visibility = conf.broker_transport_options.get("visibility_timeout", SQS_VISIBILITY_TIMEOUT)
    longest_hold = (conf.task_time_limit or 0) + MAX_COUNTDOWN_SECONDS
    problems = []
    if not conf.task_time_limit:
        problems.append("task_time_limit must be set, or a stuck task holds its message forever")
    if longest_hold >= visibility:
        problems.append(
            f"task_time_limit + countdown ({longest_hold}s) must be below the SQS "
            f"visibility timeout ({visibility}s)"
        )
    if conf.broker_transport_options.get("polling_interval", 1) <= 0:
        problems.append("polling_interval must be above 0 (kombu busy-loops otherwise)")
    if conf.worker_prefetch_multiplier != 1:
        problems.append("worker_prefetch_multiplier must be 1 on SQS")
    if not (conf.task_acks_late and conf.task_reject_on_worker_lost):
        problems.append("task_acks_late and task_reject_on_worker_lost must be on")
    if problems:
        raise ImproperlyConfigured("Unsafe Celery settings: " + "; ".join(problems))
