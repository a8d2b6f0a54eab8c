"""Delivery reports: what finally happened to accepted messages.

Reports come from Solapi's single-report webhook (stored as it arrives, applied after the
answer: messaging/reports/inbox.py), or from polling a group's messages when a report is
overdue (messaging/reports/reconciliation.py); the adapter reads both into Reports
(messaging/solapi/reports.py), and both go through record_reports (apply_reports: and settle).

A POST's reports are applied together, in one transaction and a fixed number of
statements however many reports it carries (_apply_batch), each report as if on its own:
- one that does not fit our tables (an id longer than its column, a NUL character) is
  counted as invalid, logged and not stored; the rest of the batch goes on;
- Solapi re-delivers webhooks, so a report is stored under its unique event id first,
  and a second copy (stored before, or earlier in the same POST) stops there;
- a report moves a message only when it is tied to what we sent (_is_ours); any other
  is stored without a message, logged, and changes nothing;
- a final message never moves back: a late report is stored with it and changes nothing;
- the reports are applied in the POST's order, so a later report about the same message
  sees what an earlier one did.
When a concurrent POST stores one of the same events between our look and our insert, the
insert fails before anything is counted, and the batch goes through the per-report path
instead (_apply_one_by_one: each report in its own transaction), where that copy stops at
the stored row. Both paths share _apply, which decides what a report does to its message.
"""

import enum
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from messaging.models import UNSENT_STATUSES, Chunk, DeliveryReport, Message, MessageStatus
from messaging.pipeline import settlement
from messaging.reports.fallback import delivered_type
from messaging.solapi.outcomes import classify_status
from messaging.solapi.reports import Rejection, Report
from project import clock
from project.sql import in_values, update_rows

logger = logging.getLogger(__name__)

# Reports can only move messages that Solapi accepted (or is sending: a report may
# overtake the send task's own bookkeeping, and a message being sent is stored as pending:
# messaging/models.py, UNSENT_STATUSES).
_REPORTABLE = (*UNSENT_STATUSES, MessageStatus.ACCEPTED)

# What of a report goes into which column; a value longer than its column is invalid.
_COLUMNS = {
    "event_id": DeliveryReport._meta.get_field("event_data_id"),
    "solapi_message_id": DeliveryReport._meta.get_field("solapi_message_id"),
    "status_code": DeliveryReport._meta.get_field("status_code"),
    "message_type": DeliveryReport._meta.get_field("message_type"),
    "group_id": Chunk._meta.get_field("solapi_group_id"),
}


@dataclass
class ReportSummary:
    applied: int = 0
    duplicates: int = 0
    # No message of ours, or one the report is not tied to (the two are not told apart).
    unmatched: int = 0
    invalid: int = 0


def apply_reports(reports: list[Report], rejected: Sequence[Rejection] = ()) -> ReportSummary:
    """Apply what can be applied; `rejected` are the reports the adapter could not read,
    counted and logged with the ones that do not fit our tables."""
    summary, finished = record_reports(reports, rejected)
    # Credit and logs after the statuses commit: settle() is idempotent, and the
    # reconciliation sweep repeats it if this process dies in between.
    settlement.settle(finished)
    return summary


def record_reports(reports: list[Report], rejected: Sequence[Rejection] = ()) -> tuple[ReportSummary, list[Message]]:
    """apply_reports up to the credit: store the reports and move their messages. Returns what
    became of them and the messages that reached their final status, which the caller settles
    (settlement.settle) once this is committed. In a caller's transaction (the webhook's batches,
    messaging/reports/inbox.py) its own become savepoints: the fallback below still works."""
    summary = ReportSummary(invalid=len(rejected))
    for rejection in rejected:
        _log_invalid(rejection.event_id, rejection.reason, position=rejection.position)
    fit = []
    for report in reports:
        if reason := _unfit(report):
            summary.invalid += 1
            _log_invalid(report.event_id, reason)
        else:
            fit.append(report)
    try:
        finished = _apply_batch(fit, summary)
    except IntegrityError:
        # A concurrent POST stored one of these events between our look and our insert, and
        # its unique event id stopped ours. Nothing of the batch was written (the insert comes
        # before anything is counted or logged); each report goes on its own, and that one
        # stops at the stored row as any re-delivery does.
        finished = _apply_one_by_one(fit, summary)
    summary.applied = len(finished)
    return summary, finished


