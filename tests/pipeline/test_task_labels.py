"""Flower and the task results name each pipeline task's send request and academy, so an
operator finds every task of one send (`kwargs:send_request=45`); the task itself still
receives exactly the arguments it was sent."""

import ast

import pytest
from celery.signals import before_task_publish

from harness.academies import make_academy
from messaging.models import Chunk
from messaging.pipeline.task_labels import labels_for
from project.celery import app
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db


@pytest.fixture
def chunk():
    academy = make_academy()
    send_request = send(academy, publish=False)
    return Chunk.objects.create(send_request=send_request, index=0)


def _published_headers(name: str, args: tuple, kwargs: dict | None = None) -> tuple[dict, tuple]:
    """The headers and body Celery would publish, after the before_task_publish receivers ran."""
    message = app.amqp.as_task_v2("a-task-id", name, args=args, kwargs=kwargs or {})
    before_task_publish.send(sender=name, body=message.body, headers=message.headers, exchange="", routing_key="",
                             declare=[], properties=message.properties, retry_policy=None)
    return message.headers, message.body


@pytest.mark.parametrize("task", ["messaging.reserve_credit", "messaging.send_to_solapi", "messaging.finalize"])
def test_a_chunk_step_names_its_send_request_and_academy(chunk, task):
    headers, body = _published_headers(task, (chunk.id,))

    shown = ast.literal_eval(headers["kwargsrepr"])
    assert shown == {"send_request": chunk.send_request_id, "academy": chunk.send_request.tenant.slug,
                     "chunk": chunk.id}
    assert body[0] == (chunk.id,) and body[1] == {}  # what the task receives is unchanged


def test_dispatch_names_its_send_request_and_academy(chunk):
    send_request = chunk.send_request

    headers, _ = _published_headers("messaging.dispatch", (send_request.id,))

    assert ast.literal_eval(headers["kwargsrepr"]) == {"send_request": send_request.id,
                                                      "academy": send_request.tenant.slug}


def test_other_tasks_and_unknown_rows_are_left_as_they_are(chunk):
    assert labels_for("messaging.redispatch_undispatched", (), {}) == {}
    assert labels_for("project.ping", (), {}) == {}
    assert labels_for("messaging.finalize", (chunk.id + 1000,), {}) == {"chunk": chunk.id + 1000}
    headers, _ = _published_headers("project.ping", ())
    assert headers["kwargsrepr"] == "{}"
