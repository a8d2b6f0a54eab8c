"""Settings for a test session: the production settings module, read from an
environment made for this run (free loopback ports, a queue of its own).

The environment is set before project.settings reads it, so the test process and the
worker subprocesses it starts (which inherit os.environ) agree on every value.
"""

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.ports import free_port
from project.clock import next_kst

_session = os.environ.setdefault("TEST_SESSION", uuid.uuid4().hex[:8])
_sqs_port = os.environ.setdefault("TEST_SQS_PORT", str(free_port()))
_sandbox_port = os.environ.setdefault("TEST_SANDBOX_PORT", str(free_port()))
# prometheus_client's multiprocess files (project/metrics.py): a fresh folder per session, set
# before anything imports prometheus_client. This process writes to pytest/, each worker
# subprocess to a folder of its own beside it (harness/worker.py), and /metrics in this process
# adds them all up.
_metrics_root = Path(__file__).resolve().parent.parent / "var" / "test-metrics" / _session
(_metrics_root / "pytest").mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_metrics_root / "pytest"))
os.environ.setdefault("METRICS_SCRAPE_DIRS", str(_metrics_root / "*"))


def _offset_for(wanted: str) -> float:
    """TEST_CLOCK as seconds from now: "21:00" is the next 21:00 in Korea, "+365d" a year
    ahead (make test-clocks)."""
    real_now = datetime.now(UTC)
    if wanted.startswith("+") and wanted.endswith("d"):
        return timedelta(days=int(wanted[1:-1])).total_seconds()
    hour, minute = wanted.split(":")
    return (next_kst(int(hour), int(minute), after=real_now) - real_now).total_seconds()


# The whole session (this process and the worker subprocesses, which inherit the
# environment) runs at TEST_CLOCK's time, through project/clock.py's offset.
if os.environ.get("TEST_CLOCK"):
    os.environ["CLOCK_OFFSET_SECONDS"] = str(_offset_for(os.environ["TEST_CLOCK"]))

os.environ.update(
    {
        "DEBUG": "1",
        "CELERY_BROKER_URL": f"sqs://test:test@127.0.0.1:{_sqs_port}",
        "MESSAGING_SQS_QUEUE_NAME": f"test-{_session}",
        "MESSAGING_SQS_WAIT_SECONDS": "1",
        "SOLAPI_BASE_URL": f"http://127.0.0.1:{_sandbox_port}",
        # Short enough that timeouts and backoffs fit in a test, long enough for a busy CI box.
        "SOLAPI_READ_TIMEOUT": "3",
        "MESSAGING_RETRY_BASE_SECONDS": "1",
        "MESSAGING_RETRY_MAX_SECONDS": "4",
        "MESSAGING_BREAKER_PROBE_SECONDS": "2",
        # A killed worker's messages come back after the visibility timeout: keep it short,
        # and the task time limit under it (the start-up check insists).
        "MESSAGING_SQS_VISIBILITY_TIMEOUT": "25",
        "MESSAGING_TASK_TIME_LIMIT": "20",
        "MESSAGING_WORKER_HEARTBEAT_SECONDS": "1",
        "LOG_LEVEL": "INFO",
        # Tests (the fuzz pass above all) make many requests with one token; the throttle
        # tests set their own rates (tests/api/test_throttling.py).
        "API_THROTTLE_TOKEN_RATE": "1000000/minute",
        "API_THROTTLE_ACADEMY_RATE": "1000000/minute",
        # A test's send answers the backlog it just made, not one a test before it cached
        # (tests/api/test_backpressure.py turns the cache on where it is the subject).
        "MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS": "0",
    }
)

from project.settings import *  # noqa: E402,F403

# The SQLite test database and the worker logs live here.
(BASE_DIR / "var" / "test-logs").mkdir(parents=True, exist_ok=True)  # noqa: F405

# A database of this session's own: two test runs on one machine (a developer's and CI's)
# must not flush each other's tables under a running worker. On SQLite it is a file, not the
# default in-memory database, because worker subprocesses share it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{_session}.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_academy_{_session}"}  # noqa: F405
