"""Scale out and fairness (issue 17's goals), each run checked for exactly once.

Scale out: one academy's broadcast through 1, 2 and 4 `celery -A project worker` processes
(--concurrency 1 each), with the Solapi sandbox answering in 500 ms per call: sending is
I/O-bound then, so 2 cores are enough to show whether more workers mean more messages per
second (goals: 2 workers ≥ 1.8× one, 4 workers ≥ 3.2×). Chunks of 100, so there are enough
of them to spread.

Fairness: academy A's 50,000-message broadcast is in flight; academy B sends a 1,000-message
broadcast and, once a second, a 1-message send. Goals: B's broadcast finishes within 2× the
time it takes alone (the same workers, measured first), and B's 1-message sends are accepted
by Solapi within 1 s p95. The Procfile's workers as deployed: `worker` (the bulk queue,
--concurrency 2) and `worker-interactive`; the sandbox at its usual latency. B's broadcast is
timed FAIRNESS_REPEATS times alone and as many times during A's, and the medians compared: one
run depends on where A's chunks are when B's arrives.

    python -m benchmarks.scaling [--messages 4000] [--workers 1,2,4] [--broadcast 50000] [--only fairness]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.goals import HEADERS, Goal, rows
from benchmarks.stack import (
    Stack,
    banner,
    exactly_once,
    is_settled,
    machine,
    median,
    percentile,
    seed_academy,
    send,
    table,
    wait_settled,
    write_json,
)
from benchmarks.throughput import pipeline_run
from harness.waiting import wait_until

SCALE_MESSAGES = 4_000
SCALE_WORKERS = (1, 2, 4)
SCALE_CHUNK_SIZE = 100
SCALE_LATENCY_MS = 500.0
BROADCAST = 50_000
NEIGHBOUR_BROADCAST = 1_000
CHUNK_SIZE = 1000
PROBE_GAP_SECONDS = 1.0
FAIRNESS_REPEATS = 3
# The Procfile's two workers (docs/celery-on-sqs.md, "One pool per queue"): started from its command lines.
PROCFILE_WORKERS = ("worker", "worker-interactive")
PARTS = ("scale", "fairness")
# Issue 17's goals: msg/s of N workers against one; B's broadcast during A's against alone; B's
# 1-message sends accepted by Solapi, p95 seconds.
SCALE_GOALS = {2: 1.8, 4: 3.2}
GOALS = {"broadcast_ratio": 2.0, "probe_p95_s": 1.0}


def scale_out(stack: Stack, academy, *, messages: int, levels: tuple[int, ...]) -> list[dict[str, Any]]:
    runs = []
    stack.sandbox.set_latency(SCALE_LATENCY_MS)
    try:
        for workers in levels:
            result = pipeline_run(stack, academy, messages=messages, label=f"workers{workers}", concurrency=1,
                                  workers=workers, env={"MESSAGING_CHUNK_SIZE": SCALE_CHUNK_SIZE}, timeout=600)
            result["exactly_once"] = exactly_once(stack, [result["send_request"]])
            runs.append(result)
            print(f"  {workers} worker(s): {result['worker_msg_per_s']:.0f} msg/s after the API answered; "
                  f"exactly once: {'clean' if result['exactly_once']['clean'] else 'NOT CLEAN'}", flush=True)
    finally:
        stack.sandbox.set_latency(stack.sandbox_latency_ms)
    return runs


class Probe:
    """One 1-message send of academy B, followed until Solapi accepted it."""

    def __init__(self, academy):
        from messaging.models import Message

        self.started = time.perf_counter()
        self.sent = send(academy, 1)
        self.message_id = Message.objects.get(send_request_id=self.sent.id).id
        self.accepted_s: float | None = None

    def poll(self) -> bool:
        from messaging.models import Message

        if self.accepted_s is None:
            status = Message.objects.filter(id=self.message_id).values_list("status", flat=True).first()
            if status in ("accepted", "delivered", "failed"):
                self.accepted_s = time.perf_counter() - self.started
        return self.accepted_s is not None


def _timed_broadcast(academy, recipients: int, probes: list[Probe] | None = None, prober=None) -> float:
    """Send a broadcast and wait until it settles, sending a probe a second meanwhile; seconds."""
    began = time.perf_counter()
    sent = send(academy, recipients)
    _probing_until(lambda: is_settled([sent.id]), f"broadcast {sent.id}", probes, prober)
    return time.perf_counter() - began


def _probing_until(done, what: str, probes: list[Probe] | None = None, prober=None) -> None:
    """Wait until `done()`, sending a 1-message probe every PROBE_GAP_SECONDS meanwhile."""
    next_probe = time.monotonic()
    deadline = time.monotonic() + 900
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not settle")
        if prober is not None and time.monotonic() >= next_probe:
            probes.append(Probe(prober))
            next_probe += PROBE_GAP_SECONDS
        for probe in probes or ():
            probe.poll()
        time.sleep(0.05)


def fairness(stack: Stack, big, neighbour, small, *, broadcast: int, repeats: int = FAIRNESS_REPEATS) -> dict[str, Any]:
    workers = [stack.start_procfile(name, ready_text=" ready.", env={"MESSAGING_CHUNK_SIZE": CHUNK_SIZE})
               for name in PROCFILE_WORKERS]
    time.sleep(1.0)
    alone = [_timed_broadcast(neighbour, NEIGHBOUR_BROADCAST) for _ in range(repeats)]
    idle: list[Probe] = [Probe(small) for _ in range(5)]
    wait_until(lambda: all(p.poll() for p in idle), timeout=60, what="idle probes")
    big_sent = send(big, broadcast)
    wait_until(lambda: not is_settled([big_sent.id]) and _started(big_sent.id), timeout=120,
               what="the broadcast to start")
    probes: list[Probe] = []
    during, big_remaining = [], []
    for _ in range(repeats):
        during.append(_timed_broadcast(neighbour, NEIGHBOUR_BROADCAST, probes, prober=small))
        big_remaining.append(not is_settled([big_sent.id]))
    # B's small sends go on, one a second, for as long as A's broadcast runs: the p95 is of every
    # one of them, not only of the few sent during B's own broadcasts.
    _probing_until(lambda: is_settled([big_sent.id]), f"broadcast {big_sent.id}", probes, prober=small)
    wait_until(lambda: all(p.poll() for p in probes), timeout=120, what="probes during the broadcast")
    big_s = wait_settled([big_sent.id], timeout=1200)
    for worker in workers:
        worker.stop()
    accepted = [p.accepted_s for p in probes]
    alone_s, during_s = median(alone), median(during)
    return {
        "broadcast": broadcast, "big_send_request": big_sent.id, "big_api_s": big_sent.seconds,
        "big_still_running_when_b_finished": all(big_remaining), "big_settled_after_s": big_s,
        "repeats": repeats, "neighbour_alone_runs_s": alone, "neighbour_during_runs_s": during,
        "neighbour_alone_s": alone_s, "neighbour_during_s": during_s, "ratio": during_s / alone_s,
        "idle_probe_p50_s": median([p.accepted_s for p in idle]),
        "probes": len(accepted), "probe_p50_s": median(accepted), "probe_p95_s": percentile(accepted, 95),
        "probe_max_s": max(accepted),
        "exactly_once": exactly_once(stack, [big_sent.id, *(p.sent.id for p in probes + idle)]),
    }


def _started(send_request_id: int) -> bool:
    from messaging.models import Chunk

    return Chunk.objects.filter(send_request_id=send_request_id).exclude(status="queued").exists()


def run(stack: Stack, *, messages: int = SCALE_MESSAGES, levels: tuple[int, ...] = SCALE_WORKERS,
        broadcast: int = BROADCAST, parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    banner(f"scale out: {messages:,} messages through {', '.join(map(str, levels))} workers at "
           f"{SCALE_LATENCY_MS:.0f} ms per Solapi call; fairness: {broadcast:,} vs {NEIGHBOUR_BROADCAST:,} + 1s")
    big = seed_academy("broadcaster", max(messages, broadcast), phone_offset=30_000_000)
    neighbour = seed_academy("neighbour", NEIGHBOUR_BROADCAST, phone_offset=50_000_000)
    small = seed_academy("one-parent", 1, phone_offset=40_000_000)
    runs = scale_out(stack, big, messages=messages, levels=levels) if "scale" in parts else []
    fair = fairness(stack, big, neighbour, small, broadcast=broadcast) if "fairness" in parts else None
    return {"name": "scaling", "database": stack.database_note, "sandbox_latency_ms": stack.sandbox_latency_ms,
            "scale_latency_ms": SCALE_LATENCY_MS, "scale_chunk_size": SCALE_CHUNK_SIZE, "runs": runs,
            "fairness": fair, "targets": targets(runs, fair)}


def targets(runs: list[dict[str, Any]], fair: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each goal of the parts that ran (--only leaves the other part's goals out)."""
    result = {}
    if runs:
        base = runs[0]["worker_msg_per_s"]
        by_workers = {r["workers"]: r for r in runs[1:]}
        # Every level with a goal, measured or not (a run without it misses it), and any other level run.
        for workers in sorted(SCALE_GOALS.keys() | by_workers.keys()):
            goal = SCALE_GOALS.get(workers)
            name = f"{workers} workers vs 1, msg/s (Solapi at {SCALE_LATENCY_MS:.0f} ms per call)"
            if workers not in by_workers:
                result[name] = {"value": "not measured", "goal": f"≥ {goal}×", "met": False}
                continue
            ratio = by_workers[workers]["worker_msg_per_s"] / base
            result[name] = {"value": f"{ratio:.2f}×", "goal": f"≥ {goal}×" if goal else "–",
                            "met": goal is None or ratio >= goal}
    if fair:
        # Medians of FAIRNESS_REPEATS runs each (the name stays: the README's table keys on it).
        result[f"academy B's {NEIGHBOUR_BROADCAST:,} messages during A's {fair['broadcast']:,}, vs alone"] = {
            "value": f"{fair['ratio']:.2f}× ({fair['neighbour_during_s']:.1f} s vs {fair['neighbour_alone_s']:.1f} s)",
            "goal": f"≤ {GOALS['broadcast_ratio']}×", "met": fair["ratio"] <= GOALS["broadcast_ratio"]}
        result["B's 1-message send accepted by Solapi during A's broadcast, p95"] = {
            "value": f"{fair['probe_p95_s']:.2f} s", "goal": f"≤ {GOALS['probe_p95_s']} s",
            "met": fair["probe_p95_s"] <= GOALS["probe_p95_s"]}
    clean = all(r["exactly_once"]["clean"] for r in runs) and (fair is None or fair["exactly_once"]["clean"])
    result["scale-out and fairness runs: exactly once, billing_audit"] = {
        "value": "clean" if clean else "NOT CLEAN", "goal": "clean", "met": clean}
    return result


