"""The operations console (the Django admin) in a real browser (headless Chromium,
tests/browser/conftest.py): a send goes through a real worker, the local SQS and the Solapi
sandbox (reports over the webhook); a superuser logs into /admin/ and opens one message's page
(its timeline) and the send request's page (its progress). Every time there is the KST reading
of the model's own datetime fields, as the admin's format module prints it, labelled KST, and
no time is printed in UTC.

The screenshots docs/screenshots/admin-timeline.png and admin-send-request.png (shown in the
README) are written here."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.utils import dateformat

from harness.academies import make_academy
from harness.waiting import wait_until
from messaging.models import MessageStatus, SendRequest
from project import clock
from project.formats.ko import formats as admin_formats
from tests.browser.conftest import DEADLINE
from tests.pipeline.conftest import assert_books_balance, finished, send

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ADMIN_USERNAME = "admin-console-test"
ADMIN_PASSWORD = "admin-console-test-password"
STUDENTS = 3
SMS_PRICE = 13
# Named here, not read from settings or project.clock: the zone the pages must be in.
SEOUL = ZoneInfo("Asia/Seoul")
# Any date and time printed on a page, with the label after it when there is one.
PRINTED_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?: [A-Z]{2,5}\b)?")


def kst(moment: datetime) -> str:
    """As the admin prints a datetime (project/formats/ko/formats.py): '2026-03-03 01:30:05 KST'."""
    assert admin_formats.DATETIME_FORMAT.endswith(" T")
    return dateformat.format(moment.astimezone(SEOUL), admin_formats.DATETIME_FORMAT)


def utc(moment: datetime) -> str:
    """The same moment read in UTC, to the minute, with or without a label after it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def assert_shown_in_kst(page: str, moments: dict[str, datetime]) -> None:
    for name, moment in moments.items():
        assert kst(moment) in page, f"{name} ({moment.isoformat()}) is not on the page as {kst(moment)}"
        assert utc(moment) not in page, f"{name} is on the page in UTC ({utc(moment)})"
    times = PRINTED_TIME.findall(page)
    assert times and all(t.endswith(" KST") for t in times), times


def test_the_admin_shows_a_messages_timeline_and_its_send_request_in_kst(browser, worker, reporting_sandbox):
    started = clock.now()
    academy = make_academy("admin-console", name="타임라인 학원", students=STUDENTS)
    get_user_model().objects.create_superuser(ADMIN_USERNAME, password=ADMIN_PASSWORD)
    send_request = send(academy)
    messages = finished(send_request)
    assert [m.status for m in messages] == [MessageStatus.DELIVERED] * STUDENTS
    # Done when every message is final; until then the page reloads itself every few seconds.
    wait_until(lambda: SendRequest.objects.filter(id=send_request.id, completed__isnull=False).exists(),
               timeout=DEADLINE, what="the send request to be completed")
    assert_books_balance(academy, spent=STUDENTS * SMS_PRICE)
    send_request.refresh_from_db()
    message = messages[0]
    reports = list(message.reports.order_by("id"))
    assert reports and message.accepted_at
    # The moments the pipeline wrote are this test's (the project clock), not a fixture's.
    assert started <= message.created <= message.accepted_at <= reports[0].received <= clock.now()

    browser.log_in(ADMIN_USERNAME, ADMIN_PASSWORD, login_path="/admin/login/")

    # The message's page: its timeline, from creation to the delivery report.
    browser.open(f"/admin/messaging/message/{message.id}/change/")
    timeline = browser.wait_text(".field-timeline", lambda t: "delivery report" in t, "the message's timeline")
    for step in ("created", "credit", "queued", "solapi", "accepted by Solapi", "delivery report"):
        assert step in timeline, f"{step!r} is not in the timeline:\n{timeline}"
    assert "시각 (KST)" in timeline
    assert_shown_in_kst(browser.text("main"), {
        "created": message.created, "accepted_at": message.accepted_at, "report received": reports[0].received})
    browser.screenshot("admin-timeline")

    # The send request's page: its fields and its progress, over (so no reloading).
    browser.open(f"/admin/messaging/sendrequest/{send_request.id}/change/")
    shown_progress = browser.wait_text(".field-broadcast_progress", lambda t: "최종 100.0%" in t,
                                       "the send request's progress")
    assert f"delivered {STUDENTS}" in shown_progress and "새로고침" not in shown_progress
    assert_shown_in_kst(browser.text("main"), {
        "created": send_request.created, "dispatched": send_request.dispatched, "completed": send_request.completed})
    browser.screenshot("admin-send-request")
