"""The worker keeps its database connections between tasks (project/worker_connections.py),
and a connection the server dropped in between is replaced, not failed on."""

import pytest
from django.db import connection

from harness.waiting import DEFAULT_TIMEOUT
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from project.celery import ping

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TASKS = 10


def _sessions_opened() -> int:
    """PostgreSQL sessions opened on the test database so far (any client)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _run_pings(count: int) -> None:
    # Each task's result is written to the database (django-db), so each task uses a connection.
    for _ in range(count):
        assert ping.apply_async(queue=INTERACTIVE_QUEUE).get(timeout=DEFAULT_TIMEOUT) == "pong"


def test_tasks_reuse_the_workers_connections(worker):
    _run_pings(2)
    before = _sessions_opened()

    _run_pings(TASKS)

    # At most one new session per pool process (--concurrency 2) that had not run a task yet;
    # Celery's own fixup opened one per task.
    assert _sessions_opened() - before <= 2


def test_a_connection_terminated_between_tasks_is_replaced(worker):
    _run_pings(2)
    logged_before = len(worker.log())
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        terminated = cursor.fetchone()[0]

    _run_pings(TASKS)

    assert terminated >= 1
    # The health check (CONN_HEALTH_CHECKS) found the dead connections before a task used them:
    # without it, the result writes failed on them first and were retried (project/results.py).
    logged = worker.log()[logged_before:]
    assert "OperationalError" not in logged and "Failed operation" not in logged, logged[-3000:]
