"""`make bench`: every benchmark on one stack (one fresh database, one local SQS, one sandbox),
each printing its table and writing benchmarks/results/<name>.json, then a summary.

    python -m benchmarks.run_all [--quick] [--only api_latency,compose_preview,throughput,scaling,retention] [--keep-db]

--quick runs smaller samples (a smoke test of the benchmarks themselves; not for the record).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from benchmarks import api_latency, compose_preview, retention, scaling, throughput
from benchmarks.stack import Stack, loadavg, machine, table, write_json

ALL = ("api_latency", "compose_preview", "throughput", "scaling", "retention")


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
        if "throughput" in only:
            options = ({"messages": 2000, "baseline_messages": 30, "chunk_sizes": (500, 1000), "repeats": 1,
                        "debug_off_run": False} if args.quick else {})
            result = throughput.run(stack, **options)
            _finish("throughput", result, info, throughput.report)
            results["throughput"] = result
        if "scaling" in only:
            options = {"messages": 400, "levels": (1, 2), "broadcast": 5000} if args.quick else {}
            result = scaling.run(stack, **options)
            _finish("scaling", result, info, scaling.report)
            results["scaling"] = result
        if "retention" in only:
            # Last: its million old rows (and the prune's dead tuples) stay out of the other benchmarks' tables.
            result = retention.run(stack, **(retention.QUICK if args.quick else {}))
            _finish("retention", result, info, retention.report)
            results["retention"] = result
    elapsed = time.monotonic() - began
    print("\n" + summary(results, elapsed))
    write_json("summary", {"seconds": elapsed, "quick": args.quick, "machine": info,
                           "summary": summary_rows(results)})
    return 0


def _finish(name: str, result: dict[str, Any], info: dict[str, Any], report) -> None:
    result["machine"] = info
    print("\n" + report(result), flush=True)
    print(f"wrote {write_json(name, result)}", flush=True)


def summary_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    if api := results.get("api_latency"):
        for size, r in api["sizes"].items():
            goal = api["goals"].get(size)
            note = f"{r['sqs_calls_max']:.0f} SQS call(s) per request (target 1)"
            if goal:
                note += f"; goal p95 < {goal['goal_p95_ms']:.0f} ms: {'met' if goal['met'] else 'MISSED'}"
            rows.append([f"API p50 / p95, {int(size):,} recipient(s), gunicorn",
                         f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} ms", note])
    if pv := results.get("compose_preview"):
        rows.append([f"compose preview p50 / p95, a class of {pv['recipients']:,}",
                     f"{pv['p50_ms']:.0f} / {pv['p95_ms']:.0f} ms",
                     f"target p95 < {pv['target_p95_ms']:.0f} ms: {'met' if pv['met'] else 'MISSED'} "
                     f"(CPU p50 {pv['cpu_p50_ms']:.0f} ms; load {pv['load']})"])
    if tp := results.get("throughput"):
        head, base = tp["headline"], tp["baseline"]
        rows.append([f"throughput, 10k through 1 worker (chunk {head['chunk_size']})",
                     f"{head['msg_per_s']:.0f} msg/s", f"{tp['ratio']:.0f}× the old loop's {base['msg_per_s']:.1f} "
                     f"msg/s (target ≥ 100×: {'met' if tp['targets']['ratio_met'] else 'MISSED'})"])
        rows.append(["SQS requests per message", f"{head['sqs_per_message']:.4f}",
                     f"old loop {base['sqs_per_message']:.2f} (target ≤ 0.05: "
                     f"{'met' if tp['targets']['sqs_per_message_met'] else 'MISSED'})"])
    if sc := results.get("scaling"):
        rows += [[name, t["value"], f"target {t['goal']}: {'met' if t['met'] else 'MISSED'}"]
                 for name, t in sc["targets"].items()]
    if (rt := results.get("retention")) and not rt.get("skipped"):
        prune = rt["prune"]
        without, during = rt["phases"]
        rows.append([f"prune of {prune['deleted']:,} old rows", f"{prune['rows_per_s']:,.0f} rows/s",
                     f"longest DELETE {prune['longest_statement_ms']:.0f} ms"])
        rows.append(["pipeline without / with the prune",
                     f"{without['msg_per_s']:.0f} / {during['msg_per_s']:.0f} msg/s",
                     f"per-message latency p50 {without['latency_p50_s']:.2f} / {during['latency_p50_s']:.2f} s"])
    return rows


def summary(results: dict[str, dict[str, Any]], elapsed: float) -> str:
    return table(f"Summary ({elapsed / 60:.1f} min)", ["measure", "value", "note"], summary_rows(results))


if __name__ == "__main__":
    sys.exit(main())