def _apply_batch(reports: list[Report], summary: ReportSummary) -> list[Message]:
    """The batch in one transaction and a fixed number of statements, whatever its size:
    which events are stored already, one insert of the new ones, one lock of their messages,
    then each report in the POST's order in memory (a later report sees what an earlier one
    did, as in the per-report path), and one update each of reports and messages.

    Locks are taken in the per-report path's order, event rows first and then messages (by
    id), so a batch and a per-report run wait for each other rather than deadlock."""
    if not reports:
        return []
    with transaction.atomic():
        stored_already = _stored_already({r.event_id for r in reports})
        new: dict[str, Report] = {}
        duplicates = 0
        for report in reports:
            if report.event_id in stored_already or report.event_id in new:
                duplicates += 1
            else:
                new[report.event_id] = report
        if not new:
            summary.duplicates += duplicates
            return []
        # In event id order: two batches inserting some of the same events wait in one order.
        rows = DeliveryReport.objects.bulk_create(sorted(
            (_stored_row(report) for report in new.values()), key=lambda row: row.event_data_id))
        # Counted only now: an IntegrityError above leaves the summary to the per-report path.
        summary.duplicates += duplicates
        stored = {row.event_data_id: row for row in rows}
        messages = _lock_messages(new.values())
        tied: list[DeliveryReport] = []
        moved: dict[int, Message] = {}
        for report in new.values():
            message = messages.get(report)
            result = _apply(report, message, summary)
            if result is not _Result.UNTIED:
                stored[report.event_id].message = message
                tied.append(stored[report.event_id])
            if result is _Result.FINISHED:
                moved[message.id] = message
        if tied:
            update_rows(tied, ["message"])
        if moved:
            update_rows(list(moved.values()), _MOVED_FIELDS)
    return list(moved.values())


def _apply_one_by_one(reports: list[Report], summary: ReportSummary) -> list[Message]:
    """Each report in its own transaction: for a batch that met a concurrent copy of itself."""
    finished = []
    for report in reports:
        try:
            with transaction.atomic():
                stored = _stored_row(report)
                stored.save(force_insert=True)
                message = _find_message(report)
                result = _apply(report, message, summary)
                if result is not _Result.UNTIED:
                    stored.message = message
                    stored.save(update_fields=["message"])
                if result is _Result.FINISHED:
                    message.save(update_fields=_MOVED_FIELDS)
        except IntegrityError:
            summary.duplicates += 1
            continue
        if result is _Result.FINISHED:
            finished.append(message)
    return finished


def _stored_already(event_ids: set[str]) -> set[str]:
    stored = DeliveryReport.objects.filter(event_data_id__in=in_values(event_ids, "text"))
    return set(stored.values_list("event_data_id", flat=True))


def _stored_row(report: Report) -> DeliveryReport:
    return DeliveryReport(event_data_id=report.event_id, solapi_message_id=report.solapi_message_id,
                          status_code=report.status_code, message_type=report.message_type, payload=report.payload)


def _unfit(report: Report) -> str:
    """Why the report cannot be stored as it is, or ""."""
    if not report.status_code:
        # An empty code would read as an unknown failure and fail the message.
        return "no statusCode"
    for attribute, column in _COLUMNS.items():
        if len(getattr(report, attribute)) > column.max_length:
            return f"{attribute} longer than {column.max_length} characters"
    texts = [report.event_id, report.solapi_message_id, report.group_id, report.status_code,
             report.message_type, report.status_message, report.payload]
    for text in _strings(texts):
        # JSON carries \u0000 and lone surrogates (\ud800); PostgreSQL stores neither, in text or jsonb.
        if "\x00" in text:
            return "a NUL character in a text"
        if not text.isascii() and not _encodes(text):
            return "an unpaired surrogate in a text"
    return ""


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _strings(value: object) -> Iterator[str]:
    """Every string in a JSON value, keys included (a stack: no recursion limit to meet)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _log_invalid(event_id: str, reason: str, *, position: int | None = None) -> None:
    # The event id is the sender's text: cut, and quoted so it cannot forge a log line.
    logger.warning("report_invalid event=%r position=%s reason=%s", event_id[:100], position, reason)


class _Messages:
    """A batch's messages, locked, found as _find_message finds one."""

    def __init__(self, messages: Iterable[Message]):
        self.by_id: dict[int, Message] = {}
        self.by_solapi_id: dict[str, Message] = {}
        for message in messages:  # by id: the first of a Solapi id is the one .first() finds
            self.by_id[message.id] = message
            if message.solapi_message_id:
                self.by_solapi_id.setdefault(message.solapi_message_id, message)

    def get(self, report: Report) -> Message | None:
        if report.message_id:
            return self.by_id.get(report.message_id)
        return self.by_solapi_id.get(report.solapi_message_id) if report.solapi_message_id else None


