"""The Celery app: `celery -A project worker|beat|flower`."""

import os

from celery import Celery
from celery.signals import worker_init

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


@app.on_after_finalize.connect
def _refuse_unsafe_settings(sender: Celery, **_kwargs) -> None:
    from celeryconfig import check_redelivery_safety

    check_redelivery_safety(sender.conf)


@app.task(name="project.ping")
def ping() -> str:
    """A no-op round trip through the broker, the worker and the result backend."""
    return "pong"
