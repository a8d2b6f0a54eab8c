"""A message's whole life in time order, assembled from the tables that recorded it:
the message, its credit movements, its chunk's Solapi calls, its reports and its outcome rows."""

from dataclasses import dataclass
from datetime import datetime

from billing.ledger import movements_for_message
from messaging.models import DeliveryAttempt, Message


@dataclass(frozen=True)
class Event:
    at: datetime
    what: str
    detail: str = ""


def message_timeline(message: Message) -> list[Event]:
    events = [Event(message.created, "created", f"{message.message_type} {message.price}, {message.recipient_kind}")]
    if message.skip_reason:
        events.append(Event(message.created, "skipped", message.skip_reason))
    for move in movements_for_message(message.id):
        events.append(Event(move.at, f"credit {move.kind}",
                            f"balance {move.balance_delta:+}, held {move.held_delta:+}"))
    chunk = message.chunk
    if chunk:
        events.append(Event(chunk.created, "queued", f"chunk {chunk.index} of send request {chunk.send_request_id}"))
        for attempt in DeliveryAttempt.objects.filter(chunk=chunk).order_by("id"):
            outcome = " ".join(filter(None, [str(attempt.http_status or "no reply"), attempt.error_code,
                                             attempt.failure_class, "⚠ ambiguous" if attempt.ambiguous else ""]))
            events.append(Event(attempt.created, f"solapi {attempt.operation}",
                                f"group {attempt.solapi_group_id}: {outcome} ({attempt.duration_ms} ms)"))
    if message.accepted_at:
        events.append(Event(message.accepted_at, "accepted by Solapi", message.solapi_message_id))
    for report in message.reports.order_by("id"):
        events.append(Event(report.received, "delivery report", f"{report.status_code} {report.message_type} "
                                                                 f"(event {report.event_data_id})"))
    for outcome in message.outcomes.order_by("id"):
        events.append(Event(outcome.created, f"outcome {outcome.event}",
                            f"{outcome.amount} {outcome.failure_class}".strip()))
    if message.completed_at and message.failure_class:
        events.append(Event(message.completed_at, "failed", f"{message.failure_class}: {message.failure_reason}"))
    return sorted(events, key=lambda e: e.at)
