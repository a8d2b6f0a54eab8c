"""Worker liveness that works on SQS: a worker bootstep that writes a heartbeat row.

`celery inspect ping` needs a fanout exchange, which SQS does not have
(docs/celery-on-sqs.md, "No remote control or events on SQS"), so /healthz and the
admin read these rows instead.
"""

import logging
import os
from datetime import datetime, timedelta

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections
from django.db.models import QuerySet

from messaging.models import WorkerHeartbeat
from messaging.pipeline.queues import ALL_QUEUES, role_of, roles_consuming
from project import clock

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = settings.MESSAGING_WORKER_HEARTBEAT_SECONDS
# A worker whose last heartbeat is older than this is reported as not alive.
ALIVE_WITHIN_SECONDS = 3 * HEARTBEAT_SECONDS


def live_workers(now: datetime) -> QuerySet[WorkerHeartbeat]:
    """Workers running and heard from within ALIVE_WITHIN_SECONDS of `now`."""
    return WorkerHeartbeat.objects.filter(stopped__isnull=True,
                                          last_seen__gte=now - timedelta(seconds=ALIVE_WITHIN_SECONDS))


def queues_without_live_worker(now: datetime) -> list[str]:
    """The queues no live worker consumes: what is published there waits (the Procfile runs a
    worker for each; one missing stops either the broadcasts or the small sends)."""
    roles = set(live_workers(now).values_list("queues", flat=True))
    return [queue for queue in ALL_QUEUES if not roles & set(roles_consuming(queue))]


def _role(worker) -> str:
    """What the worker consumes, from the queues Celery selected (-Q, MESSAGING_WORKER_QUEUES)."""
    selected = worker.app.amqp.queues.consume_from
    return role_of(None if selected is None else set(selected))


class WorkerLiveness(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.started = clock.now()

    def start(self, worker):
        self._beat(worker)
        self.tref = worker.timer.call_repeatedly(HEARTBEAT_SECONDS, self._beat, (worker,), priority=10)

    def stop(self, worker):
        if self.tref:
            self.tref.cancel()
        self._write(worker, stopped=clock.now())

    def _beat(self, worker) -> None:
        self._write(worker, stopped=None)

    def _write(self, worker, *, stopped) -> None:
        try:
            close_old_connections()
            WorkerHeartbeat.objects.update_or_create(
                hostname=worker.hostname,
                defaults={"pid": os.getpid(), "started": self.started, "last_seen": clock.now(), "stopped": stopped,
                          "concurrency": worker.concurrency or 1, "queues": _role(worker)},
            )
        except Exception:
            # A missed heartbeat must never take the worker down; /healthz will notice.
            logger.warning("worker_heartbeat_failed hostname=%s", worker.hostname, exc_info=True)
