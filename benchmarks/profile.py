"""Where the time goes: cProfile of the API's send service and of one chunk's pipeline steps,
run in this process against the same stack as the benchmarks (fresh PostgreSQL, local SQS,
sandbox with 50 ms per HTTP call).

For each step: wall time, SQL statements, self time by layer (PostgreSQL round trips, the Django
ORM, pydantic/solapi models, HTTP, the project's own code …) and the top functions.

    python -m benchmarks.profile [--recipients 10000] [--chunk 1000] [--top 12]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from benchmarks.stack import PROJECT_DIR, Stack, machine, seed_academy, send, table, write_json

LAYERS = (
    ("PostgreSQL round trips (psycopg)", ("psycopg",)),
    ("Django ORM and SQL compiler", ("django/db",)),
    ("Django other", ("django/",)),
    ("pydantic / solapi SDK models", ("pydantic", "solapi/")),
    ("HTTP client (httpx, waiting on Solapi)", ("httpx", "httpcore", "h11", "ssl.py", "socket.py")),
    ("kombu / celery / botocore (publish)", ("kombu", "celery", "botocore", "boto3", "urllib3")),
    ("json / encodings", ("json/", "encodings", "<built-in method _codecs")),
    ("project code", (f"{PROJECT_DIR}/messaging", f"{PROJECT_DIR}/billing", f"{PROJECT_DIR}/tenants")),
)


def _layer(filename: str, function: str) -> str:
    where = f"{filename} {function}"
    for name, needles in LAYERS:
        if any(needle in where for needle in needles):
            return name
    if filename == "~" and ("socket" in function or "select" in function or "poll" in function):
        return "HTTP client (httpx, waiting on Solapi)"
    return "other (stdlib, builtins)"


def profile_step(name: str, function: Callable[[], Any], *, top: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    profiler = cProfile.Profile()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        profiler.enable()
        function()
        profiler.disable()
        wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    layers: dict[str, float] = defaultdict(float)
    for (filename, _line, function_name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        layers[_layer(filename, function_name)] += tottime
    buffer = io.StringIO()
    stats.stream = buffer
    stats.sort_stats("cumulative").print_stats(top)
    slowest = sorted(((q["time"], q["sql"][:110]) for q in queries.captured_queries), reverse=True)[:5]
    return {"step": name, "wall_s": wall, "sql_statements": len(queries.captured_queries),
            "layers_s": dict(sorted(layers.items(), key=lambda kv: -kv[1])),
            "slowest_sql": [{"seconds": float(t), "sql": s} for t, s in slowest],
            "top_cumulative": _trim(buffer.getvalue())}


def _trim(text: str) -> str:
    lines = [line.replace(str(PROJECT_DIR) + "/", "").replace(".venv/lib/python3.11/site-packages/", "")
             for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def run(stack: Stack, *, recipients: int, chunk: int, top: int) -> dict[str, Any]:
    from django.test import override_settings

    from messaging.models import Chunk
    from messaging.pipeline import delivery, one_hop

    academy = seed_academy("profile", recipients, phone_offset=80_000_000)
    send(academy, 10)  # warm: the first publish looks the queues up
    steps = [profile_step(f"API send_request_create, {recipients:,} recipients",
                          lambda: send(academy, recipients), top=top)]
    steps.append(profile_step(f"API send_request_create, {chunk:,} recipients", lambda: send(academy, chunk), top=top))
    sent = send(academy, chunk)
    with override_settings(MESSAGING_CHUNK_SIZE=chunk):
        (chunk_id,) = delivery.split_into_chunks(sent.id)
    steps.append(profile_step(f"reserve_chunk ({chunk:,} messages)", lambda: delivery.reserve_chunk(chunk_id), top=top))
    steps.append(profile_step(f"send_chunk ({chunk:,} messages, 3 Solapi calls at {stack.sandbox_latency_ms:.0f} ms)",
                              lambda: delivery.send_chunk(delivery.Lease(chunk_id, task_id="profile")), top=top))
    steps.append(profile_step(f"finalize_chunk ({chunk:,} messages)", lambda: delivery.finalize_chunk(chunk_id),
                              top=top))
    assert Chunk.objects.get(id=chunk_id).status == "finalized"
    # What the worker runs for each chunk of a broadcast (tasks.deliver_chunk): the three steps in one task.
    sent = send(academy, chunk)
    with override_settings(MESSAGING_CHUNK_SIZE=chunk):
        (chunk_id,) = delivery.split_into_chunks(sent.id)
    steps.append(profile_step(f"one_hop.carry ({chunk:,} messages: the three steps in one task)",
                              lambda: one_hop.carry([chunk_id], task_id="profile"), top=top))
    assert Chunk.objects.get(id=chunk_id).status == "finalized"
    stack.purge_queues()
    return {"name": "profile", "database": stack.database_note, "recipients": recipients, "chunk": chunk,
            "steps": steps}


def report(result: dict[str, Any]) -> str:
    layer_names = [name for name, _ in LAYERS] + ["other (stdlib, builtins)"]
    rows = []
    for step in result["steps"]:
        rows.append([step["step"], step["wall_s"], step["sql_statements"],
                     *[step["layers_s"].get(name, 0.0) for name in layer_names]])
    short = ["PG", "ORM", "Django", "pydantic", "HTTP", "publish", "json", "project", "other"]
    out = [table("Where the time goes (seconds of self time by layer; cProfile, main thread)",
                 ["step", "wall s", "SQL", *short], rows), ""]
    for step in result["steps"]:
        out += [f"--- {step['step']}: {step['wall_s']:.3f} s, {step['sql_statements']} SQL statements",
                "slowest SQL: " + "; ".join(f"{q['seconds']:.3f}s {q['sql']}" for q in step["slowest_sql"][:3]),
                step["top_cumulative"], ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    with Stack("profile") as stack:
        print(stack.describe(), flush=True)
        result = run(stack, recipients=args.recipients, chunk=args.chunk, top=args.top)
        result["machine"] = machine()
    print(report(result))
    print(f"wrote {write_json('profile', result)}")


if __name__ == "__main__":
    main()
