"""The edge drills of `make drill` (docs/exactly-once.md), at full size:

twice:   a 1,000-message send in chunks of 250, every chain step of every chunk published twice
         with the same task id, consumed concurrently by two workers. The sandbox must count each
         message accepted once and one group sent per chunk.
dbblips: during a 2,000-message send, every connection of the worker to PostgreSQL is
         terminated (pg_terminate_backend) every half second, 40 times. Every message must end
         accepted, exactly once, none failed.
storm:   during a 1,000-message send the sandbox answers every call 429 for 5 minutes (every
         second answer with Retry-After, the others without), against two workers sharing one
         request rate. Nothing may fail; afterwards every message goes out once; the busiest
         second at the sandbox stays within SOLAPI_MAX_REQUESTS_PER_SECOND.

Each ends with the common checks (benchmarks/drill.check_drill). Reduced versions run in the
suite: tests/drills/test_edge_drills.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from unittest import mock

from benchmarks.drill import DRILL_ENV, Check, DrillOutcome, Recovery, _outcome, settle
from benchmarks.stack import Stack, banner, loadavg, seed_academy, send

TWICE_MESSAGES, TWICE_CHUNK = 1000, 250
BLIP_EVERY_SECONDS, BLIP_ROUNDS = 0.5, 40
STORM_MESSAGES, STORM_SECONDS, STORM_RETRY_AFTER = 1000, 300, 5
STORM_RATE = 10  # SOLAPI_MAX_REQUESTS_PER_SECOND for the storm's two workers


def _no_failures(outcome: DrillOutcome, ids: list[int], why: str) -> None:
    from messaging.models import Message

    lost = Message.objects.filter(send_request_id__in=ids, status="failed").values_list("failure_class", flat=True)
    outcome.checks.append(Check(f"no message failed for {why}", not lost,
                                f"{len(lost)} failed: {dict(Counter(lost)) or 'none'}"))


def twice_drill(stack: Stack) -> DrillOutcome:
    banner(f"edge drill: every chain step published twice with the same task id ({TWICE_MESSAGES:,} messages, "
           f"chunks of {TWICE_CHUNK})")
    from django.utils import timezone

    from messaging.pipeline import delivery, outbox
    from messaging.pipeline.tasks import chunk_pipeline

    stack.sandbox.reset()
    stack.sandbox.set_latency(100)  # calls long enough for the copies to overlap
    academy = seed_academy("drill-twice", TWICE_MESSAGES, phone_offset=80_000_000)
    env = {**DRILL_ENV, "MESSAGING_CHUNK_SIZE": TWICE_CHUNK}
    workers = [stack.start_worker(f"twice{n}", env=env) for n in range(2)]
    with mock.patch.object(outbox, "publish_dispatch", return_value=False):
        sent = send(academy, TWICE_MESSAGES)
    from messaging.models import SendRequest

    queue = SendRequest.objects.get(id=sent.id).queue
    chunk_ids = delivery.split_into_chunks(sent.id)  # the chunk size is the workers' (Stack.worker_env)
    send_task_ids = []
    for chunk_id in chunk_ids:
        steps = chunk_pipeline(chunk_id, queue=queue)
        steps.freeze()  # the same task ids in both copies
        send_task_ids.append(steps.tasks[1].id)
        steps.apply_async()
        steps.apply_async()
    # Published by hand: the outbox relay must not publish its dispatch again later.
    SendRequest.objects.filter(id=sent.id).update(dispatched=timezone.now())
    recovery = Recovery()
    waited = settle([sent.id], timeout=300, recovery=recovery)
    for worker in workers:
        worker.stop()
    logs = "".join(worker.log() for worker in workers)
    received_twice = sum(logs.count(f"messaging.send_to_solapi[{task_id}] received") >= 2 for task_id in send_task_ids)
    groups_sent = sum(1 for r in stack.sandbox.request_log if r.operation == "send_group" and r.status == 200)
    facts = {"published": f"{len(chunk_ids)} chunks × 3 steps, each twice with one task id, two workers",
             "settled": f"{waited:.0f} s after publishing", "recovery": recovery.summary(), "load": loadavg()}
    outcome = _outcome("twice", [sent.id], stack, facts)
    outcome.checks.append(Check("every send step ran twice", received_twice == len(chunk_ids),
                                f"{received_twice} of {len(chunk_ids)} send steps received twice (same task id)"))
    outcome.checks.append(Check("one group sent per chunk", groups_sent == len(chunk_ids),
                                f"{groups_sent} groups sent for {len(chunk_ids)} chunks"))
    return outcome


def dbblips_drill(stack: Stack, *, messages: int) -> DrillOutcome:
    banner(f"edge drill: the worker's PostgreSQL connections terminated {BLIP_ROUNDS} times during a "
           f"{messages:,}-message send")
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        return DrillOutcome("dbblips", [Check("PostgreSQL available", False, "this drill needs PostgreSQL")], {})
    stack.sandbox.reset()
    stack.sandbox.set_latency(100)
    academy = seed_academy("drill-dbblips", messages, phone_offset=85_000_000)
    worker = stack.start_worker("dbblips", env=DRILL_ENV)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        spared = cursor.fetchone()[0]
    sent = send(academy, messages)
    terminated = []

    def terminate() -> None:
        try:
            for _ in range(BLIP_ROUNDS):
                time.sleep(BLIP_EVERY_SECONDS)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND pid NOT IN (pg_backend_pid(), %s)", [spared])
                    terminated.append(cursor.fetchone()[0])
        finally:
            connections.close_all()

    thread = threading.Thread(target=terminate, daemon=True)
    thread.start()
    thread.join()
    recovery = Recovery()
    waited = settle([sent.id], timeout=300, recovery=recovery)
    worker.stop()
    facts = {"terminated": f"{sum(terminated)} backends in {len(terminated)} rounds, every "
                           f"{BLIP_EVERY_SECONDS} s", "settled": f"{waited:.0f} s after the last round",
             "recovery": recovery.summary(), "load": loadavg()}
    outcome = _outcome("dbblips", [sent.id], stack, facts)
    _no_failures(outcome, [sent.id], "the dropped connections")
    return outcome


def storm_drill(stack: Stack, *, seconds: float = STORM_SECONDS) -> DrillOutcome:
    banner(f"edge drill: every Solapi call answered 429 for {seconds:.0f} s during a {STORM_MESSAGES:,}-message "
           f"send; two workers at {STORM_RATE} calls/s together")
    stack.sandbox.reset()
    academy = seed_academy("drill-storm", STORM_MESSAGES, phone_offset=90_000_000)
    env = {**DRILL_ENV, "SOLAPI_MAX_REQUESTS_PER_SECOND": STORM_RATE}
    workers = [stack.start_worker(f"storm{n}", env=env) for n in range(2)]
    began = time.time()
    stack.sandbox.storm_429(seconds, retry_after=STORM_RETRY_AFTER, retry_after_every=2)
    sent = send(academy, STORM_MESSAGES)
    time.sleep(seconds)
    recovery = Recovery()
    waited = settle([sent.id], timeout=300, recovery=recovery)
    for worker in workers:
        worker.stop()
    storm = stack.sandbox.faults.to_json()["storm"]
    busiest = stack.sandbox.max_requests_per_second(since=began)
    facts = {"storm": f"{storm['replies']} calls answered 429 in {seconds:.0f} s (every second one with "
                      f"Retry-After: {STORM_RETRY_AFTER})",
             "settled": f"{waited:.0f} s after the storm", "recovery": recovery.summary(), "load": loadavg()}
    outcome = _outcome("storm", [sent.id], stack, facts)
    _no_failures(outcome, [sent.id], "the storm")
    outcome.checks.append(Check("the account's request rate held", busiest <= STORM_RATE,
                                f"busiest second at the sandbox: {busiest} calls (limit {STORM_RATE}/s)"))
    return outcome
