"""The Korean sending rules through the send API: one test per rule. Tests of the night
window freeze the project clock at the next such hour from today (the `clock` fixture)."""

from datetime import datetime, timedelta

import pytest

from harness.academies import make_academy
from messaging.models import Message, MessageStatus, SendRequest
from messaging.pipeline import delivery
from messaging.pipeline.tasks import release_deferred
from tenants.models import CONSENT_VALID_FOR, MarketingConsent, RecipientKind
from tenants.services import consent_record
from tests.api.conftest import client_for

NAME = "ad-academy 학원"
AD = f"(광고) {NAME} 겨울방학 특강 모집! 선착순 20명\n무료수신거부 080-123-4567"

pytestmark = pytest.mark.django_db


@pytest.fixture
def academy():
    return make_academy("ad-academy", students=3, ad_opt_out_number="0801234567")


@pytest.fixture
def api(academy):
    return client_for(academy.user)


@pytest.fixture
def at(clock):
    """Freeze the clock at the next hour:minute in Korea, counted from today."""
    def set_clock(hour: int, minute: int = 0):
        return clock.freeze(clock.next_kst(hour, minute))
    return set_clock


def _next_8am(night):
    """08:00 in Korea after `night` (an evening or early morning), worked out by hand."""
    morning = night.replace(hour=8, minute=0)
    return morning if night.hour < 8 else morning + timedelta(days=1)


def _send(api, academy, *, purpose="ad", body=AD, **fields):
    return api.post("/api/v1/messages/send", {"student_ids": academy.student_ids, "purpose": purpose, "body": body,
                                              **fields}, format="json")


def _consent(academy, *students, night=False):
    for student in students:
        consent_record(student=student, recipient=RecipientKind.PARENT, marketing=True, night=night)


