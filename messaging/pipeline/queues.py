"""The SQS queue names, spelled once, and which of them a worker process consumes."""

from django.conf import settings
from django.db import models

# Broadcast chunks and everything else.
BULK_QUEUE = settings.MESSAGING_SQS_QUEUE_NAME
# Small sends (see MESSAGING_INTERACTIVE_MAX_RECIPIENTS), consumed by a worker of their own.
INTERACTIVE_QUEUE = f"{BULK_QUEUE}-interactive"
ALL_QUEUES = (INTERACTIVE_QUEUE, BULK_QUEUE)


class WorkerQueues(models.TextChoices):
    """What a worker process consumes (MESSAGING_WORKER_QUEUES, recorded on its heartbeat).

    Production runs two processes (the Procfile's `worker` and `worker-interactive`): a worker
    consuming both queues shares one pool between them, so a 1-message send waits until a
    broadcast's chunk leaves a slot (seconds), and kombu may even receive it while every slot is
    taken and hold it in memory behind the chunks (docs/celery-on-sqs.md, "One pool per queue").
    `all` is for a stack that runs one worker: tests, a laptop."""

    ALL = "all", "both queues"
    BULK = "bulk", "the bulk queue"
    INTERACTIVE = "interactive", "the interactive queue"
    # Neither (a worker started with -Q on some other queue): counted for no queue.
    OTHER = "other", "other queues"


def consumed_queues(role: str) -> tuple[str, ...]:
    """The queue names a worker of `role` (MESSAGING_WORKER_QUEUES: all, bulk or interactive) consumes."""
    if role not in (WorkerQueues.ALL, WorkerQueues.BULK, WorkerQueues.INTERACTIVE):
        raise ValueError(f"MESSAGING_WORKER_QUEUES must be all, bulk or interactive, not {role!r}")
    return {WorkerQueues.ALL: ALL_QUEUES, WorkerQueues.BULK: (BULK_QUEUE,),
            WorkerQueues.INTERACTIVE: (INTERACTIVE_QUEUE,)}[WorkerQueues(role)]


def roles_consuming(queue_name: str) -> tuple[str, ...]:
    """The worker roles that consume `queue_name`."""
    return tuple(role for role in (WorkerQueues.ALL, WorkerQueues.BULK, WorkerQueues.INTERACTIVE)
                 if queue_name in consumed_queues(role))


def role_of(queue_names: set[str] | None) -> str:
    """The role of a worker consuming `queue_names` (None: every queue, Celery's default)."""
    if queue_names is None or set(ALL_QUEUES) <= queue_names:
        return WorkerQueues.ALL
    if BULK_QUEUE in queue_names:
        return WorkerQueues.BULK
    return WorkerQueues.INTERACTIVE if INTERACTIVE_QUEUE in queue_names else WorkerQueues.OTHER


def queue_for(recipients: int) -> str:
    """A send to few recipients goes on the interactive queue, so a broadcast in progress
    does not delay it."""
    return INTERACTIVE_QUEUE if recipients <= settings.MESSAGING_INTERACTIVE_MAX_RECIPIENTS else BULK_QUEUE
