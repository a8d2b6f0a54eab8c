"""`make bench`: every benchmark on one stack (one fresh database, one local SQS, one sandbox),
each printing its table and writing benchmarks/results/<name>.json, then a summary: every goal
with its measured value and met/missed (each benchmark's goals()), which a full run also writes
into the README's benchmark table (benchmarks/readme_table.py).

    python -m benchmarks.run_all [--quick] [--keep-db]
        [--only api_latency,compose_preview,report_apply,ledger_writes,throughput,scaling,retention]

--quick runs smaller samples (a smoke test of the benchmarks themselves; not for the record): it,
like --only, leaves the README alone and prints what a full run would write there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks import (
    api_latency,
    compose_preview,
    ledger_writes,
    readme_table,
    report_apply,
    retention,
    scaling,
    throughput,
)
from benchmarks.goals import HEADERS, Goal, rows
from benchmarks.stack import RESULTS_DIR, Stack, loadavg, machine, table, write_json

ALL = ("api_latency", "compose_preview", "report_apply", "ledger_writes", "throughput", "scaling", "retention")
# Each benchmark's goals(result): its targets, measured, met or missed.
GOALS = {"api_latency": api_latency.goals, "compose_preview": compose_preview.goals,
         "report_apply": report_apply.goals, "ledger_writes": ledger_writes.goals, "throughput": throughput.goals,
         "scaling": scaling.goals,
         "retention": retention.goals}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples: check the benchmarks run")
    parser.add_argument("--only", default=",".join(ALL))
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    began = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with Stack("bench", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        info = machine()
        print(f"machine: {info.get('cpu_model')}, {info['nproc']} cores, {info.get('memory_gib')} GiB, Python "
              f"{info['python']}, PostgreSQL {info.get('postgresql', '–')}; load {loadavg()}", flush=True)
        if "api_latency" in only:
            result = api_latency.run(stack, samples=api_latency.QUICK_SAMPLES if args.quick else None)
            _finish("api_latency", result, info, api_latency.report)
            results["api_latency"] = result
        if "compose_preview" in only:
            result = compose_preview.run(stack, samples=10 if args.quick else compose_preview.SAMPLES)
            _finish("compose_preview", result, info, compose_preview.report)
            results["compose_preview"] = result
        if "report_apply" in only:
            result = report_apply.run(stack, posts=3 if args.quick else report_apply.POSTS)
            _finish("report_apply", result, info, report_apply.report)
            results["report_apply"] = result
        if "ledger_writes" in only:
            result = ledger_writes.run(stack, chunks=2 if args.quick else ledger_writes.CHUNKS)
            _finish("ledger_writes", result, info, ledger_writes.report)
            results["ledger_writes"] = result
        if "throughput" in only:
            options = ({"messages": 2000, "baseline_messages": 30, "chunk_sizes": (500, 1000), "repeats": 1,
                        "debug_on_run": False} if args.quick else {})
            result = throughput.run(stack, **options)
            _finish("throughput", result, info, throughput.report)
            results["throughput"] = result
        if "scaling" in only:
            options = {"messages": 400, "levels": (1, 2), "broadcast": 5000} if args.quick else {}
            result = scaling.run(stack, **options)
            _finish("scaling", result, info, scaling.report)
            results["scaling"] = result
    if "retention" in only:
        # In a process and on a database of its own (one Stack per process): its million back-dated
        # rows must have the lowest ids, as old rows do in production (the prune finds them by a
        # binary search over the ids), and they and the prune's dead tuples stay out of the other
        # benchmarks' tables. It prints its own table and writes results/retention.json.
        subprocess.run([sys.executable, "-m", "benchmarks.retention", *(["--quick"] if args.quick else [])],
                       check=True)
        results["retention"] = json.loads((RESULTS_DIR / "retention.json").read_text())
    from project import clock  # Django is set up by the stack

    elapsed = time.monotonic() - began
    goals = summary_goals(results)
    print("\n" + table(f"Summary: the goals ({elapsed / 60:.1f} min)", HEADERS, rows(goals)))
    write_json("summary", {"seconds": elapsed, "quick": args.quick, "only": only, "machine": info,
                           "summary": rows(goals)})
    text = readme_table.section(goals, info=info, when=clock.kst_now(), commit=readme_table.commit(),
                                minutes=elapsed / 60, quick=args.quick)
    print("\n" + readme_table.write(text, for_the_record=for_the_record(quick=args.quick, only=only)))
    return 0


def _finish(name: str, result: dict[str, Any], info: dict[str, Any], report) -> None:
    result["machine"] = info
    print("\n" + report(result), flush=True)
    print(f"wrote {write_json(name, result)}", flush=True)


def for_the_record(*, quick: bool, only: Sequence[str]) -> bool:
    """Whether this run may write the README's table: every benchmark, at full length."""
    return not quick and set(only) >= set(ALL)


def summary_goals(results: dict[str, dict[str, Any]]) -> list[Goal]:
    """Every goal of the benchmarks that ran, in the order they ran."""
    return [goal for name, result in results.items() for goal in GOALS[name](result)]


if __name__ == "__main__":
    sys.exit(main())
