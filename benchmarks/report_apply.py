"""The delivery-report webhook's cost per POST: POST /api/v1/solapi/reports/<secret>/ with 50
reports, each delivering an accepted message, the 50 messages spread over 20 send requests (2–3
each) whose chunks share one Solapi group, as small sends do (messaging/pipeline/express.py).
Issue 18 and the everyday load: no report webhook should wait more than 1 s.

Each POST goes through the whole Django stack in this process (django.test.Client: URL routing,
the secret, the body's checks); only the network hop to the edge's gunicorn is left out. Two ways
are measured on the same kind of batch, side by side in one run:

- in the request (as before): the answer waits for the apply (parse_webhook, apply_reports,
  settlement.settle), done by the view, as it was before the webhook stored its POSTs;
- stored, applied after (now): the answer stores the POST (messaging/reports/inbox.py) and
  publishes the apply task to the local SQS; the apply (inbox.apply_waiting, what the task runs
  in the worker) is then run and measured on its own, in this process.

Printed per way: the answer's wall and CPU ms and SQL statements, then the apply's (for the
first way it is inside the answer), and how many statements (and ms) settle() took. Then the
recount of the POST's 20 requests alone, per request (refresh_counts) against set-based
(refresh_counts_of).

With --profile, one more stored POST and its apply run under cProfile (benchmarks/profile.py).

    python -m benchmarks.report_apply [--posts 10] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
import uuid
from typing import Any

from benchmarks.goals import Goal
from benchmarks.profile import profile_step
from benchmarks.stack import BODY, Stack, banner, machine, percentile, seed_academy, table, write_json

REPORTS_PER_POST = 50
REQUESTS_PER_POST = 20
POSTS = 10
WARMUP = 1
IN_REQUEST, STORED = "in the request (before)", "stored, applied after (now)"
WAYS = (IN_REQUEST, STORED)


def _accepted_batches(academy, posts: int) -> list[list[Any]]:
    """`posts` batches of 50 accepted, charged messages, each over 20 send requests in one group."""
    from messaging.compose.send_requests import SendInput, send_request_create
    from messaging.models import Chunk, Message, MessageStatus
    from messaging.pipeline import outbox, settlement
    from project import clock

    sizes = [REPORTS_PER_POST // REQUESTS_PER_POST + (1 if n < REPORTS_PER_POST % REQUESTS_PER_POST else 0)
             for n in range(REQUESTS_PER_POST)]
    batches, student = [], 0
    publish = outbox.publish_task
    outbox.publish_task = lambda send_request: "held back"  # no worker: the messages are made accepted here
    try:
        for post in range(posts):
            group = f"G4VBENCH{uuid.uuid4().hex[:16].upper()}"
            messages = []
            for size in sizes:
                ids = academy.student_ids[student:student + size]
                student += size
                data = SendInput(student_ids=ids, send_to="parent", message_mode="sms", body=BODY)
                request_id = send_request_create(tenant=academy.tenant, user=academy.user, data=data,
                                                 idempotency_key=None)["id"]
                chunk = Chunk.objects.create(send_request_id=request_id, index=0, solapi_group_id=group)
                Message.objects.filter(send_request_id=request_id).update(
                    chunk=chunk, status=MessageStatus.ACCEPTED, accepted_at=clock.now())
                messages += list(Message.objects.filter(send_request_id=request_id).select_related("chunk"))
            settlement.settle(messages)  # charged on acceptance, as the send step leaves them
            batches.append(messages)
            print(f"  seeded POST {post + 1}/{posts}: {len(messages)} accepted messages", flush=True)
    finally:
        outbox.publish_task = publish
    return batches


def _body(messages) -> list[dict]:
    """Solapi's single-report webhook, one delivery report per message."""
    return [{
        "eventDataId": f"E{uuid.uuid4().hex}",
        "data": {"messageId": f"M4V{uuid.uuid4().hex[:20].upper()}", "groupId": m.chunk.solapi_group_id,
                 "type": "SMS", "to": "01000000000", "from": "0212345678", "statusCode": "4000",
                 "statusMessage": "정상 수신", "customFields": {"message_id": str(m.id)}},
        "retryCount": 0,
    } for m in messages]


