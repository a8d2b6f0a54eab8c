"""What Flower and the stored task results show of a pipeline task: its send request and
its academy, so an operator finds every task of one send by searching for it.

Pipeline tasks take ids only (a chunk's, or a send request's for `dispatch`), and a chunk id
means nothing to someone asked about "send request 45 of the demo academy". When such a task
is published, its `kwargsrepr` (the text Flower shows and searches as the task's keyword
arguments, and django-celery-results stores as task_kwargs) names them too:
`{'send_request': 45, 'academy': 'demo', 'chunk': 12}`. Flower's search then finds them with
`kwargs:send_request=45` or `kwargs:academy=demo`. Only the text shown changes: the task
receives exactly the arguments it was sent.

Which id a task carries is read from its parameters' names (`chunk_id`, `send_request_id`),
so a new pipeline task is labelled without being listed here.
"""

import importlib
import inspect
import logging

from celery import current_app
from celery.signals import before_task_publish
from celery.utils.saferepr import saferepr

from messaging.models import Chunk, SendRequest

logger = logging.getLogger(__name__)

PIPELINE_PREFIX = "messaging."


def labels_for(task_name: str, args: list | tuple, kwargs: dict) -> dict[str, object]:
    """{send_request, academy[, chunk]} for a pipeline task's arguments; {} for any other task."""
    if not task_name.startswith(PIPELINE_PREFIX):
        return {}
    bound = {**dict(zip(_parameters(task_name), args, strict=False)), **kwargs}
    if "chunk_id" in bound:
        row = (Chunk.objects.filter(id=bound["chunk_id"])
               .values_list("send_request_id", "send_request__tenant__slug").first())
        chunk = {"chunk": bound["chunk_id"]}
        return {"send_request": row[0], "academy": row[1], **chunk} if row else chunk
    if "send_request_id" in bound:
        slug = (SendRequest.objects.filter(id=bound["send_request_id"])
                .values_list("tenant__slug", flat=True).first())
        return {"send_request": bound["send_request_id"], **({"academy": slug} if slug else {})}
    return {}


_PARAMETERS: dict[str, tuple[str, ...]] = {}
# Where the `messaging.*` tasks are defined.
_TASK_MODULES = ("messaging.pipeline.tasks", "messaging.operations.tasks")


def _parameters(task_name: str) -> tuple[str, ...]:
    if task_name not in _PARAMETERS:
        task = current_app.tasks.get(task_name)
        if task is None:
            # A process that publishes by name (the web's outbox) has not imported the tasks.
            # Imported here, not by loader.import_default_modules(): that fires Celery's Django
            # fixup, which runs django.setup() and the system checks again in the web process
            # (its logging configured anew on the first publish).
            for module in _TASK_MODULES:
                importlib.import_module(module)
            task = current_app.tasks.get(task_name)
        if task is None:
            return ()
        _PARAMETERS[task_name] = tuple(inspect.signature(task.run).parameters)
    return _PARAMETERS[task_name]


def label_published_task(sender: str | None = None, body=None, headers: dict | None = None, **_) -> None:
    """before_task_publish: write the labels into the message's kwargsrepr header."""
    if not sender or not headers or "kwargsrepr" not in headers or not isinstance(body, tuple | list):
        return  # not Celery's message protocol 2
    args, kwargs = body[0], body[1]
    try:
        labels = labels_for(sender, args or (), kwargs or {})
    except Exception:  # a label is never worth a lost publish (the database may be down)
        logger.debug("task_label_skipped task=%s", sender, exc_info=True)
        return
    if labels:
        headers["kwargsrepr"] = saferepr({**labels, **(kwargs or {})})


def connect() -> None:
    """Called once per process (messaging/apps.py): web, worker and beat all publish."""
    before_task_publish.connect(label_published_task, weak=False, dispatch_uid="messaging.task_labels")
