"""The Procfile's two workers: a small send is accepted while every slot of the bulk worker is
held by a broadcast's chunk (docs/celery-on-sqs.md, "One pool per queue").

With one worker consuming both queues, the 1-message send waited until the chunk left its slot:
about a chunk's time in the fairness benchmark (issue 17), here as long as the hung Solapi call.
A broadcast's dispatch is on the interactive queue too (queues.dispatch_queue): its chunks are
created and published while the bulk slot is held, instead of after it.
"""

import pytest

from harness.academies import make_academy
from harness.waiting import wait_until
from harness.worker import WorkerProcess
from messaging.models import Chunk, ChunkStatus, Message, MessageStatus, WorkerHeartbeat
from messaging.pipeline.queues import BULK_QUEUE, WorkerQueues
from tests.pipeline.conftest import send

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The workers' queue name: a bulk queue of this test's own and its `-interactive` twin.
QUEUE = f"{BULK_QUEUE}-roles"
# The broadcast's Solapi call hangs this long, far beyond the wait for the small send below.
HANG_SECONDS = 120


def _start_workers(start_worker, queue: str) -> WorkerProcess:
    """The Procfile's two workers on `queue` and its `-interactive` twin, one slot each; returns
    the bulk one. Their task time limit outlasts the hang (the suite's 20 s would cut it short)."""
    limit = HANG_SECONDS * 2
    env = {"MESSAGING_SQS_QUEUE_NAME": queue, "SOLAPI_READ_TIMEOUT": str(limit),
           "MESSAGING_TASK_TIME_LIMIT": str(limit), "MESSAGING_SQS_VISIBILITY_TIMEOUT": str(limit * 2)}
    bulk = start_worker("bulk", env={**env, "MESSAGING_WORKER_QUEUES": WorkerQueues.BULK}, concurrency=1)
    start_worker("interactive", env={**env, "MESSAGING_WORKER_QUEUES": WorkerQueues.INTERACTIVE}, concurrency=1)
    return bulk


def test_a_small_send_is_accepted_while_the_bulk_workers_only_slot_is_held(sandbox, start_worker):
    bulk = _start_workers(start_worker, QUEUE)
    # The broadcast's first Solapi call is answered only after HANG_SECONDS: the bulk worker's
    # one slot stays taken.
    sandbox.fail_next("create_group", action="accept_then_timeout", hang_seconds=HANG_SECONDS)
    broadcast = send(make_academy(students=3), queue=QUEUE)
    wait_until(lambda: not sandbox.faults.to_json()["rules"], what="the broadcast's hung Solapi call")

    small = send(make_academy(students=1), queue=f"{QUEUE}-interactive")
    wait_until(lambda: Message.objects.filter(send_request=small, status=MessageStatus.ACCEPTED).exists(),
               timeout=HANG_SECONDS / 2, what="the small send to be accepted")

    # Accepted while the broadcast's chunk still waits for its first Solapi answer.
    assert not Chunk.objects.filter(send_request=broadcast, status=ChunkStatus.FINALIZED).exists()
    (message,) = Message.objects.filter(send_request=small)
    assert sandbox.sends_per_message_id()[str(message.id)] == 1
    # Each heartbeat says what its worker consumes: the pacing counts the bulk worker's slot only.
    roles = WorkerHeartbeat.objects.filter(hostname__regex=r"^(bulk|interactive)@").values_list("queues", flat=True)
    assert sorted(roles) == [WorkerQueues.BULK, WorkerQueues.INTERACTIVE]
    bulk.kill()  # the hung chunk is not this test's subject


def test_a_broadcasts_chunks_are_published_while_the_bulk_workers_only_slot_is_held(sandbox, start_worker,
                                                                                    own_queues):
    queue, _ = own_queues("dispatch")
    bulk = _start_workers(start_worker, queue)
    sandbox.fail_next("create_group", action="accept_then_timeout", hang_seconds=HANG_SECONDS)
    first = send(make_academy(students=3), queue=queue)
    wait_until(lambda: not sandbox.faults.to_json()["rules"], what="the first broadcast's hung Solapi call")

    second = send(make_academy(students=3), queue=queue)
    wait_until(lambda: Chunk.objects.filter(send_request=second, published__isnull=False).exists(),
               timeout=HANG_SECONDS / 2, what="the second broadcast's chunk to be published")

    # Published while the first broadcast's chunk still holds the bulk worker's only slot: it is
    # next on the bulk queue, not behind a chunk the first one published when its slot freed.
    assert not Chunk.objects.filter(send_request=first, status=ChunkStatus.FINALIZED).exists()
    assert Message.objects.filter(send_request=second, chunk__isnull=True).count() == 0
    bulk.kill()  # the hung chunk is not this test's subject
