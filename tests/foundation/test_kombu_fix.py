"""kombu 5.7.0 kills the worker on one SQS 5xx (docs/celery-on-sqs.md, "The kombu 5.7.0
receive crash"). A fault-injecting proxy between a real worker and the local SQS answers
ReceiveMessage with 503s: with project/kombu_fixes.py the worker survives and runs the
next task; without it, the worker dies or stops polling."""

import sys

import celery.exceptions
import kombu
import pytest

from harness.proxy import FaultProxy
from harness.worker import WorkerProcess
from messaging.pipeline.queues import BULK_QUEUE
from project import kombu_fixes
from project.celery import ping

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Starts the same worker with kombu claiming another version, so the fix stays off:
# this is how the test shows it can fail.
UNFIXED_BOOTSTRAP = "import kombu; kombu.__version__ = 'unfixed'; from celery.__main__ import main; main()"


@pytest.fixture
def proxy(local_sqs):
    proxy = FaultProxy(upstream_port=local_sqs.port).start()
    yield proxy
    proxy.stop()


def test_the_fix_applies_only_to_the_affected_kombu_version(monkeypatch):
    assert kombu.__version__ in kombu_fixes.AFFECTED_KOMBU_VERSIONS
    assert kombu_fixes.apply() is True
    monkeypatch.setattr(kombu, "__version__", "5.7.1")
    assert kombu_fixes.apply() is False


def test_worker_survives_sqs_503s_on_receive_and_runs_the_next_task(start_worker, proxy):
    worker = start_worker("behind-proxy", env={"CELERY_BROKER_URL": f"sqs://test:test@127.0.0.1:{proxy.port}"},
                          extra_args=("-Q", BULK_QUEUE))
    proxy.fail_next("ReceiveMessage", times=3, status=503)

    worker.wait_for_log("sqs_receive_failed", timeout=30)
    result = ping.delay()

    assert result.get(timeout=30) == "pong"
    assert proxy.injected == 3
    assert worker.alive


def test_without_the_fix_one_503_kills_the_worker_or_its_queue(start_worker, proxy, monkeypatch):
    monkeypatch.setattr(
        WorkerProcess, "command", lambda self: [sys.executable, "-c", UNFIXED_BOOTSTRAP, *_celery_args(self)]
    )
    worker = start_worker("unfixed", env={"CELERY_BROKER_URL": f"sqs://test:test@127.0.0.1:{proxy.port}"})
    proxy.fail_next("ReceiveMessage", times=1, status=503)

    worker.wait_for_log("AttributeError", timeout=30)
    # Depending on where kombu meets the error, the worker exits ("Unrecoverable error") or
    # the error is swallowed by a timer and the queue is never polled again. Either way the
    # next task does not run.
    with pytest.raises(celery.exceptions.TimeoutError):
        ping.delay().get(timeout=15)


def _celery_args(worker: WorkerProcess) -> list[str]:
    return ["-A", "project", "worker", "--loglevel", "INFO", "--concurrency", "1", "--hostname", f"{worker.name}@%h",
            "-Q", BULK_QUEUE]