def test_every_send_request_declares_its_purpose(api, academy, broker):
    response = api.post("/api/v1/messages/send", {"student_ids": academy.student_ids, "body": "안내"}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")
    assert "purpose" in response.json()["errors"]
    assert "required" in response.json()["messages"]["en"]  # the English half reads in English


@pytest.mark.parametrize(("body", "code"), [
    (AD.replace("(광고) ", ""), "ad_label_missing"),
    (AD.replace(NAME, "우리"), "ad_sender_name_missing"),
    (AD.rsplit("\n", 1)[0], "ad_opt_out_missing"),
])
def test_an_ad_breaking_a_labelling_rule_is_refused_and_nothing_is_written(api, academy, broker, body, code):
    response = _send(api, academy, body=body)

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert response.json()["messages"]["ko"] and response.json()["messages"]["en"]
    assert SendRequest.objects.count() == 0


def test_an_ad_is_refused_by_alimtalk(api, academy, broker):
    response = _send(api, academy, message_mode="alimtalk", template_id="TPL_NOTICE")

    assert (response.status_code, response.json()["code"]) == (400, "ad_via_alimtalk")


@pytest.mark.clock
def test_an_ad_goes_only_to_recipients_with_recorded_consent(api, academy, broker, at):
    at(14)
    consented, _, withdrawn = academy.students
    _consent(academy, consented, withdrawn)
    consent_record(student=withdrawn, recipient=RecipientKind.PARENT, marketing=False, night=False)

    response = _send(api, academy)

    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == 1
    assert sorted(s["reason"] for s in response.json()["skipped"]) == ["no_marketing_consent"] * 2
    assert response.json()["deferred"] == 0


@pytest.mark.clock
def test_at_night_an_ad_waits_until_8am_for_recipients_without_night_consent(api, academy, broker, at):
    now = at(22, 30)
    by_day_only, at_night_too, _ = academy.students
    _consent(academy, by_day_only)
    _consent(academy, at_night_too, night=True)

    response = _send(api, academy)

    assert response.status_code == 202, response.json()
    body = response.json()
    morning = _next_8am(now)
    assert (body["accepted"], body["deferred"]) == (2, 1)
    assert datetime.fromisoformat(body["deferred_until"]) == morning
    waiting = Message.objects.get(student=by_day_only)
    assert (waiting.status, waiting.not_before) == (MessageStatus.PENDING, morning)
    # Dispatch (at 22:30) chunks only the message that may go now; the other is not dropped.
    (chunk_id,) = delivery.split_into_chunks(body["id"])
    assert list(Message.objects.filter(chunk_id=chunk_id).values_list("student_id", flat=True)) == [at_night_too.id]
    assert waiting.created == now  # dated by the same clock
    # The message that may go now starts now: the one waiting for the morning is not a delay.
    assert (datetime.fromisoformat(body["estimated_start"]), body["delayed"]) == (now.replace(microsecond=0), False)


@pytest.mark.clock
def test_an_ad_that_waits_whole_for_the_morning_is_estimated_to_start_then(api, academy, broker, at):
    now = at(22, 30)
    for student in academy.students:
        _consent(academy, student)

    body = _send(api, academy).json()

    assert body["deferred"] == body["accepted"] == 3
    assert datetime.fromisoformat(body["estimated_start"]) == _next_8am(now)
    assert (body["delayed"], body["delay_messages"]) == (False, None)


@pytest.mark.clock
def test_at_8am_the_deferred_ads_are_released(api, academy, broker, at, clock):
    morning = _next_8am(at(23))
    _consent(academy, *academy.students)
    send_request_id = _send(api, academy).json()["id"]
    assert delivery.split_into_chunks(send_request_id) == []  # nothing is due yet
    assert release_deferred() == 0
    clock.freeze(morning - timedelta(minutes=1))
    assert release_deferred() == 0

    # It is 08:00: the beat task publishes the request again and dispatch takes them.
    clock.freeze(morning)
    assert release_deferred() == 1
    assert len(delivery.split_into_chunks(send_request_id)) == 1
    assert not Message.objects.filter(send_request_id=send_request_id, chunk__isnull=True).exists()


@pytest.mark.clock
def test_informational_messages_are_never_held_back_at_night(api, academy, broker, at):
    at(23)

    response = _send(api, academy, purpose="info", body="내일 휴원입니다.")

    assert (response.json()["accepted"], response.json()["deferred"]) == (3, 0)


def test_the_preview_warns_when_an_info_message_reads_like_an_ad(api, academy):
    response = api.post("/api/v1/messages/preview", {"student_ids": academy.student_ids, "purpose": "info",
                                                     "body": "휴원 안내. 신규 등록 시 10% 할인!"}, format="json")

    assert response.status_code == 200
    assert [w["code"] for w in response.json()["warnings"]] == ["likely_ad"]


def test_an_opt_out_entered_by_staff_is_skipped_from_then_on(api, academy, broker):
    phone = academy.students[0].parent_phone

    entered = api.post("/api/v1/opt-outs", {"phone": f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"}, format="json")
    response = _send(api, academy, purpose="info", body="안내")

    assert entered.status_code == 201
    assert response.json()["skipped"] == [
        {"student_id": academy.students[0].id, "recipient": "parent", "reason": "opted_out"}]


@pytest.mark.clock
def test_consent_is_recorded_with_its_time_and_old_ones_are_listed_for_reconfirmation(api, academy, clock):
    student, recent = academy.students[:2]

    recorded = api.post("/api/v1/consents", {"student_id": student.id, "recipient": "parent", "marketing": True,
                                             "night": True}, format="json")
    api.post("/api/v1/consents", {"student_id": recent.id, "recipient": "parent", "marketing": True}, format="json")
    MarketingConsent.objects.filter(student=student).update(
        marketing_consented_at=clock.now() - CONSENT_VALID_FOR - timedelta(days=1))
    MarketingConsent.objects.filter(student=recent).update(
        marketing_consented_at=clock.now() - CONSENT_VALID_FOR + timedelta(days=1))
    due = api.get("/api/v1/consents/due-for-reconfirmation")

    assert recorded.status_code == 200 and recorded.json()["night_consented_at"]
    assert [(c["student_id"], c["recipient"]) for c in due.json()] == [(student.id, "parent")]


def test_another_academys_student_cannot_be_given_consent(api, academy):
    other = make_academy("other-academy", students=1)

    response = api.post("/api/v1/consents", {"student_id": other.students[0].id, "recipient": "parent",
                                             "marketing": True}, format="json")

    assert response.status_code == 404
