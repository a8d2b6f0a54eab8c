"""The health snapshot of this process, refreshed by a background thread.

The checks (project/health/checks.py) make SQS calls and database queries; under load the
broker answers in hundreds of milliseconds, and a load balancer's probe must not wait for it
(issue 18: /healthz took 1.6–6.2 s). So a daemon thread runs them every
HEALTH_REFRESH_SECONDS and keeps the latest report with the time it was taken; /healthz reads
that (project/health/views.py) and judges its age, so a refresher that hangs or died shows as
a stale snapshot instead of an old "ok".

One thread in each process of the `edge` (HEALTH_MONITOR), started by gunicorn's
post_worker_init hook (gunicorn.conf.py), after the fork. Each snapshot is also stored in the
database (HealthSnapshot), and a process without a refresher of its own (the `web`'s: their
SQS calls every few seconds competed with the sends, issue 18) answers from that one: a
snapshot no refresher keeps fresh ages and answers "down" there as well.
Tests call `refresh()` themselves, in the test's thread.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

from messaging.models import HealthSnapshot
from project import clock
from project.health.checks import run_checks

logger = logging.getLogger(__name__)

# The one HealthSnapshot row.
SHARED_ROW = 1


@dataclass(frozen=True)
class Snapshot:
    report: dict[str, Any]  # run_checks()'s answer
    checked_at: datetime  # when the checks began (the project clock)


class HealthMonitor:
    def __init__(self, refresh_seconds: float):
        self.refresh_seconds = refresh_seconds
        self._snapshot: Snapshot | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._starting = threading.Lock()

    def refresh(self) -> Snapshot:
        """Run every check now, keep the result, and store it for the processes without a
        refresher."""
        checked_at = clock.now()
        self._snapshot = Snapshot(report=run_checks(), checked_at=checked_at)
        HealthSnapshot.objects.update_or_create(id=SHARED_ROW, defaults={"report": self._snapshot.report,
                                                                         "checked_at": checked_at})
        return self._snapshot

    def current(self) -> Snapshot | None:
        """This process's own snapshot; without one (no refresher here), the stored one."""
        if self._snapshot is not None:
            return self._snapshot
        stored = HealthSnapshot.objects.filter(id=SHARED_ROW).values_list("report", "checked_at").first()
        return Snapshot(report=stored[0], checked_at=stored[1]) if stored else None

    def start(self) -> None:
        """Refresh in a daemon thread from now on (once per process; a second call does nothing)."""
        with self._starting:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                # As Django does around a request: drop a connection that broke or outlived
                # CONN_MAX_AGE, so a database restart is seen as the database, not as a dead thread.
                close_old_connections()
                try:
                    self.refresh()
                    close_old_connections()
                except Exception:  # the next round tries again; meanwhile the snapshot ages, and says so
                    logger.warning("health_refresh_failed", exc_info=True)
                self._stopping.wait(self.refresh_seconds)
        finally:
            connections.close_all()  # this thread's own connections


monitor = HealthMonitor(refresh_seconds=settings.HEALTH_REFRESH_SECONDS)
