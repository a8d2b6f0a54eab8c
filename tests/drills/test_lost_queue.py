"""The lost-queue drill of `make drill` (benchmarks/drill.py, queue_drill), reduced: the local SQS
is stopped for 6 s and started empty under a running worker, in the middle of a 200-message send.

Everything that waited in the queue is gone with it: the chain steps of the chunks not yet
sent, and the dispatch of a send accepted just before (the worker, busy, had not received it).
A send is accepted while SQS is down (its publish fails), another once the worker has created
its queue again. Nobody touches the worker: it must create the queue by itself and carry on,
and beat's recovery tasks (called here as beat would) must bring back what the queue lost. Then the drill's checks:
every message final, each accepted message sent exactly once by the sandbox's count,
billing_audit clean, no hold left open; and none failed for the outage.
"""

import math
import time
from dataclasses import replace

import pytest

from benchmarks.drill import Recovery, check_drill, lost_queue_checks, settle
from harness.academies import Academy, make_academy
from messaging.models import Chunk
from messaging.pipeline import outbox
from messaging.pipeline.queues import BULK_QUEUE
from tests.pipeline.conftest import send, settled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A queue of this test's own, consumed by this test's worker only.
QUEUE = f"{BULK_QUEUE}-lost-queue"
MESSAGES = 200
# One process, so that tasks wait in the queue while it works (they are what gets lost).
WORKER_ENV = {"MESSAGING_CHUNK_SIZE": "20"}
# Long enough that the worker finishes its task, fails to publish the next step and polls the
# unreachable SQS; it then polls a queue that no longer exists, before anyone creates it again.
OUTAGE_SECONDS = 6


# The suite's shorter form: tests/foundation/test_kombu_fix.py, a worker recreating its lost queues.
@pytest.mark.drill
def test_worker_resumes_after_sqs_restarts_empty_and_nothing_is_lost(sandbox, local_sqs, start_worker,
                                                                      transactional_db):
    academy = make_academy(students=MESSAGES + 30, credit="100000")

    def part(start: int, end: int) -> Academy:
        """The academy, sending to these of its students only."""
        return replace(academy, students=academy.students[start:end])

    sandbox.set_latency(200)  # slow enough that the restart lands mid-run
    worker = start_worker("lost-queue", env=WORKER_ENV, concurrency=1, extra_args=("-Q", QUEUE))
    before = send(part(0, MESSAGES), queue=QUEUE)
    wait_until(lambda: sandbox.accepted_total > 0, timeout=60, what="the first chunk to be sent")
    queued_behind = send(part(MESSAGES, MESSAGES + 10), queue=QUEUE)

    local_sqs.stop()
    stopped = time.monotonic()
    # The worker was busy: this dispatch was still waiting in the queue that is now gone.
    dispatch_lost = not Chunk.objects.filter(send_request=queued_behind).exists()
    during = send(part(MESSAGES + 10, MESSAGES + 20), queue=QUEUE, publish=False)
    assert not outbox.publish_dispatch(during), "SQS is down: the publish fails and the relay owes it"
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
    local_sqs.start()  # empty: no queues, no messages
    # Nobody publishes until the worker has created its queue again by itself.
    wait_until(lambda: QUEUE in local_sqs.queue_names(), timeout=60, what="the worker to create its queue again")
    after = send(part(MESSAGES + 20, MESSAGES + 30), queue=QUEUE)

    ids = [before.id, queued_behind.id, during.id, after.id]
    # Chains lost with the queue come back through the stale-chunk sweep; it must wait longer
    # than the visibility timeout (25 s in the suite).
    recovery = Recovery(grace=35, stale=30)
    waited = settle(ids, timeout=150, recovery=recovery)

    local_sqs.drain(QUEUE)
    checks, counts = check_drill(ids, sandbox.sends_per_message_id())
    checks += lost_queue_checks(worker, ids)
    print(f"\nlost-queue drill: dispatch lost with the queue: {dispatch_lost}; settled {waited:.0f} s after "
          f"SQS came back; recovery: {recovery.summary()}")
    print("\n".join([f"  {key}: {value}" for key, value in counts.items()] + [c.line() for c in checks]))
    assert dispatch_lost, "the worker had received the second dispatch before the restart: slow the sandbox"
    assert not settled(before) or recovery.resumed, "the restart came after the run had finished"
    assert not math.isnan(waited), f"not settled after 150 s: {counts['messages']}; {recovery.summary()}"
    failed = [check.line() for check in checks if not check.passed]
    assert not failed, "\n".join(failed)
