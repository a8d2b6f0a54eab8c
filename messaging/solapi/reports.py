"""Delivery reports as Solapi words them, read into plain data.

Two sources say what finally happened to an accepted message: the single-report
webhook (parse_webhook) and the group's message list, polled when a report is overdue
(polled_report). Both become a Report; messaging/reports/apply.py applies them.
"""

from dataclasses import dataclass

from pydantic import ValidationError

from messaging.solapi.client import MessageResult, our_message_id
from messaging.solapi.schemas import ReportPayload


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


class InvalidReportPayload(ValueError):
    pass


def parse_webhook(body: object) -> list[Report]:
    """Solapi's single-report envelope: [{eventDataId, data: {...}, retryCount}]."""
    try:
        # The SDK's SingleReportPayload, with `replacement` kept (messaging/solapi/schemas.py).
        reports = ReportPayload.model_validate(body).root
    except ValidationError as exc:
        raise InvalidReportPayload(f"not a Solapi single report: {exc.error_count()} errors") from exc
    return [
        Report(
            event_id=report.event_data_id,
            message_id=our_message_id(report.data.custom_fields),
            solapi_message_id=report.data.message_id or "",
            status_code=report.data.status_code or "",
            message_type=report.data.type or "",
            status_message=report.data.status_message or "",
            payload=report.data.model_dump(mode="json", by_alias=True, exclude_none=True),
            replacement=report.data.replacement,
        )
        for report in reports
    ]


def polled_report(result: MessageResult) -> Report:
    """A final status read from the group's message list. Its event id is made of the
    message and its status, so polling the same outcome again is a duplicate."""
    return Report(
        event_id=f"poll:{result.solapi_message_id}:{result.outcome.code}", message_id=result.message_id,
        solapi_message_id=result.solapi_message_id, status_code=result.outcome.code,
        message_type=result.message_type, status_message=result.status_message,
        payload={"source": "poll", "statusCode": result.outcome.code}, replacement=result.replacement,
    )

