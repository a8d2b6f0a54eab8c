"""Scaling and fairness.

Scaling: 10,000 messages through one `celery -A project worker` with --concurrency 1, 2 and 4
(prefork pool processes: how a worker is scaled on one machine, and what the Procfile's worker
does by default with nproc = 2), chunk size 1000. On this 2-core machine PostgreSQL, the local
SQS, the sandbox and the worker share the same cores, so this shows where it stops scaling.

Fairness: academy A sends a 10,000-parent broadcast (bulk queue); while it is in flight, academy
B sends one message at a time (interactive queue). B's latency is timed from its API call to
Solapi accepting the message and to its chunk being finalized; first with the worker idle, then
during the broadcast, then during a broadcast with B's sends forced onto the bulk queue
(MESSAGING_INTERACTIVE_MAX_RECIPIENTS=0: what one queue for everything would give).

    python -m benchmarks.scaling [--messages 10000] [--concurrency 1,2,4]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.stack import (
    Stack,
    banner,
    is_settled,
    machine,
    median,
    seed_academy,
    send,
    table,
    wait_settled,
    write_json,
)
from benchmarks.throughput import pipeline_run
from harness.waiting import wait_until

MESSAGES = 10_000
CONCURRENCY = (1, 2, 4)
CHUNK_SIZE = 1000
PROBES = 6
PROBE_GAP_SECONDS = 1.0


def scaling(stack: Stack, academy, *, messages: int, levels: tuple[int, ...]) -> list[dict[str, Any]]:
    runs = []
    for level in levels:
        result = pipeline_run(stack, academy, messages=messages, label=f"conc{level}", concurrency=level,
                              env={"MESSAGING_CHUNK_SIZE": CHUNK_SIZE})
        runs.append(result)
        print(f"  --concurrency {level}: {result['msg_per_s']:.0f} msg/s end to end "
              f"({result['worker_msg_per_s']:.0f} after the API answered)", flush=True)
    return runs


class Probe:
    """One 1-message send of academy B, followed until accepted and until settled."""

    def __init__(self, academy):
        from messaging.models import Message, SendRequest

        self.started = time.perf_counter()
        self.sent = send(academy, 1)
        self.message_id = Message.objects.get(send_request_id=self.sent.id).id
        self.queue = SendRequest.objects.get(id=self.sent.id).queue
        self.accepted_s: float | None = None
        self.settled_s: float | None = None

    def poll(self) -> bool:
        """Note what happened since the last look; True once settled."""
        from messaging.models import Message

        now = time.perf_counter() - self.started
        if self.accepted_s is None:
            status = Message.objects.filter(id=self.message_id).values_list("status", flat=True).first()
            if status in ("accepted", "delivered"):
                self.accepted_s = now
        if self.accepted_s is not None and self.settled_s is None and is_settled([self.sent.id]):
            self.settled_s = now
        return self.settled_s is not None

    def row(self) -> dict[str, Any]:
        return {"api_s": self.sent.seconds, "accepted_s": self.accepted_s, "settled_s": self.settled_s,
                "queue": self.queue}


def _follow(probes: list[Probe], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.poll() for p in probes):
        if time.monotonic() > deadline:
            raise TimeoutError("a fairness probe did not settle")
        time.sleep(0.02)


def _broadcast_in_flight(send_request_id: int) -> bool:
    from messaging.models import Chunk

    return Chunk.objects.filter(send_request_id=send_request_id).exclude(status="queued").exists()


def fairness(stack: Stack, big, small, *, messages: int) -> dict[str, Any]:
    from django.test import override_settings

    worker = stack.start_worker("fairness", concurrency=2, env={"MESSAGING_CHUNK_SIZE": CHUNK_SIZE})
    time.sleep(1.0)
    idle = []
    for _ in range(PROBES):
        probe = Probe(small)
        _follow([probe], timeout=60)
        idle.append(probe.row())
    phases = {"idle": idle}
    for phase, interactive_max in (("during broadcast", None), ("during broadcast, one queue", 0)):
        broadcast = send(big, messages)
        wait_until(lambda b=broadcast: _broadcast_in_flight(b.id), timeout=60, what="the broadcast to start")
        probes = []
        overrides = {} if interactive_max is None else {"MESSAGING_INTERACTIVE_MAX_RECIPIENTS": interactive_max}
        with override_settings(**overrides):
            for _ in range(PROBES):
                probes.append(Probe(small))
                gap_end = time.monotonic() + PROBE_GAP_SECONDS
                while time.monotonic() < gap_end:
                    for probe in probes:
                        probe.poll()
                    time.sleep(0.02)
        _follow(probes, timeout=180)
        broadcast_s = wait_settled([broadcast.id], timeout=300)
        phases[phase] = [p.row() for p in probes]
        phases[phase + " (broadcast)"] = {"send_request": broadcast.id, "settled_after_probes_s": broadcast_s}
        print(f"  {phase}: accepted p50 {median([p['accepted_s'] for p in phases[phase]]):.2f} s", flush=True)
    worker.stop()
    summary = {}
    for phase in ("idle", "during broadcast", "during broadcast, one queue"):
        accepted = [p["accepted_s"] for p in phases[phase]]
        settled = [p["settled_s"] for p in phases[phase]]
        summary[phase] = {"probes": len(accepted), "accepted_p50_s": median(accepted), "accepted_max_s": max(accepted),
                          "settled_p50_s": median(settled), "settled_max_s": max(settled)}
    return {"probes": phases, "summary": summary, "broadcast_messages": messages, "concurrency": 2,
            "chunk_size": CHUNK_SIZE}


def run(stack: Stack, *, messages: int = MESSAGES, levels: tuple[int, ...] = CONCURRENCY) -> dict[str, Any]:
    banner(f"scaling: {messages:,} messages with --concurrency {', '.join(map(str, levels))}; then fairness")
    big = seed_academy("broadcaster", messages, phone_offset=30_000_000)
    small = seed_academy("neighbour", 1, phone_offset=40_000_000)
    runs = scaling(stack, big, messages=messages, levels=levels)
    fair = fairness(stack, big, small, messages=messages)
    return {"name": "scaling", "database": stack.database_note, "sandbox_latency_ms": stack.sandbox_latency_ms,
            "mode": "one worker, --concurrency N (prefork pool processes)", "chunk_size": CHUNK_SIZE,
            "runs": runs, "fairness": fair}


def report(result: dict[str, Any]) -> str:
    base = result["runs"][0]["msg_per_s"]
    rows = [[r["concurrency"], f"{r['messages']:,}", r["total_seconds"], r["worker_msg_per_s"], r["msg_per_s"],
             f"{r['msg_per_s'] / base:.2f}×", r["sqs_per_message"]] for r in result["runs"]]
    fair = result["fairness"]["summary"]
    fair_rows = [[phase, s["probes"], s["accepted_p50_s"], s["accepted_max_s"], s["settled_p50_s"], s["settled_max_s"]]
                 for phase, s in fair.items()]
    return "\n".join([
        table(f"Scaling: {result['mode']}, chunk {result['chunk_size']}",
              ["processes", "messages", "total s", "msg/s after API", "msg/s end to end", "vs 1", "SQS req/msg"],
              rows),
        "",
        table(f"Fairness: academy B's 1-message send while academy A's {result['fairness']['broadcast_messages']:,}-"
              f"message broadcast is in flight (1 worker, --concurrency 2)",
              ["B's send", "probes", "accepted p50 s", "accepted max s", "settled p50 s", "settled max s"],
              fair_rows),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with Stack("scaling", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, messages=args.messages, levels=tuple(int(c) for c in args.concurrency.split(",")))
        result["machine"] = machine()
    print(report(result))
    print(f"\nwrote {write_json('scaling', result)}")


if __name__ == "__main__":
    main()
