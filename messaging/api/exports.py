"""A send request's messages as CSV, for staff who keep records in a spreadsheet.

UTF-8 with a byte order mark, so that Excel opens Hangul correctly (without it, Excel reads
a CSV in the system's ANSI code page and shows mojibake). Numbers are masked as everywhere
else. A cell that starts like a formula (=, +, -, @, a tab or a carriage return) is quoted
with a leading apostrophe, so a message text cannot run as a formula in the sheet (OWASP
"CSV injection").
"""

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from messaging.models import MessageStatus
from messaging.selectors import korean
from project.clock import KST
from tenants.models import RecipientKind

BOM = "\ufeff"
COLUMNS = [
    ("id", "메시지 ID"), ("student_name", "학생"), ("recipient", "수신자"), ("phone", "전화번호"),
    ("type", "유형"), ("status", "상태"), ("reason", "사유"), ("failure_detail", "상세"), ("price", "요금"),
    ("accepted_at", "접수 시각 (KST)"), ("completed_at", "완료 시각 (KST)"), ("text", "내용"),
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """csv.writer writes into this and gets the line back, to stream it."""

    def write(self, value: str) -> str:
        return value


def csv_response(rows: Iterable[dict[str, Any]], *, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield BOM + writer.writerow([title for _, title in COLUMNS])
    for row in rows:
        yield writer.writerow([_cell(name, row[name]) for name, _ in COLUMNS])


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "status" and value in MessageStatus.values:
        return korean(MessageStatus(value).label)
    if name == "recipient" and value in RecipientKind.values:
        return str(RecipientKind(value).label)
    if name.endswith("_at"):
        return timezone.localtime(value, KST).strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
