"""The credit write path, per 1,000-message chunk, before and after issue 17's rewrite.

For each chunk of one academy: reserve (`ledger.hold_credit`) and finalize's settlement
(`settlement.settle`: capture, suppression, the outcome rows, the counts), run in this process
against a fresh PostgreSQL database. Printed per chunk: wall time of each, how long the
academy's credit-account row stayed locked (from the statement that locks it to the commit),
SQL statements, ledger rows written; and chunks per second with one and with two database
connections working on the same academy at once (what a second worker process can add).

"before" is billing/ledger.py and messaging/pipeline/settlement.py exactly as they were at
BEFORE_COMMIT (read from git, loaded as modules of their own; the schema is today's, whose
additions have defaults), so nothing is re-typed. "after" is the code as it is.

    python -m benchmarks.ledger_writes [--chunks 16] [--quick]

Prints numbers; asserts nothing about them. Each variant ends with billing_audit clean.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import types
from decimal import Decimal
from typing import Any

from benchmarks.goals import Goal
from benchmarks.stack import PROJECT_DIR, Stack, machine, median, table, write_json

# The last commit with the per-message, locked write path.
BEFORE_COMMIT = "c7566ed"
CHUNK = 1000
# Fewer make the two-connection rate noisy on a shared machine (docs/benchmarks.md).
CHUNKS = 16
PRICE = Decimal("8.40")


def _module_at(commit: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=PROJECT_DIR, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(name)
    module.__file__ = f"{commit}:{path}"
    sys.modules[name] = module  # dataclasses look their module up there
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own code, from our own git
    return module


def variants() -> dict[str, tuple[Any, Any]]:
    """name → (ledger module, settlement module)."""
    from billing import ledger
    from messaging.pipeline import settlement

    old_ledger = _module_at(BEFORE_COMMIT, "billing/ledger.py", "before_ledger")
    old_settlement = _module_at(BEFORE_COMMIT, "messaging/pipeline/settlement.py", "before_settlement")
    old_settlement.ledger = old_ledger
    return {"before": (old_ledger, old_settlement), "after": (ledger, settlement)}


class LockClock:
    """Time from the statement that takes the account's row lock to the COMMIT that frees it,
    summed over a call's transactions, on this thread's connection."""

    def __init__(self):
        self.locked_seconds = 0.0
        self.statements = 0
        self._since: float | None = None

    def __enter__(self) -> LockClock:
        from django.db import connection

        self._connection = connection
        self._commit = connection.commit
        self._wrapper = connection.execute_wrapper(self._execute)
        self._wrapper.__enter__()
        connection.commit = self._committed
        return self

    def __exit__(self, *exc_info) -> None:
        self._wrapper.__exit__(*exc_info)
        del self._connection.commit

    def _execute(self, execute, sql, params, many, context):
        self.statements += 1
        locks = "creditaccount" in sql and ("FOR UPDATE" in sql or sql.lstrip().startswith(("UPDATE", "WITH")))
        if locks and self._since is None:
            self._since = time.perf_counter()
        return execute(sql, params, many, context)

    def _committed(self) -> None:
        self._commit()
        if self._since is not None:
            self.locked_seconds += time.perf_counter() - self._since
            self._since = None


def prepare_chunk(tenant, index: int) -> list:
    """One send request with CHUNK accepted messages (not timed)."""
    from messaging.models import Message, MessageStatus, SendRequest
    from project import clock

    send_request = SendRequest.objects.create(tenant=tenant, mode="sms", send_to="parent", body="벤치",
                                              fingerprint=f"ledger-bench-{index}", queue="bench",
                                              estimated_cost=PRICE * CHUNK)
    now = clock.now()
    Message.objects.bulk_create([
        Message(tenant=tenant, send_request=send_request, recipient_kind="parent",
                phone=f"010{index:04d}{n:04d}", message_type="SMS", text="벤치", price=PRICE,
                status=MessageStatus.ACCEPTED, accepted_at=now) for n in range(CHUNK)], batch_size=1000)
    return list(Message.objects.filter(send_request=send_request).order_by("id"))


def one_chunk(tenant, messages: list, ledger, settlement) -> dict[str, float]:
    from billing.models import LedgerEntry

    entries_before = LedgerEntry.objects.count()
    requests = [ledger.HoldRequest(m.id, m.price) for m in messages]
    with LockClock() as reserve_lock:
        started = time.perf_counter()
        outcome = ledger.hold_credit(tenant=tenant, requests=requests)
        reserve = time.perf_counter() - started
    assert len(outcome.held) == len(messages), "the benchmark's academy ran out of credit"
    with LockClock() as finalize_lock:
        started = time.perf_counter()
        settlement.settle(messages)
        finalize = time.perf_counter() - started
    return {"reserve_ms": reserve * 1000, "finalize_ms": finalize * 1000,
            "reserve_locked_ms": reserve_lock.locked_seconds * 1000,
            "finalize_locked_ms": finalize_lock.locked_seconds * 1000,
            "statements": reserve_lock.statements + finalize_lock.statements,
            "ledger_rows": LedgerEntry.objects.count() - entries_before}


def concurrent_rate(tenant, chunks: list[list], ledger, settlement, *, connections: int) -> float:
    """Chunks per second when `connections` threads (each its own database connection) reserve
    and settle the academy's chunks at once."""
    from django.db import connection

    queue = list(chunks)
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(connections + 1)

    def work() -> None:
        try:
            barrier.wait()
            while True:
                with lock:
                    if not queue:
                        return
                    messages = queue.pop()
                ledger.hold_credit(tenant=tenant, requests=[ledger.HoldRequest(m.id, m.price) for m in messages])
                settlement.settle(messages)
        except BaseException as error:  # reported below: a benchmark that failed prints no rate
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(connections)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return len(chunks) / (time.perf_counter() - started)


