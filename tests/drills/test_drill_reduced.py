"""The fault drills of `make drill` (benchmarks/drill.py), reduced to fit in the suite and run
all at once: 200 plain-SMS messages in chunks of 20 while the worker is SIGKILLed 3 times at
random, the sandbox answers 10 % of calls with a 5xx and 5 % with accept-then-time-out, and
the local SQS is down for 8 s. Then the drill's own checks: every message final, each accepted
message sent exactly once by the sandbox's count, billing_audit clean, no hold left open."""

import math
import random
import time

import pytest

from benchmarks.drill import Recovery, check_drill, settle
from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.models import Message
from messaging.pipeline.queues import BULK_QUEUE
from tests.pipeline.conftest import send, settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A queue of this test's own: the killable workers consume it, the session worker does not.
QUEUE = f"{BULK_QUEUE}-drill"
MESSAGES = 200
KILLS = 3
OUTAGE_SECONDS = 8
# The suite's settings (tests/settings.py) already give a 25 s visibility timeout, a 3 s read
# timeout and 1-4 s backoffs; chunks of 20 give ten chains to interrupt.
WORKER_ENV = {"MESSAGING_CHUNK_SIZE": "20"}
# Usually settled within a minute of the last fault; generous for a loaded CI box.
SETTLE_WITHIN_SECONDS = 240


def test_reduced_fault_drill(sandbox, local_sqs, start_worker, transactional_db):
    academy = make_academy(students=MESSAGES, credit="100000")
    # Slow enough that the run is still going when the faults hit it.
    sandbox.set_latency(200)
    sandbox.set_fault_rates("*", error_5xx=0.10, accept_then_timeout=0.05, hang_seconds=5)
    rng = random.Random(20)

    def worker(number: int):
        return start_worker(f"drill{number}", env=WORKER_ENV, extra_args=("-Q", QUEUE))

    current = worker(0)
    send_request = send(academy, queue=QUEUE)
    events = []
    for kill in range(1, KILLS + 1):
        time.sleep(rng.uniform(0.5, 2.0))
        events.append(f"kill {kill} (in flight: {not settled(send_request)}, accepted: {sandbox.accepted_total})")
        current.kill()
        current = worker(kill)
        if kill == 2:
            events.append(f"SQS down {OUTAGE_SECONDS} s (in flight: {not settled(send_request)})")
            local_sqs.down()
            try:
                time.sleep(OUTAGE_SECONDS)
            finally:
                local_sqs.up()
    # Killed tasks come back after the 25 s visibility timeout; beat's sweep only after that.
    recovery = Recovery(grace=35, stale=30)
    waited = settle([send_request.id], timeout=SETTLE_WITHIN_SECONDS, recovery=recovery)

    local_sqs.drain(QUEUE)  # duplicates of steps that already ran; nobody else consumes this queue
    checks, counts = check_drill([send_request.id], sandbox.sends_per_message_id())
    faults = {}
    for record in sandbox.request_log:
        if record.fault:
            faults[record.fault] = faults.get(record.fault, 0) + 1
    print(f"\nreduced drill: {'; '.join(events)}; settled {waited:.0f} s after the last fault; "
          f"faults injected {faults}; recovery: {recovery.summary()}")
    print("\n".join([f"  {key}: {value}" for key, value in counts.items()] + [c.line() for c in checks]))
    assert "in flight: True" in events[0], "the first kill came after the run had finished: slow the sandbox"
    assert not math.isnan(waited), f"not settled after {SETTLE_WITHIN_SECONDS} s: {counts['messages']}"
    failed = [check.line() for check in checks if not check.passed]
    assert not failed, "\n".join(failed)
    # The outage and the kills delay messages; none fails for them (no rollback as "internal").
    assert not Message.objects.filter(send_request=send_request, failure_class=FailureClass.INTERNAL).exists()
