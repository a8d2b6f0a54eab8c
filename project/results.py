"""The result backend: django-celery-results' database backend, retrying through a dropped
connection with psycopg 3 too.

A task's result is stored after its body has run and before the next chain step is
published (celery/app/trace.py). If that write fails, Celery counts the task as failed: the
chain stops there (the errback leaves the chunk alone, as for any infrastructure fault, and
it waits for beat's stale-chunk sweep). django-celery-results retries the write only on
InterfaceError, which psycopg 2 raises for a closed connection; psycopg 3 raises
OperationalError ("the connection is closed", "terminating connection due to administrator
command"). Both are retried here, on a new connection (docs/exactly-once.md, "A dropped
database connection").
"""

from django.db import InterfaceError, OperationalError, connection
from django_celery_results.backends.database import DatabaseBackend


class RetryingDatabaseBackend(DatabaseBackend):
    def exception_safe_to_retry(self, exc: Exception) -> bool:
        if isinstance(exc, InterfaceError | OperationalError):
            # Django does not reconnect a broken connection by itself; the next query opens a new one.
            connection.close()
            return True
        return super().exception_safe_to_retry(exc)