def goals(result: dict[str, Any]) -> list[Goal]:
    return [Goal(name, t["value"], t["goal"], t["met"]) for name, t in result["targets"].items()]


def report(result: dict[str, Any]) -> str:
    parts = []
    if result["runs"]:
        base = result["runs"][0]["worker_msg_per_s"]
        run_rows = [[r["workers"], f"{r['messages']:,}", r["worker_seconds"], r["worker_msg_per_s"],
                     f"{r['worker_msg_per_s'] / base:.2f}×", r["solapi_calls"],
                     "clean" if r["exactly_once"]["clean"] else "NOT CLEAN"] for r in result["runs"]]
        headers = ["workers", "messages", "s after API", "msg/s after API", "vs 1", "Solapi calls", "exactly once"]
        parts += [table(f"Scale out: one academy's broadcast, Solapi at {result['scale_latency_ms']:.0f} ms per call, "
                        f"chunks of {result['scale_chunk_size']}, workers with --concurrency 1", headers, run_rows), ""]
    fair = result["fairness"]
    if fair:
        runs = " / ".join(f"{a:.1f}" for a in fair["neighbour_alone_runs_s"])
        during = " / ".join(f"{d:.1f}" for d in fair["neighbour_during_runs_s"])
        parts += [table(f"Fairness: academy B during academy A's {fair['broadcast']:,}-message broadcast (the "
                        "Procfile's worker, --concurrency 2, and worker-interactive; Solapi at "
                        f"{result['sandbox_latency_ms']:.0f} ms)",
                        ["measure", "value"],
                        [[f"B's 1,000-message broadcast alone, median ({runs})", f"{fair['neighbour_alone_s']:.1f} s"],
                         [f"the same during A's broadcast, median ({during})", f"{fair['neighbour_during_s']:.1f} s"],
                         ["B's 1-message sends accepted (idle p50)", f"{fair['idle_probe_p50_s']:.2f} s"],
                         [f"B's 1-message sends accepted during ({fair['probes']}): p50 / p95 / max",
                          f"{fair['probe_p50_s']:.2f} / {fair['probe_p95_s']:.2f} / {fair['probe_max_s']:.2f} s"],
                         ["A still running when each of B's finished",
                          "yes" if fair["big_still_running_when_b_finished"] else "NO"],
                         ["A's broadcast API answer", f"{fair['big_api_s']:.2f} s"]]), ""]
    return "\n".join([*parts, table("Goals", HEADERS, rows(goals(result)))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=SCALE_MESSAGES)
    parser.add_argument("--workers", default=",".join(map(str, SCALE_WORKERS)))
    parser.add_argument("--broadcast", type=int, default=BROADCAST)
    parser.add_argument("--only", choices=PARTS, help="run one part (default: both)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with Stack("scaling", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, messages=args.messages, levels=tuple(int(c) for c in args.workers.split(",")),
                     broadcast=args.broadcast, parts=(args.only,) if args.only else PARTS)
        result["machine"] = machine()
    print(report(result))
    print(f"\nwrote {write_json('scaling', result)}")


if __name__ == "__main__":
    main()
