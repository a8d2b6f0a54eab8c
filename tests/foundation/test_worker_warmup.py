"""A pool process builds its Solapi client and opens its publisher when it starts
(project/worker_warmup.py), and an unreachable SQS does not hold its start-up."""

import logging
import time

import pytest
from celery import Celery
from kombu import Queue

from harness.ports import free_port
from harness.waiting import DEFAULT_TIMEOUT
from messaging.pipeline.queues import BULK_QUEUE
from messaging.solapi import client as client_module
from project.celery import app, ping
from project.worker_warmup import warm_up

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# What a publish to a queue nobody has looked up yet asks SQS first.
LOOKUPS = {"ListQueues", "GetQueueUrl", "GetQueueAttributes", "CreateQueue"}


def test_after_the_warm_up_the_first_publish_is_one_send_and_the_client_is_built(broker, monkeypatch):
    monkeypatch.setattr(client_module, "_clients", {})

    warm_up(app).join(DEFAULT_TIMEOUT)
    broker.reset_counts()
    ping.apply_async(queue=BULK_QUEUE)

    assert client_module._clients, "the Solapi client was not built"
    counts = broker.request_counts()
    assert counts["SendMessage"] == 1
    assert not LOOKUPS & {operation for operation, n in counts.items() if n}, counts


def test_an_unreachable_sqs_does_not_hold_the_start_up(caplog):
    unreachable = Celery("warm-up-test", broker=f"sqs://key:secret@127.0.0.1:{free_port()}")
    unreachable.conf.broker_transport_options = {
        "region": "ap-northeast-2", "is_secure": False,
        "client-config": {"connect_timeout": 1, "retries": {"max_attempts": 1}}}
    unreachable.conf.task_queues = [Queue("warm-up-test")]

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="project.worker_warmup"):
        thread = warm_up(unreachable)
        returned_after = time.monotonic() - started
        thread.join(DEFAULT_TIMEOUT)

    # Well inside the 4 s a pool process has to report itself alive.
    assert returned_after < 2
    assert not thread.is_alive()
    assert any(r.getMessage().startswith("warm_up_publisher_failed") for r in caplog.records), caplog.records