def run(stack: Stack, *, chunks: int = CHUNKS) -> dict[str, Any]:
    from billing.audit import audit
    from harness.academies import make_tenant

    results: dict[str, Any] = {"chunk_size": CHUNK, "chunks": chunks, "before_commit": BEFORE_COMMIT,
                               "database": stack.database_note, "variants": {}}
    for name, (ledger, settlement) in variants().items():
        tenant = make_tenant(f"ledger-bench-{name}")
        ledger.top_up(tenant=tenant, amount=PRICE * CHUNK * (3 * chunks + 2))
        warm_up = prepare_chunk(tenant, 0)
        one_chunk(tenant, warm_up, ledger, settlement)
        per_chunk = [one_chunk(tenant, prepare_chunk(tenant, i), ledger, settlement) for i in range(1, chunks + 1)]
        rates = {}
        for connections in (1, 2):
            batch = [prepare_chunk(tenant, 100 * connections + i) for i in range(chunks)]
            rates[connections] = concurrent_rate(tenant, batch, ledger, settlement, connections=connections)
        problems = audit()
        results["variants"][name] = {
            **{key: median([c[key] for c in per_chunk]) for key in per_chunk[0]},
            "chunks_per_s_1": rates[1], "chunks_per_s_2": rates[2], "audit_problems": problems,
        }
        print(f"  {name}: reserve {results['variants'][name]['reserve_ms']:.0f} ms, settle "
              f"{results['variants'][name]['finalize_ms']:.0f} ms per chunk; audit "
              f"{problems or 'clean'}", flush=True)
    return results


def report(result: dict[str, Any]) -> str:
    rows = []
    for name, v in result["variants"].items():
        rows.append([name, v["reserve_ms"], v["reserve_locked_ms"], v["finalize_ms"], v["finalize_locked_ms"],
                     v["reserve_ms"] + v["finalize_ms"], int(v["statements"]), int(v["ledger_rows"]),
                     v["chunks_per_s_1"], v["chunks_per_s_2"], v["chunks_per_s_2"] / v["chunks_per_s_1"],
                     "clean" if not v["audit_problems"] else f"{len(v['audit_problems'])} problem(s)"])
    before, after = result["variants"].get("before"), result["variants"].get("after")
    notes = [f"Medians of {result['chunks']} chunks of {result['chunk_size']:,} messages, one academy; "
             f"{result['database']}. before = billing/ledger.py and settlement.py at {result['before_commit']}."]
    if before and after:
        notes.append(f"reserve + settle: {before['reserve_ms'] + before['finalize_ms']:.0f} → "
                     f"{after['reserve_ms'] + after['finalize_ms']:.0f} ms per chunk; the account row locked "
                     f"{before['reserve_locked_ms'] + before['finalize_locked_ms']:.1f} → "
                     f"{after['reserve_locked_ms'] + after['finalize_locked_ms']:.1f} ms per chunk.")
    return "\n".join([
        table("Credit write path per 1,000-message chunk (in-process, PostgreSQL)",
              ["path", "reserve ms", "locked ms", "settle ms", "locked ms", "total ms", "SQL statements",
               "ledger rows", "chunks/s, 1 conn", "chunks/s, 2 conns", "2 ÷ 1", "billing_audit"], rows),
        "", *notes])


def goals(result: dict[str, Any]) -> list[Goal]:
    """For make bench's summary: measured for the record (issue 17 sets no number for these;
    they are what the end-to-end goals rest on)."""
    variants = result["variants"]
    if not {"before", "after"} <= set(variants):
        return []
    before, after = variants["before"], variants["after"]

    def total(v: dict[str, Any], *keys: str) -> float:
        return sum(v[key] for key in keys)

    return [
        Goal("credit writes per 1,000-message chunk (reserve + settle)",
             f"{total(after, 'reserve_ms', 'finalize_ms'):.0f} ms "
             f"(before {total(before, 'reserve_ms', 'finalize_ms'):.0f} ms)"),
        Goal("credit-account row locked per chunk",
             f"{total(after, 'reserve_locked_ms', 'finalize_locked_ms'):.1f} ms "
             f"(before {total(before, 'reserve_locked_ms', 'finalize_locked_ms'):.0f} ms)"),
        Goal("ledger rows per chunk", f"{after['ledger_rows']:.0f} (before {before['ledger_rows']:,.0f})"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=CHUNKS)
    parser.add_argument("--quick", action="store_true", help="2 chunks: check the benchmark runs")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with Stack("ledger", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, chunks=2 if args.quick else args.chunks)
        result["machine"] = machine()
    print(report(result))
    print(f"\nwrote {write_json('ledger_writes', result)}")


if __name__ == "__main__":
    main()
