"""Delivery reports: what finally happened to accepted messages.

Reports come from Solapi's single-report webhook, or from polling a group's messages
when a report is overdue (messaging/reports/reconciliation.py); the adapter reads both
into Reports (messaging/solapi/reports.py), and both go through apply_reports.

Each report is handled on its own, in its own transaction:
- one that does not fit our tables (an id longer than its column, a NUL character) is
  counted as invalid, logged and not stored; the rest of the batch goes on;
- Solapi re-delivers webhooks, so a report is stored under its unique event id first,
  and a second copy stops there;
- a report moves a message only when it is tied to what we sent (_is_ours); any other
  is stored without a message, logged, and changes nothing.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from messaging.models import Chunk, DeliveryReport, Message, MessageStatus
from messaging.pipeline import settlement
from messaging.reports.fallback import delivered_type
from messaging.solapi.outcomes import classify_status
from messaging.solapi.reports import Rejection, Report
from project import clock

logger = logging.getLogger(__name__)

# Reports can only move messages that Solapi accepted (or is sending: a report may
# overtake the send task's own bookkeeping).
_REPORTABLE = (MessageStatus.SENDING, MessageStatus.ACCEPTED)

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
    summary = ReportSummary(invalid=len(rejected))
    for rejection in rejected:
        _log_invalid(rejection.event_id, rejection.reason, position=rejection.position)
    finished: list[Message] = []
    for report in reports:
        if reason := _unfit(report):
            summary.invalid += 1
            _log_invalid(report.event_id, reason)
            continue
        try:
            with transaction.atomic():
                stored = DeliveryReport.objects.create(
                    event_data_id=report.event_id, solapi_message_id=report.solapi_message_id,
                    status_code=report.status_code, message_type=report.message_type, payload=report.payload,
                )
                message = _apply(report, stored, summary)
        except IntegrityError:
            summary.duplicates += 1
            continue
        if message:
            finished.append(message)
    # Credit and logs after the status commits: settle() is idempotent, and the
    # reconciliation sweep repeats it if this process dies in between.
    settlement.settle(finished)
    summary.applied = len(finished)
    return summary


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


def _find_message(report: Report) -> Message | None:
    """Our id travels in customFields; Solapi's message id is the fallback."""
    if report.message_id:
        lookup = Q(id=report.message_id)
    elif report.solapi_message_id:
        lookup = Q(solapi_message_id=report.solapi_message_id)
    else:
        return None
    return Message.objects.select_for_update(of=("self",)).select_related("chunk").filter(lookup).first()


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


def _apply(report: Report, stored: DeliveryReport, summary: ReportSummary) -> Message | None:
    message = _find_message(report)
    if message is None:
        summary.unmatched += 1
        logger.warning("report_unmatched event=%r solapi_message=%r", report.event_id, report.solapi_message_id)
        return None
    if not _is_ours(message, report):
        # Stored without a message (the payload keeps what it claimed), and nothing moves:
        # no status, no refund, no Solapi id overwritten. Counted as unmatched, so the answer
        # does not tell a forger that the id exists.
        summary.unmatched += 1
        logger.warning("report_mismatched event=%r message=%s group=%r solapi_message=%r", report.event_id,
                       message.id, report.group_id, report.solapi_message_id)
        return None
    stored.message = message
    stored.save(update_fields=["message"])
    outcome = classify_status(report.status_code)
    if outcome.in_progress:
        return None
    if message.status not in _REPORTABLE:
        # Final already: a late report cannot move it backwards.
        return None
    now = clock.now()
    message.accepted_at = message.accepted_at or now
    message.completed_at = now
    message.solapi_status_code = outcome.code
    message.solapi_message_id = report.solapi_message_id or message.solapi_message_id
    message.delivered_type = delivered_type(message, report.message_type, report.replacement, outcome.delivered)
    if outcome.delivered:
        message.status = MessageStatus.DELIVERED
    else:
        message.status = MessageStatus.FAILED
        message.failure_class = outcome.failure_class
        message.failure_reason = (report.status_message or str(outcome.failure_class.label))[:300]
    message.save(update_fields=["status", "accepted_at", "completed_at", "solapi_status_code", "solapi_message_id",
                                "delivered_type",
                                "failure_class", "failure_reason", "updated"])
    return message
