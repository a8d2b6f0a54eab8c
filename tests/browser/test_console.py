"""The staff console in a real browser (headless Chromium, tests/browser/conftest.py):

- log in as the demo staff member, write an SMS to a class while the preview follows the
  typing, send it, and watch it reach `delivered` through a real worker, the local SQS and the
  Solapi sandbox (reports over the webhook);
- the ad rules, the skipped recipients and the likely-ad warning, as staff type;
- cancel a 5,000-message broadcast mid-way and see the unsent messages' credit released.

The screenshots in docs/screenshots/ (shown in the README) are written here."""

import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command

from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.management.commands.seed_demo import DEMO_PASSWORD, DEMO_USERNAME
from messaging.models import Message, MessageStatus, SendRequest
from messaging.pipeline.queues import BULK_QUEUE
from tests.browser.conftest import DEADLINE
from tests.pipeline.conftest import assert_books_balance, send

# Skipped with the reason when selenium is not installed (pip install -r requirements-dev.txt).
Keys = pytest.importorskip("selenium.webdriver.common.keys", reason="selenium is not installed").Keys

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "console-test-password"
CLASS_NAME = "수학 A반"  # seed_demo: its first 8 students, every one with a parent's phone
CLASS_SIZE = 8
OUTSIDER = "전서아"  # seed_demo's 20th student: 국어 C반 only
SHORT = "#{이름} 학생 학부모님, 내일은 휴원입니다."
LONGER = " 보강 일정은 다음 주 월요일 오후 네 시이며, 교재를 꼭 챙겨 오도록 지도 부탁드립니다."


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text) or 0)


def test_compose_an_sms_to_a_class_send_it_and_watch_it_delivered(browser, worker, reporting_sandbox):
    call_command("seed_demo", stdout=io.StringIO())
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

    # A student from another class, found by name, adds one parent; taken out again.
    browser.find("#student-search").send_keys(OUTSIDER)
    browser.wait(lambda: browser.find("#search-results .add-student").click() or True, "the search's answer")
    browser.wait_text("#recipients", lambda t: number(t) == CLASS_SIZE + 1, "the added student counted")
    browser.find("#picked .chip button").click()
    browser.wait_text("#recipients", lambda t: number(t) == CLASS_SIZE, "the student taken out")
    assert browser.find("#search-results .add-student").is_enabled()
    browser.find("#student-search").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    browser.wait(lambda: not browser.driver.find_elements("css selector", "#search-results li"), "the search cleared")

    # Typing on: the byte count grows past 90, and the message becomes an LMS at its price.
    browser.find("#body").send_keys(LONGER)
    # The preview of the whole text, not one of a keystroke on the way (an earlier one may
    # already say LMS; the send button is off while a newer preview is on its way).
    browser.wait_text("#sample", lambda t: t.endswith(LONGER.strip()), "the preview of the whole text")
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
    # Rendered while it ran, the page reloads once at the end (for the failures and the retry button).
    browser.wait(lambda: browser.find("#progress").get_attribute("data-completed") == "1", "the final page")
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


def test_the_ad_rules_and_the_skipped_recipients_are_explained_as_you_type(browser):
    call_command("seed_demo", stdout=io.StringIO())
    browser.log_in(DEMO_USERNAME, DEMO_PASSWORD)
    browser.find(f"#classes input[value='{_class_id(CLASS_NAME)}']").click()
    browser.find("input[name=purpose][value=ad]").click()
    browser.find("#body").send_keys("#{이름} 학생 겨울 특강 안내")

    # An ad without its label: the refusal's Korean message, and no sending.
    refusal = browser.wait_text("#warnings", lambda t: "광고 규칙" in t, "the ad-rule refusal")
    assert "(광고)" in refusal
    assert not browser.find("#send").is_enabled()
    # With the label and the opt-out line, it is a lawful ad, but nobody in the demo consented.
    browser.find("#ad-frame").click()
    browser.wait_text("#skip-reasons", lambda t: "광고 수신 미동의" in t, "the skipped recipients and why")
    assert f"{CLASS_SIZE}명 제외" in browser.text("#skip-reasons")
    assert number(browser.text("#recipients")) == 0 and not browser.find("#send").is_enabled()

    # Information that reads like an ad is sent, with a warning.
    browser.find("input[name=purpose][value=info]").click()
    body = browser.find("#body")
    body.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    body.send_keys("#{이름} 학생, 이번 주 수강료 할인 이벤트가 있습니다.")
    browser.wait_text("#warnings", lambda t: "광고성 표현" in t and "할인" in t, "the likely-ad warning")
    assert number(browser.text("#recipients")) == CLASS_SIZE and browser.find("#send").is_enabled()


