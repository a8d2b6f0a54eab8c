"""A pool process builds its Solapi client and sets up its publisher when it starts
(project/worker_warmup.py), and an unreachable SQS does not hold its start-up."""

import time
from types import SimpleNamespace

import kombu.exceptions
import pytest

import project.celery
import project.startup_objects
from harness.waiting import DEFAULT_TIMEOUT
from messaging.pipeline.queues import BULK_QUEUE
from messaging.solapi import client as client_module
from project.celery import app, ping
from project.worker_warmup import warm_up

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# What a publish to a queue nobody has looked up yet asks SQS first.
LOOKUPS = {"ListQueues", "GetQueueUrl", "GetQueueAttributes", "CreateQueue"}


@pytest.fixture(autouse=True)
def frozen(monkeypatch) -> list[bool]:
    """The warm-up's gc.freeze, recorded instead of done: in this process it would keep every
    object of the test session out of garbage collection."""
    calls: list[bool] = []
    monkeypatch.setattr(project.startup_objects, "freeze_startup_objects", lambda: calls.append(True))
    return calls


def test_after_the_warm_up_the_first_publish_is_one_send_and_the_client_is_built(broker, monkeypatch, frozen):
    monkeypatch.setattr(client_module, "_clients", {})

    warm_up().join(DEFAULT_TIMEOUT)
    broker.reset_counts()
    ping.apply_async(queue=BULK_QUEUE)

    assert client_module._clients, "the Solapi client was not built"
    assert frozen == [True], "what start-up made was not frozen"
    counts = broker.request_counts()
    assert counts["SendMessage"] == 1
    assert not LOOKUPS & {operation for operation, n in counts.items() if n}, counts


def test_a_publisher_that_cannot_connect_does_not_hold_the_start_up(monkeypatch):
    """What an unreachable SQS does to the publisher (botocore's connect timeouts and retries,
    seconds): its pool hands out a producer that fails after a while."""
    logged: list[str] = []
    # Read off the module's logger itself: the session's logging set-up may route records elsewhere.
    monkeypatch.setattr(project.celery.logger, "info", lambda message, *args: logged.append(message % args))

    def unreachable(**_kwargs):
        time.sleep(3)
        raise kombu.exceptions.OperationalError("Could not connect to the endpoint URL")

    monkeypatch.setattr(app.amqp, "_producer_pool", SimpleNamespace(acquire=unreachable))
    started = time.monotonic()
    thread = warm_up()
    returned_after = time.monotonic() - started
    thread.join(DEFAULT_TIMEOUT)

    # Well inside the 4 s a pool process has to report itself alive.
    assert returned_after < 2
    assert not thread.is_alive()
    assert logged == ["publish_warm_up_failed error=OperationalError"], logged