def _lock_messages(reports: Iterable[Report]) -> _Messages:
    ids, solapi_ids = set(), set()
    for report in reports:
        if report.message_id:
            ids.add(report.message_id)
        elif report.solapi_message_id:
            solapi_ids.add(report.solapi_message_id)
    if not ids and not solapi_ids:
        return _Messages([])
    lookup = Q(id__in=in_values(ids, "bigint")) | Q(solapi_message_id__in=in_values(solapi_ids, "text"))
    return _Messages(_locking().filter(lookup).order_by("id"))


def _find_message(report: Report) -> Message | None:
    """Our id travels in customFields; Solapi's message id is the fallback."""
    if report.message_id:
        lookup = Q(id=report.message_id)
    elif report.solapi_message_id:
        lookup = Q(solapi_message_id=report.solapi_message_id)
    else:
        return None
    return _locking().filter(lookup).first()


def _locking():
    # The chunk for its group id (_is_ours); only the message is locked (a chunk may be null).
    return Message.objects.select_for_update(of=("self",)).select_related("chunk")


def _is_ours(message: Message, report: Report) -> bool:
    """Whether the report is about what we sent, not merely about our id.

    Our id (customFields.message_id) is a small sequential number anyone can write into a
    forged report; the Solapi ids are Solapi's and reach no academy (the API shows neither).
    - Once we have recorded the message's Solapi id (a registration refusal, an applied
      report, a poll), the report must carry that id.
    - Before that (accepted messages: their ids are not written at registration, see
      messaging/pipeline/delivery.py, _record_registrations), it must name the Solapi group
      of the message's chunk. The chunk keeps the group id from before its messages were
      registered to the end (a new group is made only for messages never registered), and
      Solapi puts groupId in every report. A poll asks for one group, and its reports carry
      that group's id (messaging/reports/reconciliation.py).
    """
    if message.solapi_message_id:
        return report.solapi_message_id == message.solapi_message_id
    group_id = message.chunk.solapi_group_id if message.chunk else ""
    return bool(group_id) and report.group_id == group_id


class _Result(enum.Enum):
    UNTIED = "untied"  # stored without a message
    TIED = "tied"  # stored with its message, which did not move
    FINISHED = "finished"  # and the message reached its final status


def _apply(report: Report, message: Message | None, summary: ReportSummary) -> _Result:
    """What the report does to its (locked) message, in memory: the caller writes it."""
    if message is None:
        summary.unmatched += 1
        logger.warning("report_unmatched event=%r solapi_message=%r", report.event_id, report.solapi_message_id)
        return _Result.UNTIED
    if not _is_ours(message, report):
        # Stored without a message (the payload keeps what it claimed), and nothing moves:
        # no status, no refund, no Solapi id overwritten. Counted as unmatched, so the answer
        # does not tell a forger that the id exists.
        summary.unmatched += 1
        logger.warning("report_mismatched event=%r message=%s group=%r solapi_message=%r", report.event_id,
                       message.id, report.group_id, report.solapi_message_id)
        return _Result.UNTIED
    outcome = classify_status(report.status_code)
    if outcome.in_progress:
        return _Result.TIED
    if message.status not in _REPORTABLE:
        # Final already: a late report cannot move it backwards.
        return _Result.TIED
    now = clock.now()
    message.accepted_at = message.accepted_at or now
    message.completed_at = now
    # Set here: update_rows does not stamp auto_now fields.
    message.updated = now
    message.solapi_status_code = outcome.code
    message.solapi_message_id = report.solapi_message_id or message.solapi_message_id
    message.delivered_type = delivered_type(message, report.message_type, report.replacement, outcome.delivered)
    if outcome.delivered:
        message.status = MessageStatus.DELIVERED
    else:
        message.status = MessageStatus.FAILED
        message.failure_class = outcome.failure_class
        message.failure_reason = (report.status_message or str(outcome.failure_class.label))[:300]
    return _Result.FINISHED


_MOVED_FIELDS = ["status", "accepted_at", "completed_at", "solapi_status_code", "solapi_message_id", "delivered_type",
                 "failure_class", "failure_reason", "updated"]