def _class_id(name: str) -> int:
    from tenants.models import SchoolClass

    return SchoolClass.objects.get(tenant__slug="demo", name=name).id


BROADCAST = 5000
CHUNK_SIZE = 500
QUEUE = f"{BULK_QUEUE}-console-cancel"
CREDIT = Decimal("100000")


def test_cancel_a_broadcast_mid_way_and_see_the_unsent_credit_released(browser, reporting_sandbox, broker,
                                                                         start_worker, worker):
    """5,000 messages in 10 chunks, each send slowed down in the sandbox: cancelled from the
    watch page once the first chunk went out. The page shows what was cancelled and released;
    the history page's credit shows only what Solapi accepted as spent. The broadcast goes
    through a worker of its own queue; the session's worker applies the webhook's reports (their
    task is on the interactive queue)."""
    academy = make_academy("console-broadcast", name="브로드캐스트 학원", students=BROADCAST, credit=CREDIT,
                           password=PASSWORD)
    start_worker("console-cancel", env={"MESSAGING_CHUNK_SIZE": str(CHUNK_SIZE)}, extra_args=("-Q", QUEUE))
    reporting_sandbox.set_latency(1500, "send_group")
    send_request = send(academy, queue=QUEUE, body="#{이름} 학생 학부모님, 내일은 휴원입니다.")
    browser.log_in(academy.user.username, PASSWORD)

    browser.open(f"/app/send-requests/{send_request.id}/")
    # Out of the first chunk: accepted by Solapi, or delivered already (the reports are quick).
    browser.wait(lambda: number(browser.text(f"#count-{MessageStatus.ACCEPTED}"))
                 + number(browser.text(f"#count-{MessageStatus.DELIVERED}")) >= CHUNK_SIZE, "the first chunk to go out")
    assert number(browser.text("#count-total")) == BROADCAST
    browser.find("#cancel").click()
    browser.wait(lambda: browser.driver.switch_to.alert, "the confirmation").accept()
    answer = browser.wait_text("#action-result, #cancelled", lambda t: "취소" in t, "the cancel's answer")
    assert "환원" in answer or "돌아왔습니다" in answer

    # The page follows the rest to the end (reports of what was sent), then shows the cancel.
    browser.wait_text("#state", lambda t: "끝났습니다" in t, "every message to be final")
    browser.wait(lambda: browser.find("#progress").get_attribute("data-completed") == "1", "the final page")
    messages = list(Message.objects.filter(send_request=send_request))
    cancelled = [m for m in messages if m.failure_class == FailureClass.CANCELLED]
    went_out = [m for m in messages if m.accepted_at]
    assert 0 < len(cancelled) < BROADCAST and went_out
    assert len(cancelled) + len(went_out) == BROADCAST
    assert not {str(m.id) for m in cancelled} & set(reporting_sandbox.sends_per_message_id())
    released = sum((m.price for m in cancelled), Decimal("0"))
    spent = sum((m.price for m in went_out), Decimal("0"))
    banner = browser.text("#cancelled")
    assert f"{len(cancelled):,}건" in banner and f"{released:,.0f}원" in banner
    browser.screenshot("watch-cancelled")

    # The unsent messages' credit is back: the balance is the credit less what went out, nothing held.
    browser.open("/app/send-requests/")
    browser.wait(lambda: number(browser.text("#held")) == 0, "the last holds to settle", timeout=DEADLINE)
    assert number(browser.text("#balance")) == CREDIT - spent
    assert number(browser.text("#credit-available")) == CREDIT - spent
    assert_books_balance(academy, spent=spent, credit=CREDIT)
