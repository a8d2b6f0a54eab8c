"""Delivery reports: what finally happened to accepted messages.

Reports come from Solapi's single-report webhook, or from polling a group's messages
when a report is overdue (messaging/reports/reconciliation.py); the adapter reads both
into Reports (messaging/solapi/reports.py), and both go through apply_reports.
Solapi re-delivers webhooks, so each report is stored under its unique event id first;
a second copy stops there.
"""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from messaging.models import DeliveryReport, Message, MessageStatus
from messaging.pipeline import settlement
from messaging.reports.fallback import delivered_type
from messaging.solapi.outcomes import classify_status
from messaging.solapi.reports import Report

logger = logging.getLogger(__name__)

# Reports can only move messages that Solapi accepted (or is sending: a report may
# overtake the send task's own bookkeeping).
_REPORTABLE = (MessageStatus.SENDING, MessageStatus.ACCEPTED)


@dataclass
class ReportSummary:
    applied: int = 0
    duplicates: int = 0
    unmatched: int = 0


def apply_reports(reports: list[Report]) -> ReportSummary:
    summary = ReportSummary()
    finished: list[Message] = []
    for report in reports:
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


def _find_message(report: Report) -> Message | None:
    """Our id travels in customFields; Solapi's message id is the fallback."""
    if report.message_id:
        lookup = Q(id=report.message_id)
    elif report.solapi_message_id:
        lookup = Q(solapi_message_id=report.solapi_message_id)
    else:
        return None
    return Message.objects.select_for_update().filter(lookup).first()


def _apply(report: Report, stored: DeliveryReport, summary: ReportSummary) -> Message | None:
    message = _find_message(report)
    if message is None:
        summary.unmatched += 1
        logger.warning("report_unmatched event=%s solapi_message=%s", report.event_id, report.solapi_message_id)
        return None
    stored.message = message
    stored.save(update_fields=["message"])
    outcome = classify_status(report.status_code)
    if outcome.in_progress:
        return None
    if message.status not in _REPORTABLE:
        # Final already: a late report cannot move it backwards.
        return None
    now = timezone.now()
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
