"""API latency of POST /api/v1/messages/send for 1, 100 and 1,000 recipients, and the broker
(SQS) calls each request makes.

Each request goes through the whole Django stack in this process (django.test.Client: URL
routing, token authentication, the tenant, the serializer, messaging.compose.send_requests, and the
publish of its one dispatch task to the local SQS); only the network hop to a WSGI server is
left out. No worker runs: the published tasks are purged afterwards.

SQS requests are counted at the local SQS server around each request. The first publish of a
process (and the first to each queue) also looks the queue up (ListQueues / GetQueueAttributes,
CreateQueue when it does not exist yet): those cold requests are reported on their own, then
the timed requests run warm. The target is 1 broker call per request, whatever its size.

    python -m benchmarks.api_latency [--samples 40]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

from benchmarks.stack import BODY, Stack, banner, machine, median, percentile, seed_academy, table, write_json

SIZES = (1, 100, 1000)
SAMPLES = {1: 40, 100: 30, 1000: 20}
WARMUP = 3


def _post(client, academy, recipients: int):
    from django.db import connection

    body = {"student_ids": academy.student_ids[:recipients], "send_to": "parent", "message_mode": "sms",
            "purpose": "info", "body": BODY}
    started = time.perf_counter()
    response = client.post("/api/v1/messages/send", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Token {academy.token}")
    seconds = time.perf_counter() - started
    if response.status_code != 202:
        raise RuntimeError(f"send answered {response.status_code}: {response.content[:300]!r}")
    # DEBUG is on (dev secrets), so Django records the request's queries; the test client resets them per request.
    return seconds, response.json(), len(connection.queries)


def _measured(stack: Stack, client, academy, recipients: int) -> dict[str, Any]:
    with stack.sqs_window() as sqs:
        seconds, answer, queries = _post(client, academy, recipients)
    return {"seconds": seconds, "sqs": dict(sqs), "queries": queries, "dispatched": answer["dispatched"],
            "accepted": answer["accepted"]}


def run(stack: Stack, *, samples: dict[int, int] | None = None) -> dict[str, Any]:
    from django.test import Client

    samples = samples or SAMPLES
    banner(f"API latency: POST /api/v1/messages/send for {', '.join(map(str, SIZES))} recipients")
    academy = seed_academy("api", max(SIZES), phone_offset=20_000_000)
    client = Client()
    # Cold: the first request of the process to each queue (1 recipient: interactive; 100: bulk).
    cold = {size: _measured(stack, client, academy, size) for size in (1, 100)}
    results = {}
    for size in SIZES:
        for _ in range(WARMUP):
            _post(client, academy, size)
        rows = [_measured(stack, client, academy, size) for _ in range(samples.get(size, 20))]
        latencies = [r["seconds"] for r in rows]
        calls = [sum(r["sqs"].values()) for r in rows]
        operations = Counter()
        for r in rows:
            operations.update(r["sqs"])
        results[size] = {
            "recipients": size, "samples": len(rows),
            "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
            "max_ms": max(latencies) * 1000, "mean_ms": sum(latencies) / len(latencies) * 1000,
            "sqs_calls_median": median(calls), "sqs_calls_max": max(calls),
            "sqs_by_operation_per_request": {op: n / len(rows) for op, n in operations.items()},
            "sql_queries_median": median([r["queries"] for r in rows]),
            "all_dispatched": all(r["dispatched"] for r in rows),
        }
        print(f"  {size:>5} recipients: p50 {results[size]['p50_ms']:.0f} ms, p95 {results[size]['p95_ms']:.0f} ms, "
              f"{results[size]['sqs_calls_median']:.0f} SQS call(s)", flush=True)
    stack.purge_queues()
    met = all(r["sqs_calls_max"] == 1 for r in results.values())
    return {"name": "api_latency", "database": stack.database_note, "cold": cold,
            "sizes": {str(k): v for k, v in results.items()},
            "target": {"broker_calls_per_request": 1, "met": met}}


def report(result: dict[str, Any]) -> str:
    rows = [[f"{r['recipients']:,}", r["samples"], r["p50_ms"], r["p95_ms"], r["max_ms"],
             f"{r['sqs_calls_median']:g} (max {r['sqs_calls_max']:g})",
             ", ".join(f"{op} {n:g}" for op, n in sorted(r["sqs_by_operation_per_request"].items())),
             f"{r['sql_queries_median']:g}"]
            for r in result["sizes"].values()]
    cold = "; ".join(f"{size} recipient(s): {c['seconds'] * 1000:.0f} ms, "
                     + (", ".join(f"{op} {n}" for op, n in sorted(c["sqs"].items())) or "no SQS call")
                     for size, c in result["cold"].items())
    verdict = (f"target: 1 broker call per request, whatever the size → "
               f"{'MET' if result['target']['met'] else 'MISSED'} (warm)")
    return "\n".join([
        table("API latency: POST /api/v1/messages/send (warm; Django test client in-process, local SQS)",
              ["recipients", "samples", "p50 ms", "p95 ms", "max ms", "SQS calls/request", "SQS operations",
               "SQL queries"], rows),
        "", verdict, f"cold (first publish of the process to each queue): {cold}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=0, help="samples per size (default: 40/30/20)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with Stack("api", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, samples={size: args.samples for size in SIZES} if args.samples else None)
        result["machine"] = machine()
    print(report(result))
    print(f"\nwrote {write_json('api_latency', result)}")


if __name__ == "__main__":
    main()
