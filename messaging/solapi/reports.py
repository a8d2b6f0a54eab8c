"""Delivery reports as Solapi words them, read into plain data.

Two sources say what finally happened to an accepted message: the single-report
webhook (parse_webhook) and the group's message list, polled when a report is overdue
(polled_report). Both become a Report; messaging/reports/apply.py applies them.

A webhook POST carries several reports. Each is read on its own (after the POST is stored and
answered: messaging/reports/inbox.py): one that cannot be read becomes a Rejection (counted
and logged by record_reports) and the others go on;
whether a readable report fits our tables is record_reports' to check.
Only a body that is not a list, or a list longer than MAX_REPORTS_PER_WEBHOOK, is
refused whole, before any item is read.
"""

from dataclasses import dataclass, field

from pydantic import ValidationError

from messaging.solapi.client import MessageResult, our_message_id
from messaging.solapi.schemas import Report as ReportModel

# Solapi POSTs reports in batches (our sandbox: 100 per POST). A list far longer is not
# Solapi's: refused before its items are read, so a 1 MB body of `{}` items cannot become
# tens of thousands of validations and inserts. A refused batch is retried by Solapi and,
# failing that, its messages are polled (messaging/reports/reconciliation.py).
MAX_REPORTS_PER_WEBHOOK = 1000


@dataclass(frozen=True)
class Report:
    # Unique per report: Solapi re-delivers webhooks, and a second copy is recognised by it.
    event_id: str
    message_id: int | None
    solapi_message_id: str
    status_code: str
    message_type: str
    # Solapi's words for the status, e.g. why a message failed.
    status_message: str
    payload: dict
    # Solapi's fallback flag (True: an AlimTalk went out as SMS/LMS); None when not said.
    replacement: bool | None = None
    # The Solapi group the report says the message went out in: with the Solapi message id,
    # what ties the report to what we sent (messaging/reports/apply.py, _is_ours).
    group_id: str = ""


@dataclass(frozen=True)
class Rejection:
    """A report that could not be read: where it was in the POST and why."""

    position: int
    reason: str
    # As far as it could be read (may be empty); for the log only.
    event_id: str = ""


@dataclass
class WebhookBatch:
    reports: list[Report] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


class InvalidReportPayload(ValueError):
    pass


class TooManyReports(ValueError):
    def __init__(self, count: int, limit: int = MAX_REPORTS_PER_WEBHOOK):
        super().__init__(f"{count} reports in one webhook, over the limit of {limit}")
        self.count, self.limit = count, limit


def check_envelope(body: object) -> list:
    """The body, if a webhook may carry it: a list of at most MAX_REPORTS_PER_WEBHOOK items.
    Raises InvalidReportPayload or TooManyReports otherwise; the only refusals of a whole POST
    (the webhook checks this much before it stores a POST, and reads the items later)."""
    if not isinstance(body, list):
        raise InvalidReportPayload("not a Solapi single report: the body must be a list of reports")
    if len(body) > MAX_REPORTS_PER_WEBHOOK:
        raise TooManyReports(len(body))
    return body


def parse_webhook(body: object) -> WebhookBatch:
    """Solapi's single-report envelope: [{eventDataId, data: {...}, retryCount}].

    Raises as check_envelope does; every other problem is one report's own (a Rejection)."""
    body = check_envelope(body)
    batch = WebhookBatch()
    for position, item in enumerate(body):
        report = _read_one(position, item)
        if isinstance(report, Rejection):
            batch.rejected.append(report)
        else:
            batch.reports.append(report)
    return batch


def _read_one(position: int, item: object) -> Report | Rejection:
    event_id = item.get("eventDataId") if isinstance(item, dict) else None
    event_id = event_id if isinstance(event_id, str) else ""
    if not isinstance(item, dict):
        return Rejection(position, "not an object", event_id)
    try:
        # The SDK's SingleReport, with `replacement` kept (messaging/solapi/schemas.py).
        report = ReportModel.model_validate(item)
    except ValidationError as exc:
        return Rejection(position, f"not a Solapi single report: {exc.error_count()} errors", event_id)
    if not report.event_data_id:
        # Without it a re-delivery cannot be told from a new report.
        return Rejection(position, "no eventDataId", event_id)
    data = report.data
    return Report(
        event_id=report.event_data_id,
        message_id=our_message_id(data.custom_fields),
        solapi_message_id=data.message_id or "",
        group_id=data.group_id or "",
        status_code=data.status_code or "",
        message_type=data.type or "",
        status_message=data.status_message or "",
        payload=data.model_dump(mode="json", by_alias=True, exclude_none=True),
        replacement=data.replacement,
    )


def polled_report(result: MessageResult, group_id: str) -> Report:
    """A final status read from the message list of `group_id` (which we asked Solapi for).
    Its event id is made of the message and its status, so polling the same outcome again
    is a duplicate."""
    return Report(
        event_id=f"poll:{result.solapi_message_id}:{result.outcome.code}", message_id=result.message_id,
        solapi_message_id=result.solapi_message_id, status_code=result.outcome.code,
        message_type=result.message_type, status_message=result.status_message,
        payload={"source": "poll", "statusCode": result.outcome.code}, replacement=result.replacement,
        group_id=group_id,
    )
