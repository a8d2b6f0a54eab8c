"""`make drill`: the fault drills at full size, each on 2,000 plain-SMS messages.

1. kill:   the worker is SIGKILLed (its whole process group) at random moments, 20 times,
           and restarted each time; the killed tasks come back after the visibility timeout.
2. solapi: the sandbox answers 10 % of calls with a 5xx, 5 % with accept-then-time-out
           (it processes the call, then hangs past the client's read timeout) and starts a
           burst of five 429s on 3 % of calls, on every operation; plus one burst of eight 429s
           once sending is under way.
3. sqs:    the local SQS is stopped for 30 s mid-run (once the worker is holding credit for
           the chunks); a send accepted by the API meanwhile cannot publish its task and
           waits for the outbox relay. Two more checks here: the worker survives, and no
           message fails because of the outage (messaging/pipeline/outbox.py: "a broker outage
           delays messages but loses none").
4. queue:  the local SQS is stopped and started empty (every queue and message gone, as when
           a queue is deleted or a local SQS restarts) mid-run. Lost with it: the chain steps
           waiting in the queues and the dispatches of two sends accepted just before (bulk and
           interactive). Sends are accepted while it is down and after the worker has created
           both queues again by itself. Nobody touches the worker: it must create its queues again
           and resume (project/kombu_fixes.py),
           and beat's recovery tasks bring back what the queues lost. Extra checks: the worker
           survived, its failed receives were logged sparingly, both queues exist again, no
           message failed.

After each drill, one function checks the outcome (check_drill; the reduced drill in
tests/drills/ uses it too):

- every message is final (accepted, delivered, failed or skipped) and every chunk finalized;
- every message the sandbox accepted, it accepted exactly once, and we recorded it as accepted
  (never as failed before acceptance); everything we recorded as accepted, the sandbox accepted;
- billing.audit.audit_accounts() is empty;
- no hold of these messages is left open, and each hold matches its message (captured for
  accepted ones, released for failed ones).

While waiting for a drill to settle, beat's recovery tasks (redispatch_undispatched,
resume_stale_chunks) are called directly, as beat would: the relay from the moment SQS is
back, the stale-chunk sweep only after a grace period longer than the visibility timeout. The
output says whether they found anything to do.

The edge drills of issue 12 (twice, dbblips, storm) live in benchmarks/edge_drills.py.

    python -m benchmarks.drill [--only kill,solapi,sqs,queue,twice,dbblips,storm] [--messages 2000]
                               [--kills 20] [--seed 7] [--storm-seconds 300]

Exit code 1 if any check fails.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.stack import (
    IN_FLIGHT,
    Sent,
    Stack,
    banner,
    is_settled,
    loadavg,
    machine,
    seed_academy,
    send,
    write_json,
)

MESSAGES = 2000
KILLS = 20
OUTAGE_SECONDS = 30
FINAL = ("accepted", "delivered", "failed", "skipped")
ACCEPTED = ("accepted", "delivered")

# Worker settings for the drills. Chunks of 50 give 40 chains to interrupt. A short visibility
# timeout (time limit below it, as the start-up check insists) brings a killed worker's tasks
# back quickly; a short read timeout makes accept-then-time-out cost 3 s, not 20; small backoffs.
DRILL_ENV = {
    "MESSAGING_CHUNK_SIZE": 50,
    "MESSAGING_SQS_WAIT_SECONDS": 1,
    "MESSAGING_SQS_VISIBILITY_TIMEOUT": 30,
    "MESSAGING_TASK_TIME_LIMIT": 25,
    "MESSAGING_RETRY_BASE_SECONDS": 1,
    "MESSAGING_RETRY_MAX_SECONDS": 4,
    "MESSAGING_BREAKER_PROBE_SECONDS": 2,
    "SOLAPI_READ_TIMEOUT": 3,
}
# The stale-chunk sweep waits this long (beat's threshold is 1,200 s in production): longer than
# the visibility timeout, so the sweep only picks up what redelivery would not bring back.
STALE_SECONDS = 45
# Sandbox latency in the kill and SQS drills (the Solapi drill keeps the benchmarks' 50 ms).
DRILL_LATENCY_MS = 100
GRACE_SECONDS = 60


# --- the checks -------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"  {'PASS' if self.passed else 'FAIL'}  {self.name:<36} {self.detail}"


@dataclass
class DrillOutcome:
    name: str
    checks: list[Check]
    counts: dict[str, Any]
    facts: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # in the JSON only

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def lines(self) -> list[str]:
        out = [f"  {key}: {value}" for key, value in self.facts.items()]
        out += [f"  {key}: {value}" for key, value in self.counts.items()]
        out += [check.line() for check in self.checks]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "facts": self.facts, "counts": self.counts,
                "details": self.details,
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks]}


def check_drill(send_request_ids: Iterable[int], sends_per_message_id: dict[str, int]) -> tuple[list[Check], dict]:
    """Check a drill's outcome. `sends_per_message_id` is the sandbox's count
    (SolapiSandbox.sends_per_message_id()), taken after the run settled. Returns the checks and
    the counts to print."""
    from django.db.models import Count

    from billing.audit import audit_accounts
    from billing.models import Hold, HoldStatus
    from messaging.models import Chunk, Message

    ids = list(send_request_ids)
    messages = {row["id"]: row for row in Message.objects.filter(send_request_id__in=ids).values(
        "id", "status", "accepted_at", "failure_class", "price")}
    by_status = Counter(m["status"] for m in messages.values())
    chunks = Counter(Chunk.objects.filter(send_request_id__in=ids).values_list("status", flat=True))
    failure_classes = Counter(m["failure_class"] for m in messages.values() if m["status"] == "failed")
    checks = []

    # 1. Every message final, every chunk finalized.
    not_final = {s: n for s, n in by_status.items() if s not in FINAL}
    open_chunks = {s: n for s, n in chunks.items() if s != "finalized"}
    checks.append(Check("every message in a final state", not not_final and not open_chunks and bool(messages),
                        f"{len(messages)} messages: {_fmt(by_status)}; chunks: {_fmt(chunks)}"
                        + (f"; NOT FINAL {_fmt(not_final)}" if not_final else "")
                        + (f"; OPEN CHUNKS {_fmt(open_chunks)}" if open_chunks else "")))

    # 2. Exactly once, by the sandbox's count, and our records agree with it.
    sends = {int(k): v for k, v in sends_per_message_id.items() if str(k).isdigit()}
    ours = {k: v for k, v in sends.items() if k in messages}
    duplicates = {k: v for k, v in ours.items() if v != 1}
    accepted_here = {i for i, m in messages.items() if m["status"] in ACCEPTED}
    never_reached = accepted_here - ours.keys()
    # Accepted by Solapi, but recorded as failed before acceptance (released: sent for free), or still open.
    misrecorded = {i: messages[i]["status"] for i in ours
                   if messages[i]["status"] not in ACCEPTED
                   and not (messages[i]["status"] == "failed" and messages[i]["accepted_at"])}
    checks.append(Check(
        "accepted messages sent exactly once", not duplicates and not never_reached and not misrecorded,
        f"sandbox accepted {len(ours)} of our messages, {sum(ours.values())} sends, max {max(ours.values(), default=0)}"
        f" per message; we recorded {len(accepted_here)} accepted"
        + (f"; DUPLICATES {len(duplicates)} e.g. {list(duplicates.items())[:5]}" if duplicates else "")
        + (f"; ACCEPTED HERE, NEVER AT SOLAPI {len(never_reached)} e.g. {sorted(never_reached)[:5]}"
           if never_reached else "")
        + (f"; ACCEPTED AT SOLAPI, RECORDED {Counter(misrecorded.values())} e.g. {list(misrecorded)[:5]}"
           if misrecorded else "")))

    # 3. The ledger audit.
    problems = audit_accounts()
    checks.append(Check("billing_audit clean", not problems, "; ".join(problems[:5]) or "no problems"))

    # 4. No hold left open; each hold matches its message.
    holds = {h["message_id"]: h for h in Hold.objects.filter(message_id__in=list(messages)).values(
        "message_id", "status", "amount", "captured_amount", "refunded")}
    hold_states = Counter(h["status"] for h in holds.values())
    open_holds = hold_states.get(HoldStatus.HELD, 0)
    checks.append(Check("no hold left open", open_holds == 0,
                        f"{len(holds)} holds: {_fmt(hold_states)}"))
    mismatched = []
    for message_id, message in messages.items():
        hold = holds.get(message_id)
        captured = hold is not None and hold["status"] == HoldStatus.CAPTURED
        if message["status"] in ACCEPTED:
            ok = captured and hold["captured_amount"] == message["price"]
        elif message["status"] == "failed" and message["accepted_at"]:
            ok = captured and hold["refunded"]
        elif message["status"] == "failed":
            ok = hold is None or hold["status"] == HoldStatus.RELEASED
        else:
            ok = hold is None or hold["status"] != HoldStatus.HELD
        if not ok:
            mismatched.append((message_id, message["status"], hold and hold["status"]))
    checks.append(Check("holds match outcomes", not mismatched,
                        f"captured for accepted, released for failed; {len(mismatched)} mismatched"
                        + (f" e.g. {mismatched[:5]}" if mismatched else "")))

    attempts = Counter()
    from messaging.models import DeliveryAttempt

    for row in (DeliveryAttempt.objects.filter(chunk__send_request_id__in=ids)
                .values("operation", "http_status", "error_code").annotate(n=Count("id"))):
        outcome = row["http_status"] or row["error_code"] or "no answer"
        attempts[f"{row['operation']} {outcome}"] += row["n"]
    counts = {
        "messages": _fmt(by_status),
        "failure classes": _fmt(failure_classes) or "none",
        "sandbox": f"{len(ours)} message ids accepted, {sum(ours.values())} sends",
        "Solapi calls (DeliveryAttempt)": _fmt(attempts),
    }
    return checks, counts


def _fmt(counter: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0])))


# --- waiting, with beat's recovery ---------------------------------------------------------------------


class Recovery:
    """Beat's two recovery tasks, called directly. The relay runs on every tick; the stale-chunk
    sweep only once `grace` seconds have passed without the run settling."""

    def __init__(self, *, grace: float = GRACE_SECONDS, stale: int = STALE_SECONDS):
        self.grace = grace
        self.stale = stale
        self.redispatched = 0
        self.resumed = 0
        self.calls = 0
        self.errors: list[str] = []
        self._started = time.monotonic()

    def tick(self) -> None:
        from django.test import override_settings

        from messaging.pipeline.tasks import redispatch_undispatched, resume_stale_chunks

        self.calls += 1
        with override_settings(MESSAGING_STALE_CHUNK_SECONDS=self.stale, MESSAGING_REDISPATCH_AFTER_SECONDS=5):
            try:
                self.redispatched += redispatch_undispatched()
                if time.monotonic() - self._started >= self.grace:
                    self.resumed += resume_stale_chunks()
            except Exception as error:  # SQS may still be unreachable
                self.errors.append(f"{type(error).__name__}: {error}"[:200])

    def summary(self) -> str:
        if not (self.redispatched or self.resumed):
            return f"not needed ({self.calls} calls found nothing)"
        return (f"NEEDED: redispatch_undispatched published {self.redispatched}, resume_stale_chunks resumed "
                f"{self.resumed} chunk(s)" + (f"; {len(self.errors)} calls failed" if self.errors else ""))


def settle(ids: list[int], *, timeout: float, recovery: Recovery | None = None, every: float = 5.0) -> float:
    started = last = time.monotonic()
    while not is_settled(ids):
        now = time.monotonic()
        if now - started > timeout:
            return float("nan")
        if recovery and now - last >= every:
            recovery.tick()
            last = now
        time.sleep(0.2)
    return time.monotonic() - started


def _outcome(name: str, ids: list[int], stack: Stack, facts: dict[str, Any]) -> DrillOutcome:
    checks, counts = check_drill(ids, stack.sandbox.sends_per_message_id())
    return DrillOutcome(name, checks, counts, facts)


def _in_flight(ids: list[int]) -> bool:
    from messaging.models import Message

    return Message.objects.filter(send_request_id__in=ids, status__in=IN_FLIGHT).exists()


# --- the drills --------------------------------------------------------------------------------------------


def kill_drill(stack: Stack, *, messages: int, kills: int, seed: int) -> DrillOutcome:
    banner(f"drill 1/4: the worker is SIGKILLed {kills} times at random during a {messages:,}-message run")
    rng = random.Random(seed)
    stack.sandbox.reset()
    # Slower Solapi calls stretch the run, so that every kill lands while messages are in flight.
    stack.sandbox.set_latency(DRILL_LATENCY_MS)
    academy = seed_academy(f"drill-kill-{seed}", messages, phone_offset=50_000_000)
    worker = stack.start_worker("kill", env=DRILL_ENV)
    began = time.monotonic()
    sent = send(academy, messages)
    ids = [sent.id]
    log = []
    for number in range(1, kills + 1):
        time.sleep(rng.uniform(0.2, 1.5))
        in_flight = _in_flight(ids)
        worker.kill()
        log.append({"kill": number, "at_s": round(time.monotonic() - began, 1), "work_in_flight": in_flight,
                    "accepted_so_far": stack.sandbox.accepted_total})
        print(f"  kill {number:>2} at {log[-1]['at_s']:>5.1f} s: work in flight {in_flight}, "
              f"sandbox accepted {log[-1]['accepted_so_far']}", flush=True)
        worker = stack.start_worker("kill", env=DRILL_ENV)
    recovery = Recovery()
    waited = settle(ids, timeout=300, recovery=recovery)
    worker.stop()
    facts = {"kills": f"{len(log)} SIGKILLs of the worker's process group, "
                      f"{sum(k['work_in_flight'] for k in log)} with messages in flight; restarted each time",
             "settled": f"{time.monotonic() - began:.0f} s after the send ({waited:.0f} s after the last kill)",
             "recovery": recovery.summary(), "load": loadavg()}
    outcome = _outcome("kill", ids, stack, facts)
    outcome.details["kills"] = log
    return outcome


def solapi_drill(stack: Stack, *, messages: int) -> DrillOutcome:
    banner(f"drill 2/4: Solapi faults (10% 5xx, 5% accept-then-time-out, bursts of 429) on {messages:,} messages")
    stack.sandbox.reset()
    stack.sandbox.set_fault_rates("*", error_5xx=0.10, accept_then_timeout=0.05, burst_429=0.03, burst_length=5,
                                  hang_seconds=5)
    academy = seed_academy("drill-solapi", messages, phone_offset=60_000_000)
    worker = stack.start_worker("solapi", env=DRILL_ENV)
    sent = send(academy, messages)
    # Besides the random bursts, one sure burst of 8 consecutive 429s once sending is under way.
    _wait(lambda: stack.sandbox.accepted_total > 0, 120)
    stack.sandbox.fail_next("*", times=8, action="429")
    recovery = Recovery()
    waited = settle([sent.id], timeout=400, recovery=recovery)
    worker.stop()
    faults = Counter(r.fault for r in stack.sandbox.request_log if r.fault)
    stack.sandbox.clear_faults()
    facts = {"faults injected": _fmt(faults), "calls to the sandbox": len(stack.sandbox.request_log),
             "settled": f"{waited:.0f} s after the send", "recovery": recovery.summary(), "load": loadavg()}
    return _outcome("solapi", [sent.id], stack, facts)


def sqs_drill(stack: Stack, *, messages: int, outage: float) -> DrillOutcome:
    banner(f"drill 3/4: the local SQS is stopped for {outage:.0f} s during a {messages:,}-message run")
    stack.sandbox.reset()
    stack.sandbox.set_latency(DRILL_LATENCY_MS)  # so that the outage catches tasks mid-run
    academy = seed_academy("drill-sqs", messages, phone_offset=70_000_000)
    worker = stack.start_worker("sqs", env=DRILL_ENV)
    began = time.monotonic()
    sent = send(academy, messages)
    from messaging.models import Chunk

    # Down once the run is under way: the worker has split the send into chunks and is holding their
    # credit (chunk by chunk; the sends follow, the queue being first in, first out), nothing sent yet.
    _wait(lambda: Chunk.objects.filter(send_request_id=sent.id, status="held").exists(), 120)
    accepted_at_down = stack.sandbox.accepted_total
    stack.sqs.down()
    down_at = time.monotonic()
    print(f"  SQS down at {down_at - began:.1f} s (sandbox accepted {accepted_at_down} so far)", flush=True)
    during = send(academy, 100)  # the API keeps accepting sends; their publish fails
    print(f"  a 100-recipient send during the outage: answered in {during.seconds:.1f} s, "
          f"dispatched={during.dispatched}", flush=True)
    time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
    stack.sqs.up()
    up_at = time.monotonic()
    print(f"  SQS up after {up_at - down_at:.1f} s (sandbox accepted {stack.sandbox.accepted_total}); "
          f"worker alive: {worker.alive}", flush=True)
    ids = [sent.id, during.id]
    recovery = Recovery()
    waited = settle(ids, timeout=300, recovery=recovery)
    alive = worker.alive
    worker.stop()
    facts = {"outage": f"{up_at - down_at:.0f} s, from {down_at - began:.1f} s after the send; sandbox accepted "
                       f"{accepted_at_down} before it",
             "send during the outage": f"answered in {during.seconds:.1f} s, dispatched={during.dispatched}",
             "settled": f"{waited:.0f} s after SQS came back", "worker survived": alive,
             "recovery": recovery.summary(), "load": loadavg()}
    outcome = _outcome("sqs", ids, stack, facts)
    # Two checks beyond the four, for this drill: the worker rides the outage out, and the outage
    # delays messages but fails none (messaging/pipeline/outbox.py's promise).
    outcome.checks.append(Check("worker survived the outage", alive, "the same worker process ran on"))
    from messaging.models import Message

    lost = Message.objects.filter(send_request_id__in=ids, status="failed").values_list("failure_class", flat=True)
    outcome.checks.append(Check("no message failed for the outage", not lost,
                                f"{len(lost)} failed: {_fmt(Counter(lost)) or 'none'}"))
    return outcome


def lost_queue_checks(worker, ids: list[int]) -> list[Check]:
    """The lost-queue drill's checks beyond check_drill's: the same worker process ran on (it is
    the only consumer, so a settled run means it resumed by itself), its failed receives were
    logged sparingly, and no message failed."""
    from messaging.models import Message

    log = worker.log()
    events = Counter(event for line in log.splitlines()
                     for event in ("sqs_receive_failed", "sqs_queue_missing", "sqs_receive_resumed") if event in line)
    failed = Message.objects.filter(send_request_id__in=ids, status="failed").values_list("failure_class", flat=True)
    return [
        # "Error in timer": kombu swallowed an error in its polling loop, and the queue is never polled again.
        Check("worker survived the lost queue",
              worker.alive and "Unrecoverable error" not in log and "Error in timer" not in log,
              f"the same process ran on; its log: {_fmt(events) or 'no receive failed'}"),
        Check("failed receives logged sparingly", events["sqs_receive_failed"] <= 20,
              f"{events['sqs_receive_failed']} sqs_receive_failed lines (one per queue, reason and 30 s)"),
        Check("no message failed for the lost queue", not failed,
              f"{len(failed)} failed: {_fmt(Counter(failed)) or 'none'}"),
    ]


def queue_drill(stack: Stack, *, messages: int, outage: float) -> DrillOutcome:
    banner(f"drill 4/4: the local SQS is stopped for {outage:.0f} s and started empty (queues gone) during a "
           f"{messages:,}-message run")
    from dataclasses import replace

    from django.conf import settings

    from messaging.models import Chunk, ChunkStatus
    from messaging.pipeline.queues import ALL_QUEUES

    stack.sandbox.reset()
    stack.sandbox.set_latency(DRILL_LATENCY_MS)
    # Up to MESSAGING_INTERACTIVE_MAX_RECIPIENTS a send goes to the interactive queue, above to the bulk queue.
    small = settings.MESSAGING_INTERACTIVE_MAX_RECIPIENTS // 2
    academy = seed_academy("drill-queue", messages + 500 + 2 * small, phone_offset=80_000_000)
    used = [messages]

    def send_to(recipients: int) -> Sent:
        """A send to `recipients` parents no other send of this drill writes to."""
        start, used[0] = used[0], used[0] + recipients
        return send(replace(academy, students=academy.students[start:start + recipients]))

    worker = stack.start_worker("queue", env=DRILL_ENV)
    began = time.monotonic()
    run = send(replace(academy, students=academy.students[:messages]))
    # Under way, with chunks still to send. Not "a chunk is held": a chunk carried in one hop
    # (tasks.deliver_chunk) is held for milliseconds, and a 50 ms poll can miss every one of them
    # (it did, once, in `make drill`).
    _wait(lambda: stack.sandbox.accepted_total > 0 and Chunk.objects.filter(
        send_request_id=run.id, status__in=(ChunkStatus.QUEUED, ChunkStatus.HELD)).exists(), 120)
    # Published just before: the busy worker has most likely not received these dispatches yet.
    just_before = [send_to(200), send_to(small)]
    accepted_at_stop = stack.sandbox.accepted_total
    stack.sqs.stop()
    stopped_at = time.monotonic()
    unchunked = [s.id for s in just_before if not Chunk.objects.filter(send_request_id=s.id).exists()]
    print(f"  SQS stopped at {stopped_at - began:.1f} s (sandbox accepted {accepted_at_stop}); dispatches still "
          f"in the queue: {len(unchunked)} of {len(just_before)}", flush=True)
    during = send_to(100)  # its publish fails; the relay owes it
    time.sleep(max(0.0, outage - (time.monotonic() - stopped_at)))
    stack.sqs.start()  # a new, empty server on the same port
    started_at = time.monotonic()
    # Nobody else publishes until the queues are back: the worker must create them by itself.
    _wait(lambda: set(ALL_QUEUES) <= set(stack.sqs.queue_names()), 120, "the worker to create its queues again")
    recreated = time.monotonic() - started_at
    after = [send_to(200), send_to(small)]
    print(f"  SQS started empty after {started_at - stopped_at:.1f} s; the worker created both queues again in "
          f"{recreated:.1f} s; worker alive: {worker.alive}; sends after: dispatched={[s.dispatched for s in after]}",
          flush=True)
    ids = [run.id, *(s.id for s in just_before), during.id, *(s.id for s in after)]
    recovery = Recovery()
    waited = settle(ids, timeout=300, recovery=recovery)
    queues = stack.sqs.queue_names()
    checks = lost_queue_checks(worker, ids)
    worker.stop()
    facts = {"outage": f"{started_at - stopped_at:.0f} s stopped, then started empty, from {stopped_at - began:.1f} s "
                       f"after the send; sandbox accepted {accepted_at_stop} before it",
             "lost with the queue": f"{len(unchunked)} dispatch(es) not yet run, and the chain steps waiting",
             "queues created again": f"by the worker, {recreated:.1f} s after SQS came back",
             "sends during / after": f"dispatched={during.dispatched} / {[s.dispatched for s in after]}",
             "settled": f"{waited:.0f} s after SQS came back", "recovery": recovery.summary(), "load": loadavg()}
    outcome = _outcome("queue", ids, stack, facts)
    outcome.checks += checks
    missing = [name for name in ALL_QUEUES if name not in queues]
    outcome.checks.append(Check("both queues exist again", not missing,
                                f"{', '.join(queues)}" + (f"; MISSING {missing}" if missing else "")))
    return outcome


def _wait(predicate: Callable[[], bool], timeout: float, what: str = "the drill's run to start") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="kill,solapi,sqs,queue,twice,dbblips,storm")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--kills", type=int, default=KILLS)
    parser.add_argument("--outage", type=float, default=OUTAGE_SECONDS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--storm-seconds", type=float, default=300)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    only = args.only.split(",")
    from benchmarks import edge_drills
    began = time.monotonic()
    outcomes: list[DrillOutcome] = []
    with Stack("drill", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        print(f"drill settings: {DRILL_ENV}; stale-chunk sweep after {STALE_SECONDS} s, from {GRACE_SECONDS} s "
              f"of waiting on", flush=True)
        info = machine()
        drills = {
            "kill": lambda: kill_drill(stack, messages=args.messages, kills=args.kills, seed=args.seed),
            "solapi": lambda: solapi_drill(stack, messages=args.messages),
            "sqs": lambda: sqs_drill(stack, messages=args.messages, outage=args.outage),
            "queue": lambda: queue_drill(stack, messages=args.messages, outage=args.outage),
            # The edge drills (docs/exactly-once.md), in their own module.
            "twice": lambda: edge_drills.twice_drill(stack),
            "dbblips": lambda: edge_drills.dbblips_drill(stack, messages=args.messages),
            "storm": lambda: edge_drills.storm_drill(stack, seconds=args.storm_seconds),
        }
        for name in only:
            outcome = drills[name]()
            outcomes.append(outcome)
            print("\n".join(outcome.lines()), flush=True)
    elapsed = time.monotonic() - began
    print(f"\n== drills: {sum(o.passed for o in outcomes)}/{len(outcomes)} passed in {elapsed / 60:.1f} min")
    for outcome in outcomes:
        print(f"  {'PASS' if outcome.passed else 'FAIL'}  {outcome.name}")
    path = write_json("drill", {"seconds": elapsed, "machine": info, "settings": DRILL_ENV,
                                "drills": [o.to_json() for o in outcomes]})
    print(f"wrote {path}")
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
