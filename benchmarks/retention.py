"""Retention: the prune of a million old rows, while a broadcast is delivered, in one run.

- Old rows: ROWS rows past every retention age (400 days old), written with INSERT … SELECT
  generate_series (PostgreSQL only): per old message (final, in a finalized chunk of 5) two
  MessageOutcome rows and one DeliveryReport, per chunk 5 DeliveryAttempts, and unmatched
  reports and TaskResults besides; 40 % outcomes, 30 % reports, 20 % attempts, 10 % task
  results. Analyzed, as autovacuum would have them.
- The pipeline: one `celery -A project worker --concurrency 2` (chunk 1000) delivers
  broadcasts of BROADCAST messages one after another, through the real service, the local SQS
  and the sandbox (50 ms per call), alternately without and with the prune running (the
  machine is shared and its load drifts: alternating keeps that out of the comparison), until
  the prune is done, ending on one without it.
- The prune: messaging.operations.retention.prune_old_records() with its batch size
  (RETENTION_BATCH_SIZE, 5,000 ids per DELETE), called again and again with a time budget of
  SLICE_SECONDS while a "with" broadcast runs, in a thread of this process with a database
  connection of its own. That is harsher than beat, which runs it for at most
  RETENTION_TIME_BUDGET_SECONDS every 10 minutes (in a worker pool process).

Printed: the prune's rows/s, rows and statements per table, its longest single DELETE; for each
broadcast msg/s end to end and per-message latency (accepted by Solapi − accepted by the API:
p50, p95, max), and how much of it the prune overlapped; exactly-once and billing_audit. It
prints numbers; nothing is asserted on time.

    python -m benchmarks.retention [--rows 1000000] [--broadcast 5000] [--quick]
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from benchmarks.goals import Goal
from benchmarks.stack import (
    Stack,
    banner,
    loadavg,
    machine,
    median,
    percentile,
    seed_academy,
    send,
    status_counts,
    table,
    wait_settled,
    write_json,
)

ROWS = 1_000_000
BROADCAST = 5_000
# The prune's time budget per call: short, so that it pauses soon after a broadcast ends.
SLICE_SECONDS = 2.0
CHUNK_SIZE = 1000
# Old messages per chunk, attempts per chunk: shapes of the old rows.
OLD_CHUNK_MESSAGES = 5
ATTEMPTS_PER_CHUNK = 5
MAX_BROADCASTS = 24


def insert_old_rows(academy, rows: int) -> dict[str, Any]:
    """About `rows` rows past every retention age, in the four pruned tables; returns the counts
    and how long the inserts took."""
    from django.db import connection

    from messaging.models import SendRequest

    messages = rows // 5  # 2 outcomes + 1 report each = 3/5 of the rows
    chunks = messages // OLD_CHUNK_MESSAGES  # × 5 attempts = 1/5
    unmatched_reports = rows // 10
    task_results = rows - 2 * messages - messages - chunks * ATTEMPTS_PER_CHUNK - unmatched_reports
    send_request = SendRequest.objects.create(tenant=academy.tenant, mode="sms", send_to="parent", body="old",
                                              fingerprint="retention-benchmark", queue="old", estimated_cost=0)
    began = time.perf_counter()
    # Every old row: 400 days ago, a few milliseconds apart, rising with its id as inserts do.
    base = "(now() - interval '400 days')"
    statements = [
        ("UPDATE messaging_sendrequest SET created = {base}, completed = {base} WHERE id = %(sr)s", {}),
        ("""INSERT INTO messaging_chunk (send_request_id, index, status, solapi_group_id, lease_token,
                transient_failures, rate_limited, pause_class, last_error, created, updated, sent)
            SELECT %(sr)s, i, 'finalized', 'G4V' || i, '', 0, 0, '', '', {base} + i * interval '50 ms',
                   {base} + i * interval '50 ms', {base} + i * interval '50 ms'
            FROM generate_series(0, %(chunks)s - 1) i ORDER BY i""", {}),
        ("""INSERT INTO messaging_message (tenant_id, send_request_id, chunk_id, recipient_kind, phone, message_type,
                fallback_type, delivered_type, text, subject, variables, price, status, skip_reason, failure_class,
                failure_reason, solapi_status_code, solapi_message_id, accepted_at, completed_at, created, updated)
            SELECT %(tenant)s, %(sr)s, c.id, 'parent', '0109' || lpad(i::text, 7, '0'), 'SMS', '', 'SMS',
                   '학생 학부모님, 내일 휴원입니다.', '', '{{}}'::jsonb, 13, 'delivered', '', '', '', '4000', '',
                   {base} + i * interval '10 ms', {base} + i * interval '10 ms', {base} + i * interval '10 ms',
                   {base} + i * interval '10 ms'
            FROM generate_series(0, %(messages)s - 1) i
            JOIN messaging_chunk c ON c.send_request_id = %(sr)s AND c.index = i / %(per_chunk)s
            ORDER BY i""", {}),
        ("""INSERT INTO messaging_messageoutcome (tenant_id, message_id, event, success, amount, recipient_summary,
                failure_class, failure_reason, created)
            SELECT m.tenant_id, m.id, e.event, true, 13, '010-****-0000', '', '', m.created
            FROM messaging_message m CROSS JOIN (VALUES ('accepted'), ('delivered')) e(event)
            WHERE m.send_request_id = %(sr)s ORDER BY m.id, e.event""", {}),
        ("""INSERT INTO messaging_deliveryattempt (chunk_id, operation, task_id, solapi_group_id, http_status,
                error_code, failure_class, ambiguous, detail, duration_ms, created)
            SELECT c.id, (ARRAY['create_group', 'add_messages', 'send_group', 'get_group', 'get_group'])[k], '',
                   c.solapi_group_id, 200, '', '', false, '', 55, c.created + k * interval '1 ms'
            FROM messaging_chunk c CROSS JOIN generate_series(1, %(attempts)s) k
            WHERE c.send_request_id = %(sr)s ORDER BY c.id, k""", {}),
        ("""INSERT INTO messaging_deliveryreport (event_data_id, message_id, solapi_message_id, status_code,
                message_type, payload, received)
            SELECT 'old-' || m.id, m.id, 'M4V' || m.id, '4000', 'SMS', '{{"statusCode": "4000"}}'::jsonb, m.created
            FROM messaging_message m WHERE m.send_request_id = %(sr)s ORDER BY m.id""", {}),
        ("""INSERT INTO messaging_deliveryreport (event_data_id, message_id, solapi_message_id, status_code,
                message_type, payload, received)
            SELECT 'old-unmatched-' || i, NULL, 'M4X' || i, '4000', 'SMS', '{{}}'::jsonb, {base} + i * interval '10 ms'
            FROM generate_series(1, %(unmatched)s) i ORDER BY i""", {}),
        ("""INSERT INTO django_celery_results_taskresult (task_id, status, content_type, content_encoding,
                task_name, result, date_created, date_done)
            SELECT 'old-' || i, 'SUCCESS', 'application/json', 'utf-8', 'messaging.finalize', '{{"chunk": 1}}',
                   {base} + i * interval '10 ms', {base} + i * interval '10 ms'
            FROM generate_series(1, %(task_results)s) i ORDER BY i""", {}),
    ]
    params = {"sr": send_request.id, "tenant": academy.tenant.id, "chunks": chunks, "messages": messages,
              "per_chunk": OLD_CHUNK_MESSAGES, "attempts": ATTEMPTS_PER_CHUNK, "unmatched": unmatched_reports,
              "task_results": task_results}
    with connection.cursor() as cursor:
        for sql, _ in statements:
            cursor.execute(sql.format(base=base), params)
        for name in ("messaging_chunk", "messaging_message", "messaging_messageoutcome", "messaging_deliveryattempt",
                     "messaging_deliveryreport", "django_celery_results_taskresult"):
            cursor.execute(f"ANALYZE {name}")
    pruned = {"messaging_messageoutcome": 2 * messages, "messaging_deliveryattempt": chunks * ATTEMPTS_PER_CHUNK,
              "messaging_deliveryreport": messages + unmatched_reports,
              "django_celery_results_taskresult": task_results}
    return {"seconds": time.perf_counter() - began, "old_messages": messages, "old_chunks": chunks,
            "prunable": pruned, "prunable_total": sum(pruned.values())}


class Pruner(threading.Thread):
    """retention.prune_old_records() in slices of SLICE_SECONDS (its time budget), on a database
    connection of its own, while `active` is set; timed, with the intervals it ran in."""

    def __init__(self) -> None:
        super().__init__(name="prune", daemon=True)
        self.active, self.idle, self.stop = threading.Event(), threading.Event(), threading.Event()
        self.idle.set()
        self.done = False
        self.error: BaseException | None = None
        self.intervals: list[tuple[float, float]] = []
        self.tables: dict[str, dict[str, float]] = {}

    def run(self) -> None:
        from django.db import connection

        from messaging.operations import retention

        try:
            while not self.stop.is_set() and not self.done:
                if not self.active.wait(timeout=0.2):
                    continue
                self.idle.clear()
                began = time.perf_counter()
                summary = retention.prune_old_records(time_budget=SLICE_SECONDS)
                self.intervals.append((began, time.perf_counter()))
                self._add(summary)
                self.done = summary.finished
                self.idle.set()
        except BaseException as error:  # reported by the caller
            self.error = error
        finally:
            self.idle.set()
            connection.close()

    def pause(self) -> None:
        """Stop after the current slice, and wait for it."""
        self.active.clear()
        self.idle.wait()

    def _add(self, summary) -> None:
        for part in summary.tables:
            total = self.tables.setdefault(part.table, {"deleted": 0, "statements": 0, "largest_statement_rows": 0,
                                                        "longest_statement_s": 0.0, "seconds": 0.0})
            total["deleted"] += part.deleted
            total["statements"] += part.statements
            total["largest_statement_rows"] = max(total["largest_statement_rows"], part.largest_statement_rows)
            total["longest_statement_s"] = max(total["longest_statement_s"], part.longest_statement_s)
            total["seconds"] += part.seconds

    def overlap(self, began: float, ended: float) -> float:
        """The share of [began, ended] during which the prune ran."""
        ran = sum(max(0.0, min(ended, end) - max(began, start)) for start, end in self.intervals)
        return ran / (ended - began)


def broadcast(academy, messages: int, *, pruner: Pruner, prune: bool) -> dict[str, Any]:
    """One broadcast through the service and the worker, timed to settlement, with the prune
    running or paused, and each message's latency from the API's acceptance to Solapi's."""
    from messaging.models import Message

    if prune:
        pruner.active.set()
    began = time.perf_counter()
    sent = send(academy, messages)
    wait_settled([sent.id], timeout=600)
    ended = time.perf_counter()
    pruner.pause()
    latencies = [(accepted - created).total_seconds() for created, accepted in
                 Message.objects.filter(send_request_id=sent.id, accepted_at__isnull=False)
                 .values_list("created", "accepted_at")]
    return {"send_request": sent.id, "messages": messages, "prune": prune, "seconds": ended - began,
            "msg_per_s": messages / (ended - began),
            "latency_p50_s": median(latencies), "latency_p95_s": percentile(latencies, 95),
            "latency_max_s": max(latencies, default=float("nan")), "accepted": len(latencies),
            "statuses": status_counts([sent.id]), "prune_overlap": pruner.overlap(began, ended)}


