"""What the backlog estimate costs (messaging/operations/backlog.py): every send answer and
every /healthz run it, so it must stay cheap on a table the size production reaches.

Fills an empty database with a realistic table (by default 200,000 messages in 20,000
requests: most delivered over the last day, the last minute's drain, and a backlog ahead on
both queues), then times `queue_backlogs()` and prints the median and p95, with PostgreSQL's
plans of its two aggregates.

    createdb -h 127.0.0.1 -U postgres backlog_cost
    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/backlog_cost \\
        python -m benchmarks.backlog_cost [--messages 200000] [--runs 50] [--reuse]

The database must be empty of messages (the script migrates it and refuses otherwise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta


def _fill(messages: int) -> None:
    from django.db import connection

    from harness.academies import make_academy
    from messaging.models import Message, MessageStatus, SendRequest
    from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE
    from project import clock

    academy = make_academy("backlog-cost", students=10)
    now = clock.now()  # frozen by main()
    per_request = 10
    requests = messages // per_request
    # The backlog ahead: 300 small requests on the interactive queue, 3,000 messages of 3 bulk requests.
    ahead_small, ahead_bulk = 300, 3
    request_rows = SendRequest.objects.bulk_create([
        SendRequest(tenant=academy.tenant, mode="sms", send_to="parent", body="b", fingerprint="f",
                    queue=BULK_QUEUE if i < ahead_bulk else INTERACTIVE_QUEUE, estimated_cost=0)
        for i in range(requests)], batch_size=5000)
    students = academy.students
    rows = []
    for position, send_request in enumerate(request_rows):
        if position < ahead_bulk + ahead_small:
            status, accepted_at = MessageStatus.PENDING, None
        elif position < ahead_bulk + ahead_small + 60:  # the last minute: 600 messages drained
            status, accepted_at = MessageStatus.ACCEPTED, now - timedelta(seconds=position % 60)
        else:  # the rest of the day
            status, accepted_at = MessageStatus.DELIVERED, now - timedelta(seconds=60 + position * 86_400 // requests)
        for n in range(per_request):
            rows.append(Message(tenant=academy.tenant, send_request=send_request, student=students[n % 10],
                                recipient_kind="parent", phone=f"010{position:04d}{n:04d}"[:11], message_type="SMS",
                                text="t", price=13, status=status, accepted_at=accepted_at,
                                completed_at=accepted_at if status == MessageStatus.DELIVERED else None))
        if len(rows) >= 20_000:
            Message.objects.bulk_create(rows, batch_size=5000)
            rows = []
    Message.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _plans() -> list[str]:
    """PostgreSQL's plans of the queries one estimate makes, as they ran."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from messaging.operations.backlog import queue_backlogs

    with CaptureQueriesContext(connection) as captured:
        queue_backlogs()
    plans = []
    for query in captured.captured_queries:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--reuse", action="store_true", help="a database this script filled before")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from messaging.models import Message, MessageStatus
    from messaging.operations.backlog import queue_backlogs
    from project import clock

    last = Message.objects.filter(status=MessageStatus.ACCEPTED).order_by("-accepted_at").first()
    if last and args.reuse:
        clock.freeze(last.accepted_at + timedelta(seconds=1))  # as just after the fill
    elif Message.objects.exists():
        raise SystemExit("the database already has messages: use an empty one (createdb …), or --reuse one "
                         "this script filled")
    else:
        clock.freeze(clock.now())  # the drain of "the last minute" must not age while the rows are written
    started = time.perf_counter()
    if not args.reuse:
        _fill(args.messages)
    print(f"{connection.vendor} {connection.pg_version if connection.vendor == 'postgresql' else ''}: "
          f"{Message.objects.count():,} messages filled in {time.perf_counter() - started:.0f} s")
    queue_backlogs()  # warm
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        backlogs = queue_backlogs()
        timings.append((time.perf_counter() - started) * 1000)
    for queue, backlog in backlogs.items():
        print(f"  {queue}: {backlog.requests_ahead} requests / {backlog.messages_ahead} messages ahead, "
              f"{backlog.messages_per_second} msg/s, wait {backlog.wait_seconds} s ({backlog.basis})")
    timings.sort()
    print(f"queue_backlogs() over {args.runs} runs: median {statistics.median(timings):.1f} ms, "
          f"p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms, max {timings[-1]:.1f} ms")
    for plan in _plans():
        print(plan)


if __name__ == "__main__":
    main()
