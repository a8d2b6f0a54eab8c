"""The Procfile's two workers: a small send is accepted while every slot of the bulk worker is
held by a broadcast's chunk (docs/celery-on-sqs.md, "One pool per queue").

With one worker consuming both queues, the 1-message send waited until the chunk left its slot:
about a chunk's time in the fairness benchmark (issue 17), here as long as the hung Solapi call.
"""

import pytest

from harness.academies import make_academy
from harness.waiting import wait_until
from messaging.models import Chunk, ChunkStatus, Message, MessageStatus, WorkerHeartbeat
from messaging.pipeline.queues import BULK_QUEUE, WorkerQueues
from tests.pipeline.conftest import send

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The workers' queue name: a bulk queue of this test's own and its `-interactive` twin.
QUEUE = f"{BULK_QUEUE}-roles"
# The broadcast's Solapi call hangs this long, far beyond the wait for the small send below.
HANG_SECONDS = 120


def test_a_small_send_is_accepted_while_the_bulk_workers_only_slot_is_held(sandbox, start_worker):
    env = {"MESSAGING_SQS_QUEUE_NAME": QUEUE, "SOLAPI_READ_TIMEOUT": str(HANG_SECONDS * 2)}
    bulk = start_worker("bulk", env={**env, "MESSAGING_WORKER_QUEUES": WorkerQueues.BULK}, concurrency=1)
    start_worker("interactive", env={**env, "MESSAGING_WORKER_QUEUES": WorkerQueues.INTERACTIVE}, concurrency=1)
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
