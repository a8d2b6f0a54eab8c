"""Retention: old rows that no step needs any more are deleted on a schedule, a few
thousand at a time, so the tables that grow with every message stay the size of their
retention window and the prune never holds a lock for long.

What is pruned, after how long, and what is kept whatever its age (the reasons at length:
docs/retention.md). Ages in days from the environment; 0 keeps a table for ever.

| model (table)                | age setting (default)                 | kept, however old, while                     |
|------------------------------|---------------------------------------|----------------------------------------------|
| MessageOutcome, the old      | RETENTION_MESSAGE_OUTCOME_DAYS (365), | its message is not final, its chunk is not   |
| NotificationLog              | by `created`                          | finalized, or its hold is open: settle()     |
| (messaging_messageoutcome)   |                                       | writes the row again until all three are done|
| DeliveryAttempt              | RETENTION_DELIVERY_ATTEMPT_DAYS (90), | its chunk is not finalized: the attempts say |
| (messaging_deliveryattempt)  | by `created`                          | whether its group may have gone out          |
|                              |                                       | (Chunk.may_have_been_sent)                   |
| DeliveryReport               | RETENTION_DELIVERY_REPORT_DAYS (90),  | its message is not final: the row drops a    |
| (messaging_deliveryreport)   | by `received`                         | re-delivered webhook; once the message is    |
|                              |                                       | final, a copy cannot move it anyway          |
| ReceivedReportBatch          | RETENTION_REPORT_BATCH_DAYS (7),      | it is not applied yet: its reports are only  |
| (messaging_receivedreport…)  | by `received`                         | there (messaging/reports/inbox.py)           |
| TaskResult (django_celery_   | RETENTION_TASK_RESULT_DAYS (7),       | (never: no step reads a stored result)       |
| results_taskresult)          | by `date_done`                        |                                              |

Never pruned here: messages and send requests, chunks, the ledger and holds (billing's
books), GroupReconciliation (billing_audit reads it; a deleted row would make the books
check ask Solapi again), suppressions and consents.

How it deletes: per table, the last old row's id is found by a binary search over the
primary key (rows are inserted in time order, so the age column rises with the id; no index
on the age column is needed), then the ids up to it are walked in ranges of
RETENTION_BATCH_SIZE ids. Per range: the old rows' ids and what they belong to are read,
the rules are checked by primary-key lookups of those messages, chunks and holds, and the
rows no step needs are deleted in one statement, in its own short transaction: by the id
range and age when all of the range may go (the common case), else by their ids. No
statement deletes more than a batch, none joins (a join lets the planner scan a whole table),
and no lock is held longer than one statement. A run stops when its time budget is spent and
the next run goes on from where the rows are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django_celery_results.models import TaskResult

from billing import ledger
from messaging.models import (
    FINAL_STATUSES,
    Chunk,
    ChunkStatus,
    DeliveryAttempt,
    DeliveryReport,
    Message,
    MessageOutcome,
    ReceivedReportBatch,
)
from project import clock
from project.sql import in_values

logger = logging.getLogger(__name__)


# Old rows of one batch as (id, the id of what each belongs to: its message or chunk).
Rows = list[tuple[int, int | None]]


def _outcomes_done_with(rows: Rows) -> set[int]:
    # settlement.settle() writes a message's outcome rows (ignoring conflicts) whenever it
    # runs for it: finalize, a report, the open-hold sweep. Deleted before all of them are
    # done, a row would come back.
    settled = _final_in_finalized_chunks({message_id for _, message_id in rows})
    settled -= set(ledger.messages_with_open_holds().filter(message_id__in=_one_of(settled)))
    return {row_id for row_id, message_id in rows if message_id in settled}


def _attempts_done_with(rows: Rows) -> set[int]:
    # Until its chunk is finalized, Chunk.may_have_been_sent() reads them: whether the group may
    # have reached Solapi decides between re-sending it and failing its messages.
    finalized = set(Chunk.objects.filter(id__in=_one_of({chunk_id for _, chunk_id in rows}),
                                         status=ChunkStatus.FINALIZED).values_list("id", flat=True))
    return {row_id for row_id, chunk_id in rows if chunk_id in finalized}


def _reports_done_with(rows: Rows) -> set[int]:
    # A report without a message (unmatched, forged) moves nothing whenever it comes again.
    final = set(Message.objects.filter(id__in=_one_of({m for _, m in rows if m is not None}),
                                       status__in=FINAL_STATUSES).values_list("id", flat=True))
    return {row_id for row_id, message_id in rows if message_id is None or message_id in final}


def _batches_done_with(rows: Rows) -> set[int]:
    # Here the second value is when the batch was applied (None: waiting), not a parent's id.
    return {row_id for row_id, applied in rows if applied is not None}


def _final_in_finalized_chunks(message_ids: set[int]) -> set[int]:
    messages = list(Message.objects.filter(id__in=_one_of(message_ids), status__in=FINAL_STATUSES)
                    .values_list("id", "chunk_id"))
    finalized = set(Chunk.objects.filter(id__in=_one_of({c for _, c in messages if c is not None}),
                                         status=ChunkStatus.FINALIZED).values_list("id", flat=True))
    return {message_id for message_id, chunk_id in messages if chunk_id is None or chunk_id in finalized}


@dataclass(frozen=True)
class Rule:
    model: type[models.Model]
    age_setting: str
    age_field: str
    # What a row belongs to (a foreign key's column; or any column done_with decides by), and
    # which old rows, as (id, that column), no step needs any more. None: every old row may go.
    parent_field: str | None = None
    done_with: Callable[[Rows], set[int]] | None = None

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    def cutoff(self, now: datetime) -> datetime | None:
        days = getattr(settings, self.age_setting)
        return now - timedelta(days=days) if days > 0 else None


RULES = (
    Rule(MessageOutcome, "RETENTION_MESSAGE_OUTCOME_DAYS", "created", "message_id", _outcomes_done_with),
    Rule(DeliveryAttempt, "RETENTION_DELIVERY_ATTEMPT_DAYS", "created", "chunk_id", _attempts_done_with),
    Rule(DeliveryReport, "RETENTION_DELIVERY_REPORT_DAYS", "received", "message_id", _reports_done_with),
    Rule(ReceivedReportBatch, "RETENTION_REPORT_BATCH_DAYS", "received", "applied", _batches_done_with),
    Rule(TaskResult, "RETENTION_TASK_RESULT_DAYS", "date_done"),
)


@dataclass
class TablePrune:
    table: str
    cutoff: datetime | None
    deleted: int = 0
    statements: int = 0
    # The most rows one DELETE removed, and the longest one took (wall time, seconds).
    largest_statement_rows: int = 0
    longest_statement_s: float = 0.0
    seconds: float = 0.0
    # False when the time budget ran out before every old row of the table was looked at.
    finished: bool = True


@dataclass
class PruneSummary:
    tables: list[TablePrune] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def deleted(self) -> int:
        return sum(t.deleted for t in self.tables)

    @property
    def finished(self) -> bool:
        return all(t.finished for t in self.tables)

    @property
    def longest_statement_s(self) -> float:
        return max((t.longest_statement_s for t in self.tables), default=0.0)


def prune_old_records(*, batch_size: int | None = None, time_budget: float | None = None,
                      rules: tuple[Rule, ...] = RULES) -> PruneSummary:
    """Delete what the rules allow, oldest first, table by table, until done or until
    `time_budget` seconds (None: no limit) are spent. Safe to run at any time, and again."""
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    now = clock.now()
    # Elapsed time is wire time, not business time: the real monotonic clock.
    began = time.monotonic()
    deadline = None if time_budget is None else began + time_budget
    summary = PruneSummary()
    for rule in rules:
        result = _prune_table(rule, rule.cutoff(now), batch_size=batch_size, deadline=deadline)
        summary.tables.append(result)
        logger.info("retention_pruned table=%s deleted=%s statements=%s largest_statement_rows=%s "
                    "longest_statement_ms=%.0f seconds=%.1f finished=%s", result.table, result.deleted,
                    result.statements, result.largest_statement_rows, result.longest_statement_s * 1000,
                    result.seconds, result.finished)
    summary.seconds = time.monotonic() - began
    return summary


def _prune_table(rule: Rule, cutoff: datetime | None, *, batch_size: int, deadline: float | None) -> TablePrune:
    result = TablePrune(table=rule.table, cutoff=cutoff)
    if cutoff is None:
        return result
    began = time.monotonic()
    rows = rule.model.objects.order_by()
    old = Q(**{f"{rule.age_field}__lt": cutoff})
    bounds = _old_id_range(rows, rule.age_field, cutoff)
    cursor, last_old = bounds if bounds else (1, 0)
    while cursor <= last_old:
        if deadline is not None and time.monotonic() >= deadline:
            result.finished = False
            break
        # The next row at or after the cursor: empty id ranges (rows pruned before, gaps) are skipped.
        start = rows.filter(pk__gte=cursor, pk__lte=last_old).order_by("pk").values_list("pk", flat=True).first()
        if start is None:
            break
        end = min(start + batch_size - 1, last_old)
        in_range = rows.filter(old, pk__gte=start, pk__lte=end)
        ids: set[int] | None = None  # None: every old row of the range
        if rule.done_with is not None:
            # Read first, then delete: every query is driven by primary keys (a join in the DELETE
            # lets the planner scan whole tables). The rules only ever turn true (final stays
            # final, a finalized chunk stays finalized, a closed hold stays closed), so nothing
            # read here can change its answer before the DELETE.
            candidates = list(in_range.values_list("pk", rule.parent_field))
            ids = rule.done_with(candidates)
            if not ids:
                cursor = end + 1
                continue
            if len(ids) == len(candidates):
                ids = None
        statement_began = time.monotonic()
        with transaction.atomic():
            deleted = (in_range if ids is None else rows.filter(pk__in=_one_of(ids))).delete()[0]
        took = time.monotonic() - statement_began
        result.statements += 1
        result.deleted += deleted
        result.largest_statement_rows = max(result.largest_statement_rows, deleted)
        result.longest_statement_s = max(result.longest_statement_s, took)
        cursor = end + 1
    result.seconds = time.monotonic() - began
    return result


def _one_of(ids: Iterable[int]) -> Collection[int] | RawSQL:
    """Ids for an `__in` lookup, in order; a long list as one array parameter on PostgreSQL."""
    return in_values(sorted(ids), "bigint")


def _old_id_range(rows: models.QuerySet, age_field: str, cutoff: datetime) -> tuple[int, int] | None:
    """The first id and the last id of the rows older than `cutoff`, None when there are none.

    A binary search over the primary key, each step one index lookup: rows are inserted in
    time order, so the age rises with the id. Where it does not quite (concurrent inserts a
    moment apart), a row past the boundary waits for a later run; the DELETE itself checks
    the age, so no young row is ever deleted."""
    ordered = rows.order_by("pk").values_list("pk", age_field)
    first = ordered.first()
    if first is None or first[1] >= cutoff:
        return None
    last = rows.order_by("-pk").values_list("pk", age_field).first()
    if last[1] < cutoff:
        return first[0], last[0]
    low, high = first[0], last[0]  # the row at `low` is old; none at or after `high` is
    while high - low > 1:
        middle = (low + high) // 2
        probe = ordered.filter(pk__gte=middle).first()
        if probe[1] < cutoff:
            low = probe[0]
            if probe[0] >= high:  # cannot happen while ages rise with ids; stops the loop if they do not
                break
        else:
            high = middle
    return first[0], low
