"""The Korean advertising rules, one test per rule (messaging/compose/rules.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from harness.academies import make_students, make_tenant
from messaging import selectors
from messaging.compose import rules
from messaging.compose.refusals import Refusal, RefusalCode
from tenants.models import MarketingConsent, RecipientKind

NAME = "해오름 학원"
GOOD_AD = f"(광고) {NAME} 봄학기 신규 등록 10% 할인!\n문의 02-123-4567\n무료수신거부 080-123-4567"


@pytest.fixture
def tenant(db):
    return make_tenant("haeoreum", name=NAME, ad_opt_out_number="0801234567")


def _check(tenant, text=GOOD_AD, mode="sms", purpose="ad"):
    rules.check_ad_channel(purpose=purpose, mode=mode)
    rules.check_ad_text(tenant=tenant, purpose=purpose, text=text)


def test_a_well_formed_ad_passes(tenant):
    _check(tenant)


def test_informational_messages_are_not_held_to_ad_rules(tenant):
    _check(tenant, text="내일 휴원입니다.", purpose="info")


@pytest.mark.parametrize("label", ["(광 고)", "[광고]", "(대출광고)", "광고", " (광고)"])
def test_an_ad_must_start_with_exactly_the_ad_label(tenant, label):
    with pytest.raises(Refusal) as refused:
        _check(tenant, text=GOOD_AD.replace("(광고)", label, 1))
    assert refused.value.code == RefusalCode.AD_LABEL_MISSING


def test_an_ad_must_carry_the_academys_name(tenant):
    with pytest.raises(Refusal) as refused:
        _check(tenant, text=GOOD_AD.replace(NAME, "우리 학원"))
    assert refused.value.code == RefusalCode.AD_SENDER_NAME_MISSING
    assert NAME in refused.value.ko


@pytest.mark.parametrize(
    "ending", ["", "수신거부 080-123-4567", "무료수신거부 080-999-9999", "무료수신거부 02-123-4567"]
)
def test_an_ad_must_end_with_the_academys_free_opt_out_line(tenant, ending):
    text = GOOD_AD.rsplit("\n", 1)[0] + ("\n" + ending if ending else "")
    with pytest.raises(Refusal) as refused:
        _check(tenant, text=text)
    assert refused.value.code == RefusalCode.AD_OPT_OUT_MISSING
    assert "080-123-4567" in refused.value.ko  # the refusal says what to write


def test_an_academy_without_an_080_number_cannot_send_ads(tenant):
    tenant.ad_opt_out_number = ""
    with pytest.raises(Refusal) as refused:
        _check(tenant)
    assert refused.value.code == RefusalCode.AD_OPT_OUT_NUMBER_MISSING


@pytest.mark.parametrize("mode", ["alimtalk", "both"])
def test_alimtalk_is_refused_for_ads(tenant, mode):
    with pytest.raises(Refusal) as refused:
        _check(tenant, mode=mode)
    assert refused.value.code == RefusalCode.AD_VIA_ALIMTALK


def test_likely_ad_wording_in_an_info_message_is_a_warning_not_a_refusal():
    warnings = rules.likely_ad_warnings(purpose="info", text="휴원 안내. 신규 등록 시 10% 할인 이벤트!")

    assert [w["code"] for w in warnings] == ["likely_ad"]
    assert set(warnings[0]["words"]) >= {"할인", "이벤트", "신규 등록"}
    assert warnings[0]["messages"]["ko"] and warnings[0]["messages"]["en"]
    assert rules.likely_ad_warnings(purpose="info", text="내일 휴원입니다.") == []
    assert rules.likely_ad_warnings(purpose="ad", text="할인") == []


KST = rules.KST


@pytest.mark.parametrize(
    ("hour", "minute", "night"),
    [(20, 59, False), (21, 0, True), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False), (12, 0, False)],
)
def test_the_night_window_is_21_to_08_korean_time(hour, minute, night):
    assert rules.in_night_window(datetime(2026, 11, 27, hour, minute, tzinfo=KST)) is night


def test_the_night_window_is_korean_time_whatever_the_servers_zone():
    utc_noon = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # 21:00 in Seoul
    assert rules.in_night_window(utc_noon)


@pytest.mark.parametrize(("now", "morning"), [
    (datetime(2026, 11, 27, 22, 0, tzinfo=KST), datetime(2026, 11, 28, 8, 0, tzinfo=KST)),
    (datetime(2026, 11, 28, 3, 0, tzinfo=KST), datetime(2026, 11, 28, 8, 0, tzinfo=KST)),
])
def test_deferred_ads_go_out_at_the_next_8_am(now, morning):
    assert rules.next_morning(now) == morning


def test_deferred_ads_are_released_in_waves_from_8_am():
    morning = datetime(2026, 11, 28, 8, 0, tzinfo=KST)

    assert rules.release_time(morning, 0) == morning
    assert rules.release_time(morning, rules.RELEASE_WAVE_SIZE - 1) == morning
    assert rules.release_time(morning, rules.RELEASE_WAVE_SIZE) == morning + rules.RELEASE_WAVE_INTERVAL


def test_consents_two_years_old_are_listed_for_reconfirmation(tenant):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=KST)
    [student] = make_students(tenant, 1)
    old = MarketingConsent.objects.create(student=student, recipient=RecipientKind.PARENT,
                                          marketing_consented_at=now - timedelta(days=731))
    MarketingConsent.objects.create(student=student, recipient=RecipientKind.STUDENT,
                                    marketing_consented_at=now - timedelta(days=700))

    assert list(selectors.consents_due_for_reconfirmation(tenant, now=now)) == [old]
