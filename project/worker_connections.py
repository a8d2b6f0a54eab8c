"""The worker's database connections, kept between tasks as Django keeps them between requests.

Celery's Django fixup (celery/fixups/django.py, Celery 5.7.0) closes every database connection
before and after each task, whatever CONN_MAX_AGE says: each task then opens a new PostgreSQL
session (the everyday load of issue 18 opened thousands). Here it does what Django's request
cycle does instead (`close_old_connections`): before and after each task, a connection is closed
only when it is unusable after an error, left with the wrong autocommit state (a transaction a
task did not finish), or older than CONN_MAX_AGE; and with CONN_HEALTH_CHECKS the next task pings
it before its first query, so one the server dropped in between is replaced, not failed on.

A connection that breaks during a task is still closed by the pipeline's infrastructure retry
(messaging/pipeline/policies.py) and by the result backend (project/results.py). A pool process
still closes what it inherited from its parent, as Celery's fixup does.
"""

from celery import Celery
from celery.fixups.django import DjangoFixup, DjangoWorkerFixup


class ConnectionKeepingWorkerFixup(DjangoWorkerFixup):
    def close_database(self, **kwargs) -> None:
        for connection in self._db.connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()


class ConnectionKeepingFixup(DjangoFixup):
    # Made when the worker starts (the configuration is read by then), as Celery's own is.
    @property
    def worker_fixup(self) -> DjangoWorkerFixup:
        if self._worker_fixup is None:
            self._worker_fixup = ConnectionKeepingWorkerFixup(self.app)
        return self._worker_fixup

    @worker_fixup.setter
    def worker_fixup(self, value: DjangoWorkerFixup) -> None:
        self._worker_fixup = value


def fixup(app: Celery) -> DjangoFixup:
    """Celery's Django fixup with the per-task connection rule above (`Celery(fixups=…)`).
    project/celery.py sets DJANGO_SETTINGS_MODULE before the app exists, so Django is always there."""
    return ConnectionKeepingFixup(app).install()
