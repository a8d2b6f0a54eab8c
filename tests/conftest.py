"""Fixtures with real parts: the local SQS (moto), the Solapi sandbox over HTTP, and
`celery -A project worker` subprocesses sharing the test database.

Integration tests use the `transactional_db` so that the worker, a separate process,
sees what the test wrote; the database is PostgreSQL in CI (DATABASE_URL) and a
SQLite file otherwise.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from billing.audit import audit_accounts
from harness.academies import SENDER
from harness.log_audit import leaks
from harness.sqs import LocalSQS
from harness.worker import WorkerProcess, share_with_this_process
from messaging.pipeline import queues
from messaging.pipeline.queues import ALL_QUEUES
from project import clock as project_clock

# One folder per test session: two runs on one machine must not write into the same logs.
LOG_DIR = Path(settings.BASE_DIR) / "var" / "test-logs" / os.environ["TEST_SESSION"]


def pytest_collection_modifyitems(config, items):
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL (row locks, COPY); set DATABASE_URL")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)
    # Long drills keep `make test` near 10 minutes on 2 cores; each has a shorter form in the
    # suite, and `make drill` runs them all (docs/testing.md).
    markexpr = config.getoption("markexpr") or ""
    if "drill" not in markexpr or "not drill" in markexpr:
        skip = pytest.mark.skip(reason="a long drill: make drill runs it (pytest -m drill)")
        for item in items:
            if "drill" in item.keywords:
                item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    """Every log the session's processes wrote (workers, the local SQS, Flower, gunicorn)
    is read once more at the end: a whole phone number or a secret in any of them fails the
    run, wherever it came from."""
    if not LOG_DIR.exists():
        return
    found = leaks(sorted(p for p in LOG_DIR.iterdir() if p.is_file()), _secrets())
    if found:
        session.config.get_terminal_writer().line(
            f"\nLogs leak personal data or secrets ({len(found)}):\n" + "\n".join(found[:20]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _secrets() -> list[str]:
    return [settings.SOLAPI_WEBHOOK_SECRET, settings.SOLAPI_API_SECRET, settings.SECRET_KEY]


@pytest.fixture(autouse=True)
def clock():
    """The project clock (project/clock.py): `clock.freeze(moment)`, `clock.set(moment)`,
    `clock.next_kst(22, 30)`. Whatever a test does to it ends with the test; the session's
    offset (TEST_CLOCK, make test-clocks) stays, shared with the worker subprocesses."""
    yield project_clock
    project_clock.reset()


@pytest.fixture(autouse=True)
def ledger_stays_consistent(request):
    """billing_audit is clean after every test that used the database, so after the whole
    suite too. Tests that corrupt the ledger on purpose say so with `corrupts_ledger`."""
    uses_db = request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames)
    if not uses_db or request.node.get_closest_marker("corrupts_ledger"):
        yield
        return
    # Set up after the database fixture, so this check runs before its rollback or flush.
    request.getfixturevalue("_django_db_helper")
    yield
    problems = audit_accounts()
    assert problems == [], f"billing_audit after {request.node.name}: {problems}"


@pytest.fixture(scope="session")
def local_sqs():
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    sqs = LocalSQS(port=int(os.environ["TEST_SQS_PORT"]), log_path=LOG_DIR / "sqs.log").start()
    yield sqs
    sqs.stop()


@pytest.fixture
def broker(local_sqs):
    """The local SQS, its request counts reset, and the tasks this test published drained
    afterwards: a worker later in the session must not run a dispatch for rows that are gone."""
    local_sqs.reset_counts()
    yield local_sqs
    local_sqs.drain(*ALL_QUEUES)


@pytest.fixture
def own_queues(monkeypatch, broker):
    """`own_queues(name)`: a bulk queue and its interactive twin of this test's own, made this
    process's BULK_QUEUE and INTERACTIVE_QUEUE where a dispatch is routed (queues.dispatch_queue,
    lanes_dispatched_on), so that no session worker takes what the test publishes. A worker
    started with MESSAGING_SQS_QUEUE_NAME=bulk consumes the same two. Both drained afterwards.
    Only what reads `queues.BULK_QUEUE` and `queues.INTERACTIVE_QUEUE` when called follows them
    (the lane of a new send, its dispatch's queue); modules that imported the names (express,
    pacing, message_rows, tasks) still take only the real interactive queue for small sends."""
    made: list[str] = []

    def own(name: str) -> tuple[str, str]:
        bulk = f"{queues.BULK_QUEUE}-{name}"
        pair = (bulk, f"{bulk}-interactive")
        monkeypatch.setattr(queues, "BULK_QUEUE", pair[0])
        monkeypatch.setattr(queues, "INTERACTIVE_QUEUE", pair[1])
        made.extend(pair)
        return pair

    yield own
    broker.drain(*made)


@pytest.fixture(scope="session")
def sandbox_server():
    from harness.solapi_sandbox import SolapiSandbox

    sandbox = SolapiSandbox(
        api_key=settings.SOLAPI_API_KEY,
        api_secret=settings.SOLAPI_API_SECRET,
        senders=[SENDER],
        port=int(os.environ["TEST_SANDBOX_PORT"]),
    )
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The session's sandbox, with faults, records, rules and registered senders of earlier
    tests forgotten (reset() keeps senders: a test registering one must not make another's
    unregistered sender pass)."""
    _forget(sandbox_server)
    yield sandbox_server
    _forget(sandbox_server)


def _forget(sandbox) -> None:
    sandbox.reset()
    sandbox.set_credentials(api_key=settings.SOLAPI_API_KEY, api_secret=settings.SOLAPI_API_SECRET, auth_status=403)
    for number in set(sandbox.senders) - {SENDER}:
        sandbox.unregister_sender(number)
    sandbox.register_sender(SENDER)


@pytest.fixture
def reporting_sandbox(sandbox, live_server):
    """The sandbox POSTing its delivery reports to the running app's webhook."""
    sandbox.set_webhook_url(f"{live_server.url}/api/v1/solapi/reports/{settings.SOLAPI_WEBHOOK_SECRET}/")
    sandbox.set_report_delay(0.2)
    yield sandbox
    sandbox.set_webhook_url(None)


def database_url() -> str:
    """The test database as a DATABASE_URL, for worker subprocesses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def worker_env(django_db_setup, local_sqs) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "project.settings", "DATABASE_URL": database_url()}


@pytest.fixture(scope="session")
def session_worker(worker_env):
    process = WorkerProcess(env=worker_env, log_path=LOG_DIR / "worker.log", name="session").start()
    yield process
    process.stop()


@pytest.fixture
def worker(session_worker, local_sqs):
    """The session's worker, with the queues emptied first: a task left by an earlier test
    (whose rows are gone) must not run against this test's rows. Tests that kill workers
    start their own (start_worker)."""
    local_sqs.drain(*ALL_QUEUES)
    return session_worker


@pytest.fixture
def start_worker(worker_env, request, settings):
    """Start extra workers with their own environment; all are stopped after the test. The
    settings this process reads too when it accepts a send (harness.worker.API_SIDE_SETTINGS:
    the chunk size) are set here as well, for the test."""
    started = []

    def start(name: str = "extra", env: dict | None = None, **kwargs) -> WorkerProcess:
        share_with_this_process(env or {}, settings)
        log = LOG_DIR / f"{request.node.name[:60]}-{name}.log"
        process = WorkerProcess(env={**worker_env, **(env or {})}, log_path=log, name=name, **kwargs)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