@contextlib.contextmanager
def _way(name: str):
    """The webhook as it is, or with its store doing what the view did before: the whole apply."""
    from messaging.reports import inbox
    from messaging.reports.apply import apply_reports
    from messaging.solapi.reports import parse_webhook

    if name == STORED:
        yield
        return

    def apply_in_the_request(body):
        batch = parse_webhook(body)
        apply_reports(batch.reports, rejected=batch.rejected)

    store = inbox.store
    inbox.store = apply_in_the_request
    try:
        yield
    finally:
        inbox.store = store


class _SettleMeter:
    """How many statements and how long settle() takes, called by apply_reports (in the request)
    or by the inbox's apply."""

    def __init__(self):
        from messaging.reports import apply, inbox

        self.modules = (apply, inbox)
        self.statements, self.seconds = 0, 0.0

    def __enter__(self):
        from django.db import connection

        from messaging.pipeline import settlement

        def measured(messages):
            before, started = len(connection.queries), time.perf_counter()
            settlement.settle(messages)
            self.seconds += time.perf_counter() - started
            self.statements += len(connection.queries) - before

        for module in self.modules:
            module.settlement = type("Settlement", (), {"settle": staticmethod(measured)})
        return self

    def __exit__(self, *exc_info):
        import messaging.pipeline.settlement as settlement

        for module in self.modules:
            module.settlement = settlement


@contextlib.contextmanager
def _measured(into: dict[str, float], prefix: str):
    """Wall ms, CPU ms and SQL statements of the block (DEBUG is on: Django records queries)."""
    from django.db import connection, reset_queries

    reset_queries()
    started, cpu_started = time.perf_counter(), time.process_time()
    yield
    into[f"{prefix}_ms"] = (time.perf_counter() - started) * 1000
    into[f"{prefix}_cpu_ms"] = (time.process_time() - cpu_started) * 1000
    into[f"{prefix}_statements"] = len(connection.queries)


def _post(client, url: str, messages, way: str) -> dict[str, float]:
    from messaging.models import Message, MessageStatus
    from messaging.reports import inbox

    body = json.dumps(_body(messages))
    row: dict[str, float] = {}
    with _SettleMeter() as meter:
        with _measured(row, "answer"):
            response = client.post(url, data=body, content_type="application/json")
        if response.status_code != 200 or response.json()["received"] != len(messages):
            raise RuntimeError(f"the webhook answered {response.status_code}: {response.content[:300]!r}")
        if way == STORED:
            with _measured(row, "apply"):
                outcome = inbox.apply_waiting()
            if outcome != {"applied": 1, "failed": 0}:
                raise RuntimeError(f"the stored POST was not applied: {outcome}")
    delivered = Message.objects.filter(id__in=[m.id for m in messages], status=MessageStatus.DELIVERED).count()
    if delivered != len(messages):
        raise RuntimeError(f"{delivered} of {len(messages)} messages delivered")
    return {**row, "settle_statements": meter.statements, "settle_ms": meter.seconds * 1000}


def _recount(batch) -> dict[str, float]:
    from django.db import connection, reset_queries

    from messaging.operations.counts import refresh_counts, refresh_counts_of

    ids = sorted({m.send_request_id for m in batch})
    result = {"requests": len(ids)}
    for name, recount in (("per_request", lambda: [refresh_counts(i) for i in ids]),
                          ("set_based", lambda: refresh_counts_of(ids))):
        reset_queries()
        started = time.perf_counter()
        recount()
        result[f"{name}_ms"] = (time.perf_counter() - started) * 1000
        result[f"{name}_statements"] = len(connection.queries)
    return result


