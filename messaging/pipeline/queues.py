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
    """The lane of a send's messages (SendRequest.queue): a send to few recipients goes on the
    interactive queue, so a broadcast in progress does not delay it; a broadcast's chunks go on
    the bulk queue."""
    return INTERACTIVE_QUEUE if recipients <= settings.MESSAGING_INTERACTIVE_MAX_RECIPIENTS else BULK_QUEUE


def dispatch_queue(lane: str) -> str:
    """Where the dispatch of a send request whose messages go on `lane` is published: the
    interactive queue, a broadcast's too. A broadcast's dispatch is short (it splits the request
    into chunks and publishes the paced ones; the chunks go on the bulk queue). On the bulk queue
    it waited for a slot behind another academy's chunks, and the chunk that freed the slot
    published that academy's next chunk ahead of this broadcast's first (issue 17). Any other
    lane (a test's or a drill's own queue, consumed with -Q) carries its own dispatches."""
    return INTERACTIVE_QUEUE if lane == BULK_QUEUE else lane


def lanes_dispatched_on(queue_name: str) -> tuple[str, ...]:
    """The lanes whose dispatches are published on `queue_name` (dispatch_queue backwards)."""
    if queue_name == BULK_QUEUE:
        return ()
    return (INTERACTIVE_QUEUE, BULK_QUEUE) if queue_name == INTERACTIVE_QUEUE else (queue_name,)
