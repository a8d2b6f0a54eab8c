"""Reduced versions of `make drill`'s edge drills (benchmarks/drill.py; docs/exactly-once.md):
every chain step delivered twice with the same task id, the worker's database connections
terminated again and again, and a storm of 429s against two workers sharing one request rate.
Each ends with the drills' own checks (check_drill): every message final, each accepted
message sent exactly once by the sandbox's count, billing_audit clean, no hold left open."""

import threading
import time

import pytest
from django.db import connection

from benchmarks.drill import check_drill
from harness.academies import make_academy
from messaging.models import Message, MessageStatus
from messaging.pipeline import delivery
from messaging.pipeline.queues import BULK_QUEUE
from messaging.pipeline.tasks import chunk_pipeline
from tests.pipeline.conftest import send, settled, wait_settled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _assert_exactly_once(send_request, sandbox, local_sqs, queue: str) -> None:
    local_sqs.drain(queue)  # duplicates of steps that already ran; nobody else consumes this queue
    checks, counts = check_drill([send_request.id], sandbox.sends_per_message_id())
    print("\n".join([f"  {key}: {value}" for key, value in counts.items()] + [c.line() for c in checks]))
    failed = [check.line() for check in checks if not check.passed]
    assert not failed, "\n".join(failed)
    assert set(Message.objects.filter(send_request=send_request).values_list("status", flat=True)) == {
        MessageStatus.ACCEPTED}


# --- fault 1: one SQS message delivered twice --------------------------------------------------------

TWICE_QUEUE = f"{BULK_QUEUE}-twice"


@pytest.mark.postgres
def test_every_chain_step_delivered_twice_with_the_same_task_id(sandbox, local_sqs, start_worker, transactional_db):
    academy = make_academy(students=100, credit="1000000")
    sandbox.set_latency(100)  # Solapi calls long enough for the two copies to overlap
    env = {"MESSAGING_CHUNK_SIZE": "25"}
    workers = [start_worker(f"twice{n}", env=env, extra_args=("-Q", TWICE_QUEUE)) for n in range(2)]
    send_request = send(academy, queue=TWICE_QUEUE, publish=False)
    chunk_ids = delivery.split_into_chunks(send_request.id)

    send_task_ids = []
    for chunk_id in chunk_ids:
        steps = chunk_pipeline(chunk_id, queue=TWICE_QUEUE)
        steps.freeze()  # fixed task ids for every step: both copies carry the same ones
        send_task_ids.append(steps.tasks[1].id)
        steps.apply_async()
        steps.apply_async()
    wait_settled(send_request, timeout=120)

    # The duplicates were real: every send step was received (at least) twice, by id.
    logs = "".join(worker.log() for worker in workers)
    assert all(logs.count(f"messaging.send_to_solapi[{task_id}] received") >= 2 for task_id in send_task_ids), logs
    # One group created, filled and sent per chunk, whatever ran twice.
    sent_groups = [r for r in sandbox.request_log if r.operation == "send_group" and r.status == 200]
    assert len(sent_groups) == len(chunk_ids) == 4
    _assert_exactly_once(send_request, sandbox, local_sqs, TWICE_QUEUE)


# --- fault 2: the worker's database connections dropped ------------------------------------------------

BLIP_QUEUE = f"{BULK_QUEUE}-blips"


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class Terminator(threading.Thread):
    """pg_terminate_backend every connection to the test database but the test's own (those
    are the worker's), every `every` seconds, `times` times (or until stopped)."""

    def __init__(self, *, every: float, times: int):
        super().__init__(daemon=True)
        self.every, self.times = every, times
        self.spared = backend_pid()  # the test's main connection, which waits for the outcome
        self.terminated = self.rounds = 0
        self.stopping = threading.Event()

    def run(self):
        from django.db import connections

        try:
            while self.rounds < self.times and not self.stopping.wait(self.every):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND pid NOT IN (pg_backend_pid(), %s)", [self.spared])
                    self.terminated += cursor.fetchone()[0]
                self.rounds += 1
        finally:
            connections.close_all()


@pytest.mark.postgres
def test_terminated_database_connections_delay_messages_and_fail_none(sandbox, local_sqs, start_worker,
                                                                     transactional_db):
    academy = make_academy(students=200, credit="1000000")
    sandbox.set_latency(50)
    worker = start_worker("blips", env={"MESSAGING_CHUNK_SIZE": "20"}, extra_args=("-Q", BLIP_QUEUE))
    send_request = send(academy, queue=BLIP_QUEUE)
    wait_until(lambda: Message.objects.filter(send_request=send_request, chunk__isnull=False).exists(),
               what="the dispatch to run")

    terminator = Terminator(every=0.4, times=25)
    terminator.start()
    terminator.join(timeout=60)
    terminator.stopping.set()
    wait_settled(send_request, timeout=150)

    print(f"\n  {terminator.rounds} rounds of pg_terminate_backend, {terminator.terminated} backends terminated")
    assert terminator.terminated >= 10
    # No step failed (a failed step stops its chain until beat's sweep): each was retried, and
    # so was every result write (project/results.py).
    assert "raised unexpected" not in worker.log()
    assert not Message.objects.filter(send_request=send_request, status=MessageStatus.FAILED).exists()
    _assert_exactly_once(send_request, sandbox, local_sqs, BLIP_QUEUE)


# --- fault 3: a storm of 429s, and two workers sharing one request rate -----------------------------------

STORM_QUEUE = f"{BULK_QUEUE}-storm"
STORM_SECONDS = 25
RATE = 5


# The suite's shorter form: tests/pipeline/test_policies.py (429s waited out, past the longest wait failed).
@pytest.mark.drill
def test_a_storm_of_429s_fails_nothing_and_two_workers_share_one_request_rate(sandbox, local_sqs, start_worker,
                                                                              transactional_db):
    academy = make_academy(students=200, credit="1000000")
    # Small chunks, so the workers have many calls to make at once; a transient budget the storm
    # would exhaust many times over if its 429s counted against it.
    env = {"MESSAGING_CHUNK_SIZE": "10", "SOLAPI_MAX_REQUESTS_PER_SECOND": str(RATE),
           "MESSAGING_TRANSIENT_MAX_ATTEMPTS": "2", "MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS": "120"}
    for n in range(2):
        start_worker(f"storm{n}", env=env, extra_args=("-Q", STORM_QUEUE))
    began = time.time()
    # Every call answered 429, every second answer with Retry-After: 2, the others without.
    sandbox.storm_429(STORM_SECONDS, retry_after=2, retry_after_every=2)
    send_request = send(academy, queue=STORM_QUEUE)

    time.sleep(STORM_SECONDS / 2)
    assert not settled(send_request) and sandbox.accepted_total == 0
    wait_settled(send_request, timeout=STORM_SECONDS + 120)

    storm = sandbox.faults.to_json()["storm"]
    busiest = sandbox.max_requests_per_second(since=began)
    print(f"\n  storm: {storm['replies']} calls answered 429; busiest second at the sandbox: {busiest} calls "
          f"(limit {RATE}/s); {len(sandbox.request_log)} calls in all")
    # Several refusals, not one: with pacing, about two chunks are in flight, each waiting 2 s or a
    # growing backoff between calls, so a 25 s storm answers some 9 to 12 calls (10 was too tight).
    assert storm["replies"] >= 5
    assert busiest <= RATE
    _assert_exactly_once(send_request, sandbox, local_sqs, STORM_QUEUE)
