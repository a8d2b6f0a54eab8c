"""The SDK's response models, extended with what they drop.

solapi 5.0.3 ignores unknown fields, and neither its listed `Message` nor its webhook
`SingleReportData` declares `replacement`: the flag Solapi sets on an AlimTalk that fell back
to SMS/LMS. Without it such a message looks like a delivered AlimTalk and is charged the
AlimTalk price (docs/exactly-once.md, "Fallback pricing"). These subclasses keep it.
"""

from solapi.model.response.groups.get_group_messages import GetGroupMessagesResponse
from solapi.model.response.message import Message
from solapi.model.webhook.single_report import SingleReport, SingleReportData


class ListedMessage(Message):
    # None: Solapi did not say (older payloads); the group's sentReplacement decides then.
    replacement: bool | None = None


class GroupMessagesPage(GetGroupMessagesResponse):
    message_list: dict[str, ListedMessage] = {}


class ReportData(SingleReportData):
    replacement: bool | None = None


class Report(SingleReport):
    """One report of Solapi's single-report webhook body [{eventDataId, data: {...}, retryCount}];
    each is read on its own (messaging/solapi/reports.py)."""

    data: ReportData