def run(stack: Stack, *, posts: int = POSTS, profile: bool = False) -> dict[str, Any]:
    from django.conf import settings
    from django.test import Client

    banner(f"Report webhook: POSTs of {REPORTS_PER_POST} reports over {REQUESTS_PER_POST} send requests "
           f"(one shared group), {posts} per way")
    academy = seed_academy("reports", (posts + WARMUP) * len(WAYS) * REPORTS_PER_POST + REPORTS_PER_POST,
                           phone_offset=40_000_000)
    batches = iter(_accepted_batches(academy, (posts + WARMUP) * len(WAYS) + profile))
    client = Client()
    url = f"/api/v1/solapi/reports/{settings.SOLAPI_WEBHOOK_SECRET}/"
    ways = {}
    for name in WAYS:
        with _way(name):
            for _ in range(WARMUP):
                _post(client, url, next(batches), name)
            rows = []
            for _ in range(posts):
                batch = next(batches)
                rows.append(_post(client, url, batch, name))
        ways[name] = _summary(rows)
        print(f"  {name}: answer p50 {ways[name]['answer_p50_ms']:.0f} ms "
              f"(CPU {ways[name]['answer_cpu_p50_ms']:.0f} ms)", flush=True)
    result = {"name": "report_apply", "database": stack.database_note, "reports_per_post": REPORTS_PER_POST,
              "requests_per_post": REQUESTS_PER_POST, "posts": posts, "ways": ways, "recount": _recount(batch)}
    if profile:
        last = next(batches)
        result["profile"] = profile_step("stored POST and its apply", lambda: _post(client, url, last, STORED), top=30)
    return result


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    summary = {"settle_statements": max(r["settle_statements"] for r in rows),
               "settle_p50_ms": percentile([r["settle_ms"] for r in rows], 50)}
    for part in ("answer", "apply"):
        if f"{part}_ms" in rows[0]:
            summary.update({
                f"{part}_p50_ms": percentile([r[f"{part}_ms"] for r in rows], 50),
                f"{part}_max_ms": max(r[f"{part}_ms"] for r in rows),
                f"{part}_cpu_p50_ms": percentile([r[f"{part}_cpu_ms"] for r in rows], 50),
                f"{part}_statements": max(r[f"{part}_statements"] for r in rows),
            })
    return summary


def report(result: dict[str, Any]) -> str:
    def part(w: dict[str, float], name: str) -> list[str]:
        if f"{name}_p50_ms" not in w:
            return ["(in the answer)", "", ""]
        return [f"{w[f'{name}_p50_ms']:.0f} / {w[f'{name}_max_ms']:.0f}", f"{w[f'{name}_cpu_p50_ms']:.0f}",
                str(w[f"{name}_statements"])]

    rows = [[name, *part(w, "answer"), *part(w, "apply"), f"{w['settle_statements']} / {w['settle_p50_ms']:.0f} ms"]
            for name, w in result["ways"].items()]
    r = result["recount"]
    return "\n".join([
        table(f"Report webhook: one POST of {result['reports_per_post']} reports over {result['requests_per_post']} "
              f"send requests ({result['database']}; {result['posts']} POSTs per way, side by side in one run)",
              ["way", "answer wall p50 / max ms", "answer CPU p50 ms", "answer SQL", "apply wall p50 / max ms",
               "apply CPU p50 ms", "apply SQL", "settle() SQL (p50 ms)"], rows),
        table(f"Recount of the POST's {r['requests']} send requests (part of settle())",
              ["way", "ms", "SQL statements"],
              [["per request (refresh_counts)", r["per_request_ms"], r["per_request_statements"]],
               ["set-based (refresh_counts_of, as settle calls it)", r["set_based_ms"], r["set_based_statements"]]]),
        *_profile_lines(result.get("profile")),
    ])


def _profile_lines(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    return ["", f"--- where the time goes ({profile['wall_s'] * 1000:.0f} ms under cProfile, "
                f"{profile['sql_statements']} SQL statements): self time by layer",
            "; ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in profile["layers_s"].items()),
            profile["top_cumulative"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=POSTS)
    parser.add_argument("--profile", action="store_true", help="also profile one batched POST (cProfile)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    with Stack("reports", keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, posts=args.posts, profile=args.profile)
        result["machine"] = machine()
    print(report(result))
    print(f"\nwrote {write_json('report_apply', result)}")


if __name__ == "__main__":
    main()


def goals(result: dict[str, Any]) -> list[Goal]:
    """For the record (no target of its own: the webhook's 1 s goal is measured by make bench-load)."""
    before, now = result["ways"][IN_REQUEST], result["ways"][STORED]
    return [Goal(f"report webhook POST of {result['reports_per_post']} reports over {result['requests_per_post']} "
                 "send requests: the answer",
                 f"{now['answer_p50_ms']:.0f} ms p50, {now['answer_cpu_p50_ms']:.0f} ms CPU, "
                 f"{now['answer_statements']} SQL statements, stored (applied in the request: "
                 f"{before['answer_p50_ms']:.0f} ms, {before['answer_cpu_p50_ms']:.0f} ms CPU); the apply after it: "
                 f"{now['apply_p50_ms']:.0f} ms p50, {now['apply_statements']} SQL statements")]
