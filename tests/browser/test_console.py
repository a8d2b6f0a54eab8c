"""The staff console in a real browser, end to end: log in as the demo staff member, write an
SMS to a class while the preview follows the typing, send it, and watch it reach `delivered`
through a real worker, the local SQS and the Solapi sandbox (reports over the webhook).
The screenshots in docs/screenshots/ (shown in the README) are written here."""

import re

import pytest
from django.core.management import call_command

from messaging.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME
from messaging.models import MessageStatus, SendRequest

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLASS_NAME = "수학 A반"  # seed_demo: its first 8 students, every one with a parent's phone
CLASS_SIZE = 8
SHORT = "#{이름} 학생 학부모님, 내일은 휴원입니다."
LONGER = " 보강 일정은 다음 주 월요일 오후 네 시이며, 교재를 꼭 챙겨 오도록 지도 부탁드립니다."


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text) or 0)


def test_compose_an_sms_to_a_class_send_it_and_watch_it_delivered(browser, worker, reporting_sandbox):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    browser.log_in(DEMO_USERNAME, DEMO_PASSWORD)
    browser.wait(lambda: browser.find("h1").text == "메시지 쓰기", "the compose page")

    # A class, and the first words: the preview counts the class and prices an SMS.
    browser.find(f"#classes input[value='{_class_id(CLASS_NAME)}']").click()
    browser.find("#body").send_keys(SHORT)
    browser.wait_text("#type", lambda t: "SMS" in t, "the preview of an SMS")
    assert number(browser.text("#recipients")) == CLASS_SIZE
    short_bytes = number(browser.text("#bytes"))
    assert 0 < short_bytes <= 90
    assert number(browser.text("#cost")) == CLASS_SIZE * 13

    # Typing on: the byte count grows past 90, and the message becomes an LMS at its price.
    browser.find("#body").send_keys(LONGER)
    browser.wait_text("#type", lambda t: "LMS" in t, "the preview of an LMS")
    assert number(browser.text("#bytes")) > 90 > short_bytes
    assert number(browser.text("#cost")) == CLASS_SIZE * 29
    available = number(browser.text("#available"))
    assert number(browser.text("#after")) == available - CLASS_SIZE * 29
    browser.screenshot("compose")

    # Sending asks first, showing the total.
    browser.wait(lambda: browser.find("#send").is_enabled(), "the send button")
    browser.find("#send").click()
    confirm = browser.wait_text("#confirm-text", lambda t: "명에게" in t, "the confirmation")
    assert f"{CLASS_SIZE}명" in confirm and f"{CLASS_SIZE * 29}원" in confirm
    browser.find("#confirm-send").click()

    browser.wait(lambda: re.search(r"/app/send-requests/\d+/$", browser.driver.current_url), "the watch page")
    send_request = SendRequest.objects.get(id=int(browser.driver.current_url.rstrip("/").rsplit("/", 1)[1]))
    # The counts move by themselves (the page polls), until every message is delivered.
    browser.wait_text(f"#count-{MessageStatus.DELIVERED}", lambda t: number(t) == CLASS_SIZE,
                      "every message to be delivered")
    browser.wait_text("#state", lambda t: "끝났습니다" in t, "the page to say it is over")
    assert number(browser.text("#count-total")) == CLASS_SIZE
    assert not browser.find("#cancel").is_displayed()
    assert set(send_request.messages.values_list("status", flat=True)) == {MessageStatus.DELIVERED}
    assert reporting_sandbox.sends_per_message_id() == {str(i): 1 for i in send_request.messages.values_list(
        "id", flat=True)}
    browser.screenshot("watch")

    # History: this send, newest first, with its counts; the credit it took.
    browser.find("a[href='/app/send-requests/']").click()
    browser.wait(lambda: browser.find("h1").text == "발송 내역", "the history page")
    first_row = browser.find("#history tbody tr")
    assert first_row.find_element("css selector", "a").text == str(send_request.id)
    assert str(CLASS_SIZE) in first_row.text
    assert number(browser.text("#balance")) == 100_000 - CLASS_SIZE * 29
    assert "차감" in browser.text("#ledger")
    browser.screenshot("history")


def _class_id(name: str) -> int:
    from tenants.models import SchoolClass

    return SchoolClass.objects.get(tenant__slug="demo", name=name).id
