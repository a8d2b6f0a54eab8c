"""kombu 5.7.0 kills the worker on one SQS 5xx, and on a QueueDoesNotExist (project/kombu_fixes.py;
docs/celery-on-sqs.md, "The kombu 5.7.0 receive crash").

A fault-injecting proxy between a real worker and the local SQS answers ReceiveMessage with
503s or 400 QueueDoesNotExist: with the fix the worker survives and runs the next task; without
it, the worker dies or stops polling. Then the real thing: the local SQS is restarted empty
under a running worker, which creates its queues again (or, with predefined queue URLs, waits
for them) and resumes by itself; a publish from a process that cached the old queue URL
creates the queue again instead of failing.
"""

import re
import sys
import uuid

import celery.exceptions
import kombu
import kombu.exceptions
import pytest
from kombu.transport.SQS import Channel

from harness.proxy import FaultProxy
from harness.worker import WorkerProcess
from messaging.pipeline.queues import ALL_QUEUES, BULK_QUEUE
from project import kombu_fixes
from project.celery import ping
from tests.pipeline.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A queue of these tests' own: the session's worker, if an earlier test started it, must not
# run the pings (it would make the unfixed worker look alive).
QUEUE = f"{BULK_QUEUE}-kombu-fix"

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
    worker = _behind(proxy, start_worker, "behind-proxy", extra_args=("-Q", QUEUE))
    proxy.fail_next("ReceiveMessage", times=3, status=503)

    worker.wait_for_log("sqs_receive_failed")
    result = ping.apply_async(queue=QUEUE)

    assert result.get(timeout=30) == "pong"
    assert proxy.injected == 3
    assert worker.alive


# A control (the worker dies without the fix): make drill runs it.
@pytest.mark.drill
def test_without_the_fix_one_503_kills_the_worker_or_its_queue(start_worker, proxy, monkeypatch):
    monkeypatch.setattr(
        WorkerProcess, "command", lambda self: [sys.executable, "-c", UNFIXED_BOOTSTRAP, *_celery_args(self)]
    )
    worker = _behind(proxy, start_worker, "unfixed")
    proxy.fail_next("ReceiveMessage", times=1, status=503)

    worker.wait_for_log("AttributeError")
    # Depending on where kombu meets the error, the worker exits ("Unrecoverable error") or
    # the error is swallowed by a timer and the queue is never polled again. Either way the
    # next task does not run.
    with pytest.raises(celery.exceptions.TimeoutError):
        ping.apply_async(queue=QUEUE).get(timeout=15)


def test_worker_survives_queue_does_not_exist_on_receive_and_logs_it_once(start_worker, proxy):
    worker = _behind(proxy, start_worker, "behind-proxy", extra_args=("-Q", QUEUE))
    proxy.fail_next("ReceiveMessage", times=5, status=400)

    worker.wait_for_log("sqs_receive_resumed", timeout=60)
    result = ping.apply_async(queue=QUEUE)

    assert result.get(timeout=30) == "pong"
    assert proxy.injected == 5
    assert worker.alive
    # Five refusals in a row are one log line (one per RECEIVE_FAILURE_LOG_SECONDS), not five,
    # and the queue's cached URL was dropped so that it is looked up (and created) again.
    assert _lines(worker, "sqs_receive_failed") == 1, worker.log()
    assert "code=QueueDoesNotExist" in worker.log()
    assert _lines(worker, "sqs_queue_missing") >= 1
    assert re.search(r"sqs_receive_resumed queue=\S+ failures=5 ", worker.log()), worker.log()


def test_other_4xx_on_receive_is_waited_out_too(start_worker, proxy):
    worker = _behind(proxy, start_worker, "behind-proxy", extra_args=("-Q", QUEUE))
    proxy.fail_next("ReceiveMessage", times=3, status=403, code="AccessDenied")

    worker.wait_for_log("sqs_receive_resumed", timeout=60)

    assert ping.apply_async(queue=QUEUE).get(timeout=30) == "pong"
    assert "http=403 code=AccessDenied" in worker.log()
    assert _lines(worker, "sqs_queue_missing") == 0  # the URL is fine: nothing to look up again


# A control (the worker dies without the fix): make drill runs it.
@pytest.mark.drill
def test_without_the_fix_queue_does_not_exist_kills_the_worker(start_worker, proxy, monkeypatch):
    monkeypatch.setattr(
        WorkerProcess, "command", lambda self: [sys.executable, "-c", UNFIXED_BOOTSTRAP, *_celery_args(self)]
    )
    worker = _behind(proxy, start_worker, "unfixed")
    proxy.fail_next("ReceiveMessage", times=1, status=400)

    worker.wait_for_log("QueueDoesNotExist", timeout=30)
    with pytest.raises(celery.exceptions.TimeoutError):
        ping.apply_async(queue=QUEUE).get(timeout=15)
    # As with the 503: the worker exits, or a timer swallows the error and the queue is never
    # polled again.
    log = worker.log()
    assert "Unrecoverable error" in log or "Error in timer" in log, log[-3000:]