def _exactly_once(stack: Stack, send_request_ids: list[int], sent: int, accepted_before: int) -> dict[str, Any]:
    """Each of this benchmark's messages accepted by the sandbox exactly once."""
    from messaging.models import Message

    per_message = stack.sandbox.sends_per_message_id()
    ids = Message.objects.filter(send_request_id__in=send_request_ids).values_list("id", flat=True)
    times = [per_message.get(str(message_id), 0) for message_id in ids]
    return {"sent": sent, "sandbox_accepted": stack.sandbox.accepted_total - accepted_before,
            "never_sent": sum(1 for n in times if n == 0), "sent_twice": sum(1 for n in times if n > 1)}


def _phase(runs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A phase's broadcasts together: msg/s over their total time; latency: the median of their
    p50s, the worst of their p95s and maxima."""
    total_messages = sum(r["messages"] for r in runs)
    return {"phase": name, "broadcasts": len(runs), "messages": total_messages,
            "msg_per_s": total_messages / sum(r["seconds"] for r in runs),
            "latency_p50_s": median([r["latency_p50_s"] for r in runs]),
            "latency_p95_s": max(r["latency_p95_s"] for r in runs),
            "latency_max_s": max(r["latency_max_s"] for r in runs)}


def run(stack: Stack, *, rows: int = ROWS, messages: int = BROADCAST) -> dict[str, Any]:
    from billing.audit import audit

    banner(f"retention: prune {rows:,} old rows while {messages:,}-message broadcasts are delivered")
    if stack.vendor != "postgresql":
        print("  skipped: needs PostgreSQL (generate_series; the numbers are about its locks)", flush=True)
        return {"name": "retention", "skipped": "needs PostgreSQL", "database": stack.database_note}
    academy = seed_academy("retention", messages, phone_offset=50_000_000)
    old = insert_old_rows(academy, rows)
    print(f"  inserted {old['prunable_total']:,} old rows (+ {old['old_messages']:,} messages, "
          f"{old['old_chunks']:,} chunks, not pruned) in {old['seconds']:.1f} s", flush=True)
    accepted_before = stack.sandbox.accepted_total
    worker = stack.start_worker("retention", concurrency=2, env={"MESSAGING_CHUNK_SIZE": CHUNK_SIZE})
    time.sleep(1.0)  # into its first long poll
    pruner = Pruner()
    pruner.start()
    runs: list[dict[str, Any]] = []
    # Without, with, without, with …: the machine's load drifts (it is shared), so the two
    # phases alternate rather than follow each other. Until the prune is done, ending on a
    # broadcast without it.
    while len(runs) < MAX_BROADCASTS:
        prune = len(runs) % 2 == 1
        if prune and pruner.done:
            break
        runs.append(broadcast(academy, messages, pruner=pruner, prune=prune))
        last = runs[-1]
        print(f"  {'with' if prune else 'without'} the prune: {last['msg_per_s']:.0f} msg/s, latency p50 "
              f"{last['latency_p50_s']:.2f} s, prune running {last['prune_overlap']:.0%} of it; load {loadavg()}",
              flush=True)
    pruner.stop.set()
    pruner.join()
    worker.stop()
    if pruner.error is not None:
        raise pruner.error
    baseline = [r for r in runs if not r["prune"]]
    during = [r for r in runs if r["prune"]]
    sent = sum(r["messages"] for r in runs)
    problems = audit()
    tables = [{"table": name, **{k: v for k, v in t.items() if k != "longest_statement_s"},
               "expected": old["prunable"].get(name, 0), "longest_statement_ms": t["longest_statement_s"] * 1000,
               "rows_per_s": t["deleted"] / t["seconds"] if t["seconds"] else float("nan")}
              for name, t in pruner.tables.items()]
    deleted = sum(t["deleted"] for t in tables)
    seconds = sum(end - start for start, end in pruner.intervals)
    return {
        "name": "retention", "database": stack.database_note, "sandbox_latency_ms": stack.sandbox_latency_ms,
        "rows": rows, "old": old, "broadcast_messages": messages, "chunk_size": CHUNK_SIZE, "concurrency": 2,
        "prune": {"deleted": deleted, "seconds": seconds, "rows_per_s": deleted / seconds if seconds else float("nan"),
                  "longest_statement_ms": max((t["longest_statement_ms"] for t in tables), default=0.0),
                  "tables": tables, "finished": pruner.done, "slice_seconds": SLICE_SECONDS},
        "broadcasts": runs,
        "phases": [_phase(baseline, "without prune"), _phase(during, "with prune")],
        "exactly_once": _exactly_once(stack, [r["send_request"] for r in runs], sent, accepted_before),
        "billing_audit": problems,
    }


def report(result: dict[str, Any]) -> str:
    if result.get("skipped"):
        return f"Retention: skipped ({result['skipped']})"
    prune, old = result["prune"], result["old"]
    table_rows = [[t["table"], t["expected"], t["deleted"], t["statements"], t["largest_statement_rows"],
                   t["longest_statement_ms"], t["seconds"], t["rows_per_s"]] for t in prune["tables"]]
    table_rows.append(["all", old["prunable_total"], prune["deleted"], sum(t["statements"] for t in prune["tables"]),
                       max(t["largest_statement_rows"] for t in prune["tables"]), prune["longest_statement_ms"],
                       prune["seconds"], prune["rows_per_s"]])
    phase_rows = [[p["phase"], p["broadcasts"], p["messages"], p["msg_per_s"], p["latency_p50_s"], p["latency_p95_s"],
                   p["latency_max_s"]] for p in result["phases"]]
    broadcast_rows = [["with prune" if r["prune"] else "without prune", r["send_request"], r["seconds"],
                       r["msg_per_s"], r["latency_p50_s"], r["latency_p95_s"], r["latency_max_s"],
                       f"{r['prune_overlap']:.0%}"] for r in result["broadcasts"]]
    once = result["exactly_once"]
    checks = (f"exactly once: {once['sent']:,} messages sent, the sandbox accepted {once['sandbox_accepted']:,}; "
              f"never sent {once['never_sent']}, sent twice {once['sent_twice']}; billing_audit: "
              f"{'clean' if not result['billing_audit'] else result['billing_audit']}")
    notes = (f"{result['database']}; one worker, --concurrency 2, chunk {result['chunk_size']}; sandbox "
             f"{result['sandbox_latency_ms']:.0f} ms per call; the prune in its own thread and database connection, "
             f"batches of RETENTION_BATCH_SIZE ids, in slices of {result['prune']['slice_seconds']:.0f} s while a "
             f"'with' broadcast runs; latency = Solapi accepted − API accepted, per message")
    return "\n".join([
        table(f"Retention: pruning {old['prunable_total']:,} old rows (prune {prune['rows_per_s']:,.0f} rows/s, "
              f"longest DELETE {prune['longest_statement_ms']:.0f} ms)",
              ["table", "old rows", "deleted", "DELETEs", "most rows in one", "longest DELETE ms", "seconds",
               "rows/s"], table_rows),
        "",
        table(f"The pipeline without and with the prune running ({result['broadcast_messages']:,}-message broadcasts)",
              ["phase", "broadcasts", "messages", "msg/s", "latency p50 s", "latency p95 s (worst)",
               "latency max s"], phase_rows),
        "",
        table("Each broadcast", ["phase", "send request", "seconds", "msg/s", "latency p50 s", "latency p95 s",
                                 "latency max s", "prune running"], broadcast_rows),
        "", checks, notes])


def goals(result: dict[str, Any]) -> list[Goal]:
    """Retention has no numeric goal ("the prune does not stall the pipeline"): its rate and the
    pipeline without and with it, for the reader to judge; exactly once is checked."""
    if result.get("skipped"):
        return [Goal("retention: the prune of old rows", f"skipped ({result['skipped']})")]
    prune, (without, during), once = result["prune"], result["phases"], result["exactly_once"]
    clean = once["never_sent"] == 0 and once["sent_twice"] == 0 and not result["billing_audit"]
    return [
        Goal(f"retention: prune of {prune['deleted']:,} old rows", f"{prune['rows_per_s']:,.0f} rows/s, longest "
             f"DELETE {prune['longest_statement_ms']:.0f} ms" + ("" if prune["finished"] else ", NOT finished")),
        Goal(f"retention: {result['broadcast_messages']:,}-message broadcasts without / with the prune",
             f"{without['msg_per_s']:.0f} / {during['msg_per_s']:.0f} msg/s; latency p50 "
             f"{without['latency_p50_s']:.2f} / {during['latency_p50_s']:.2f} s"),
        Goal("retention run: exactly once, billing_audit", "clean" if clean else "NOT CLEAN", "clean", clean),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--broadcast", type=int, default=BROADCAST)
    parser.add_argument("--quick", action="store_true", help="50,000 rows, 1,000-message broadcasts")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    options = QUICK if args.quick else {"rows": args.rows, "messages": args.broadcast}
    with Stack("retention", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, **options)
        result["machine"] = machine()
    print(report(result))
    print(f"\nwrote {write_json('retention', result)}")


QUICK = {"rows": 50_000, "messages": 1000}


if __name__ == "__main__":
    main()
