"""The staff console's preview: POST /api/v1/messages/preview for a class (반) of 1,000 students,
as the compose page calls it while staff type (session login, X-Tenant, class_ids, a body one
character longer each time). Target (issue 14): p95 under 150 ms.

Each request goes through the whole Django stack in this process (django.test.Client: URL
routing, session authentication, the tenant, the serializer, messaging.compose.previews, the
JSON answer); only the network hop to a WSGI server is left out. With --profile, one more
request runs under cProfile (benchmarks/profile.py) and where its time goes is printed.

    python -m benchmarks.compose_preview [--samples 40] [--profile]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from benchmarks.goals import Goal
from benchmarks.profile import profile_step
from benchmarks.stack import (
    BODY,
    Stack,
    banner,
    loadavg,
    machine,
    percentile,
    seed_academy,
    table,
    write_json,
)

CLASS_SIZE = 1000
SAMPLES = 40
WARMUP = 3
TARGET_P95_MS = 150.0


def _preview(client, tenant: str, class_id: int, body: str) -> tuple[float, int, int, float]:
    from django.db import connection

    payload = {"class_ids": [class_id], "send_to": "parent", "message_mode": "sms", "purpose": "info", "body": body}
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.post("/api/v1/messages/preview", data=json.dumps(payload), content_type="application/json",
                           HTTP_X_TENANT=tenant)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if response.status_code != 200:
        raise RuntimeError(f"preview answered {response.status_code}: {response.content[:300]!r}")
    if response.json()["sendable"] != CLASS_SIZE:
        raise RuntimeError(f"preview counted {response.json()['sendable']} recipients, not {CLASS_SIZE}")
    # DEBUG is on (dev secrets), so Django records the request's queries; the test client resets them per request.
    return seconds, len(response.content), len(connection.queries), cpu


def run(stack: Stack, *, samples: int = SAMPLES, profile: bool = False) -> dict[str, Any]:
    from django.test import Client

    from harness.academies import make_class

    banner(f"Compose preview: POST /api/v1/messages/preview for a class of {CLASS_SIZE:,} (as the page types)")
    academy = seed_academy("preview", CLASS_SIZE, phone_offset=30_000_000)
    school_class = make_class(academy.tenant, "1,000명 반", academy.students)
    client = Client()
    client.force_login(academy.user)
    slug = academy.tenant.slug

    def typed(n: int) -> str:
        return BODY + " 안내" * (n % 12)  # SMS, then LMS past 90 bytes, as typing goes

    for n in range(WARMUP):
        _preview(client, slug, school_class.id, typed(n))
    rows = [_preview(client, slug, school_class.id, typed(n)) for n in range(samples)]
    latencies, cpu = [r[0] for r in rows], [r[3] for r in rows]
    result = {
        "name": "compose_preview", "database": stack.database_note, "recipients": CLASS_SIZE, "samples": samples,
        "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
        "max_ms": max(latencies) * 1000,
        # This process's CPU per request (the web side, without PostgreSQL's): a busy machine
        # stretches the wall time, much less this.
        "cpu_p50_ms": percentile(cpu, 50) * 1000, "cpu_p95_ms": percentile(cpu, 95) * 1000,
        "load": loadavg(), "response_kib": rows[-1][1] / 1024, "sql_queries": rows[-1][2],
        "target_p95_ms": TARGET_P95_MS,
    }
    result["met"] = result["p95_ms"] < TARGET_P95_MS
    print(f"  p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms → "
          f"{'met' if result['met'] else 'MISSED'} (target p95 < {TARGET_P95_MS:.0f} ms)", flush=True)
    if profile:
        result["profile"] = profile_step(
            f"preview, class of {CLASS_SIZE:,}", lambda: _preview(client, slug, school_class.id, typed(1)), top=25)
    return result


def report(result: dict[str, Any]) -> str:
    verdict = "met" if result["met"] else "MISSED"
    out = [table("Compose preview: POST /api/v1/messages/preview, a class of 1,000 (Django test client in-process)",
                 ["recipients", "samples", "p50 ms", "p95 ms", "max ms", "CPU p50 / p95 ms", "answer KiB",
                  "SQL queries", "load", "target"],
                 [[f"{result['recipients']:,}", result["samples"], result["p50_ms"], result["p95_ms"],
                   result["max_ms"], f"{result['cpu_p50_ms']:.0f} / {result['cpu_p95_ms']:.0f}",
                   result["response_kib"], result["sql_queries"], result["load"],
                   f"p95 < {result['target_p95_ms']:.0f} ms: {verdict}"]])]
    if profile := result.get("profile"):
        out += ["", f"--- where the time goes ({profile['wall_s'] * 1000:.0f} ms under cProfile, "
                    f"{profile['sql_statements']} SQL statements): self time by layer",
                "; ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in profile["layers_s"].items()),
                profile["top_cumulative"]]
    return "\n".join(out)


def goals(result: dict[str, Any]) -> list[Goal]:
    return [Goal(f"compose preview, a class of {result['recipients']:,}, p95",
                 f"{result['p95_ms']:.0f} ms (p50 {result['p50_ms']:.0f}; CPU p50 {result['cpu_p50_ms']:.0f})",
                 f"< {result['target_p95_ms']:.0f} ms", result["met"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--profile", action="store_true", help="also profile one request (cProfile)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with Stack("preview", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, samples=args.samples, profile=args.profile)
        result["machine"] = machine()
    print(report(result))
    print(f"\nwrote {write_json('compose_preview', result)}")


if __name__ == "__main__":
    main()
