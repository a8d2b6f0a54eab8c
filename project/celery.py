"""The Celery app: `celery -A project worker|beat|flower`."""

import logging
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from project import kombu_fixes

kombu_fixes.apply()

# events=: the worker's event dispatcher survives a Redis outage (project/events_bridge.py).
# fixups=: Celery's Django integration, but database connections kept between tasks
# (CONN_MAX_AGE, with health checks) instead of closed after each (project/worker_connections.py).
app = Celery("project", events="project.events_bridge:BridgeAwareEvents",
             fixups=["project.worker_connections:fixup"])
app.config_from_object("celeryconfig")
# The pipeline's tasks live by stage (messaging/pipeline/tasks.py), not in an app's tasks.py;
# housekeeping (retention) in messaging/operations/tasks.py.
app.autodiscover_tasks(["messaging.pipeline", "messaging.operations"])
# Heartbeat rows for /healthz: `celery inspect ping` cannot work on SQS.
app.steps["worker"].add("messaging.operations.liveness:WorkerLiveness")
# With METRICS_WORKER_PORT: the pool's metrics over HTTP, for a worker without a web beside it.
app.steps["worker"].add("project.metrics:WorkerMetricsServer")


logger = logging.getLogger(__name__)


def warm_up_publishing(connections: int) -> None:
    """Set up `connections` of this process's pooled broker connections (each its own SQS client
    and queue URLs) and the task modules the publish labels read (messaging/pipeline/task_labels.py),
    so that the first requests that publish do not pay for it. Measured on this machine: a fresh
    process's first publish took ~0.5 s, four at once ~1.4 s each, and under the everyday load the
    edge's first webhook POSTs waited 3.5-4.9 s for it; once set up, a publish takes ~10-20 ms.
    Runs in a thread of its own (gunicorn.conf.py, post_worker_init); never raises: a broker that
    cannot be reached now is the requests' to meet, as it would be without this."""
    from kombu import Queue

    from messaging.pipeline import task_labels
    from messaging.pipeline.queues import ALL_QUEUES

    try:
        task_labels.labels_for("messaging.warm_up", (), {})  # imports the task modules; no query
        held = [app.producer_pool.acquire(block=True) for _ in range(connections)]
        try:
            for producer in held:
                for name in ALL_QUEUES:
                    producer.maybe_declare(Queue(name))
        finally:
            for producer in held:
                producer.release()
    except Exception as exc:  # kombu and botocore raise many types for "broker unreachable"
        logger.info("publish_warm_up_failed error=%s", type(exc).__name__)
        return
    logger.info("publish_warm_up_done connections=%s", connections)


@worker_init.connect
def _fresh_metrics_dir(**_kwargs) -> None:
    """In the worker's main process, before the pool forks: its metrics directory starts without
    the files of processes that are gone
    (project/metrics_files.py). Beat and shells record nothing worth scraping."""
    from project.metrics_files import reset_multiproc_dir

    reset_multiproc_dir()


@worker_init.connect
def _select_queues(sender, **_kwargs) -> None:
    """MESSAGING_WORKER_QUEUES: the queues this worker consumes (all, bulk or interactive), so
    the Procfile's two workers need no queue names on their command line. Runs after -Q was
    applied; `all` leaves Celery's selection (every queue, or -Q's) as it is."""
    from django.conf import settings

    from messaging.pipeline.queues import WorkerQueues, consumed_queues

    role = settings.MESSAGING_WORKER_QUEUES
    queues = consumed_queues(role)
    if role != WorkerQueues.ALL:
        sender.app.amqp.queues.select(queues)


@worker_process_init.connect
def _warm_up(**_kwargs) -> None:
    """Each pool process builds its Solapi client and opens its publisher when it starts,
    not inside its first chunk (project/worker_warmup.py)."""
    from project.worker_warmup import warm_up

    warm_up()


@app.on_after_finalize.connect
def _refuse_unsafe_settings(sender: Celery, **_kwargs) -> None:
    from celeryconfig import check_redelivery_safety

    check_redelivery_safety(sender.conf)


@app.task(name="project.ping")
def ping() -> str:
    """A no-op round trip through the broker, the worker and the result backend."""
    return "pong"
