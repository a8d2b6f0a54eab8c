"""Coalesced tasks: one task due at a time for work that any run of it takes whole.

Two tasks sweep up everything waiting when they run: the interactive queue's dispatch (every
small send waiting to start, messaging/pipeline/express.py) and the report apply (every webhook
batch waiting, messaging/reports/inbox.py). Publishing one per send or per POST filled the
interactive queue with tasks that found their work done, and a small send's dispatch waited
behind them (issue 18's load: a dozen report applies a second, each an SQS round trip ahead of
the dispatch). So each keeps a mark (PendingDispatch, by key): whoever finds none due publishes
one and sets it; whoever finds one due publishes nothing, because that task will take their
work too. Why nothing is left behind:

- the caller looks at the mark after its work is committed, and the task clears the mark
  before it looks for work (clear): work whose caller saw the mark set was committed before
  the task's look, and work committed after the clear publishes a task of its own;
- a mark expires after MESSAGING_DISPATCH_COALESCE_SECONDS, so a task lost in SQS (never
  cleared) holds nothing back for long, and beat's sweeps publish again for work left waiting.
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection

from messaging.models import PendingDispatch
from project import clock


def claim(key: str) -> bool:
    """Mark a task due for `key` unless one is due already. True: the caller publishes it.
    The common answer (already due) is a plain read: no row lock, nothing written. Otherwise one
    upsert, so two callers racing for an expired or missing mark cannot both win."""
    if is_due(key):
        return False
    now = clock.now()
    until = now + timedelta(seconds=settings.MESSAGING_DISPATCH_COALESCE_SECONDS)
    table = connection.ops.quote_name(PendingDispatch._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        # PostgreSQL and SQLite (3.35+) both speak this.
        cursor.execute(
            f"INSERT INTO {table} (queue, pending_until) VALUES (%s, %s) "
            f"ON CONFLICT (queue) DO UPDATE SET pending_until = excluded.pending_until "
            f"WHERE {table}.pending_until IS NULL OR {table}.pending_until <= %s RETURNING queue",
            [key, adapt(until), adapt(now)],
        )
        return cursor.fetchone() is not None


def clear(key: str) -> None:
    """The task for `key` is about to look for its work (or its publish failed): callers from
    now on publish their own."""
    PendingDispatch.objects.filter(queue=key).update(pending_until=None)


def is_due(key: str) -> bool:
    """Whether a task published for `key` has not started yet."""
    return PendingDispatch.objects.filter(queue=key, pending_until__gt=clock.now()).exists()