def test_worker_resumes_by_itself_after_sqs_restarts_without_its_queues(start_worker, local_sqs):
    # A queue of this worker's own proves that *it* resumed (the session's worker may be running
    # on the default queues); it consumes the default queues too, so it must survive losing them.
    own = f"{BULK_QUEUE}-lost"
    worker = start_worker("lost-queues", extra_args=("-Q", ",".join([*ALL_QUEUES, own])))
    assert ping.apply_async(queue=own).get(timeout=30) == "pong"

    local_sqs.restart_empty(down_for=2)

    # This test process cached the queue's URL when it published above: the publish finds the
    # queue gone and creates it again; the worker, polling meanwhile, may have done so first.
    assert ping.apply_async(queue=own).get(timeout=60) == "pong"
    assert worker.alive
    # Nobody publishes to the default queues here: the worker creates them again as it polls them.
    wait_until(lambda: set(ALL_QUEUES) <= set(local_sqs.queue_names()), timeout=30,
               what="the worker to create the queues it consumes again")
    log = worker.log()
    assert "sqs_receive_resumed" in log
    assert "Unrecoverable error" not in log
    # A 2 s outage and the missing queues: a line per queue and reason, not ten a second.
    assert _lines(worker, "sqs_receive_failed") <= 3 * 3, log


def test_with_predefined_queue_urls_the_worker_waits_for_the_queue(start_worker, local_sqs):
    name = f"{BULK_QUEUE}-predefined-{uuid.uuid4().hex[:6]}"
    urls = _create_queues(local_sqs, name, f"{name}-interactive")
    worker = start_worker("predefined", env={
        "MESSAGING_SQS_QUEUE_NAME": name, "SQS_QUEUE_URL": urls[name],
        "SQS_INTERACTIVE_QUEUE_URL": urls[f"{name}-interactive"]})
    assert ping.apply_async(queue=name).get(timeout=30) == "pong"

    local_sqs.restart_empty()
    worker.wait_for_log("code=QueueDoesNotExist", timeout=30)
    worker.wait_for_log("sqs_receive_failed queue=" + name, timeout=30)
    # kombu may not create predefined queues: infrastructure does, with their own settings.
    assert name not in local_sqs.queue_names()
    assert _create_queues(local_sqs, name, f"{name}-interactive") == urls

    assert ping.apply_async(queue=name).get(timeout=60) == "pong"
    assert worker.alive
    assert "sqs_queue_missing" not in worker.log()


def test_a_publish_to_a_queue_that_vanished_creates_it_again(local_sqs, monkeypatch):
    # A long-lived publisher (web, beat, a worker's next chain step) holds the queue's URL. Celery
    # declares a queue on a connection's first publish to it (kombu asks the queue's size), and
    # then only puts: both paths meet the vanished queue.
    name = f"{BULK_QUEUE}-vanished-{uuid.uuid4().hex[:6]}"
    client = local_sqs.client()
    with _connection(local_sqs) as connection:
        producer = connection.Producer()
        queue = kombu.Queue(name)

        def publish(n: int) -> None:
            producer.publish({"n": n}, routing_key=name, declare=[queue])

        def lose_the_queue() -> None:
            client.delete_queue(QueueUrl=client.get_queue_url(QueueName=name)["QueueUrl"])

        publish(1)
        lose_the_queue()
        with monkeypatch.context() as unfixed:
            unfixed.setattr(Channel, "_put", kombu_fixes._originals["Channel._put"])
            with pytest.raises(Exception, match=r"NonExistentQueue|QueueDoesNotExist"):
                publish(2)
        publish(3)  # declared already on this connection: only the put
        lose_the_queue()
        with monkeypatch.context() as unfixed:
            unfixed.setattr(Channel, "_size", kombu_fixes._originals["Channel._size"])
            with pytest.raises(Exception, match=r"NonExistentQueue|QueueDoesNotExist"):
                connection.SimpleQueue(name)  # a declaration
        connection.SimpleQueue(name).put({"n": 4})

    url = client.get_queue_url(QueueName=name)["QueueUrl"]
    messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1, "the queue was created again and holds the publish made after"
    client.delete_queue(QueueUrl=url)


def test_a_publish_to_a_missing_predefined_queue_is_a_broker_fault(local_sqs):
    # kombu may not create a predefined queue; the outbox and the rollback errback treat
    # OperationalError as "broker unreachable" (the relay publishes again later).
    name = f"{BULK_QUEUE}-never-created"
    predefined = {name: {"url": f"http://{local_sqs.endpoint}/123456789012/{name}"}}
    with (_connection(local_sqs, predefined_queues=predefined) as connection,
          pytest.raises(kombu.exceptions.OperationalError, match="does not exist")):
        connection.SimpleQueue(name).put({"n": 1})
    assert name not in local_sqs.queue_names()


def _connection(local_sqs, **options) -> kombu.Connection:
    return kombu.Connection(local_sqs.broker_url(), transport_options={
        "region": local_sqs.region, "is_secure": False, **options})


def _behind(proxy: FaultProxy, start_worker, name: str, **kwargs) -> WorkerProcess:
    """A worker that reaches SQS through the fault proxy."""
    return start_worker(name, env={"CELERY_BROKER_URL": f"sqs://test:test@127.0.0.1:{proxy.port}"}, **kwargs)


def _create_queues(local_sqs, *names: str) -> dict[str, str]:
    client = local_sqs.client()
    return {name: client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "25"})["QueueUrl"]
            for name in names}


def _lines(worker: WorkerProcess, text: str) -> int:
    return sum(text in line for line in worker.log().splitlines())


def _celery_args(worker: WorkerProcess) -> list[str]:
    return ["-A", "project", "worker", "--loglevel", "INFO", "--concurrency", "1", "--hostname", f"{worker.name}@%h",
            "-Q", QUEUE]
