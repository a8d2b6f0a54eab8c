"""Every reason the send API refuses: the status, the code, a Korean and an English
message, and nothing written or published."""

import json
from decimal import Decimal

import pytest

from billing.models import MessageType
from harness.academies import PRICES, TEMPLATE_ID, make_staff, make_students, make_template, make_tenant
from messaging.models import Message, SendRequest
from tenants.models import Membership, SenderStatus, TemplateStatus, Tenant
from tests.api.conftest import assert_refusal, client_for, send_body

pytestmark = pytest.mark.django_db

SEND_URL = "/api/v1/messages/send"
PREVIEW_URL = "/api/v1/messages/preview"


@pytest.fixture(autouse=True)
def nothing_is_persisted_or_published(db, local_sqs):
    """After every refusal: no request, no message, no dispatch task."""
    local_sqs.reset_counts()
    yield
    assert SendRequest.objects.count() == 0
    assert Message.objects.count() == 0
    assert local_sqs.request_counts()["SendMessage"] == 0


def refused(api, student_ids, url=SEND_URL, **fields):
    return api.post(url, send_body(student_ids, **fields), format="json")


def academy_with(**tenant_fields):
    """A fresh academy in the given state, its staff's client and its students' ids."""
    tenant = make_tenant("refusing", **{"prices": PRICES, "credit": "10000", **tenant_fields})
    make_template(tenant)
    students = make_students(tenant, 2)
    return tenant, client_for(make_staff(tenant)), [s.id for s in students]


# --- the academy's state: refused by send and preview alike --------------------------

ACADEMY_STATES = [
    pytest.param({"messaging_sender": ""}, 422, "sender_missing", id="sender_missing"),
    pytest.param({"messaging_sender_status": SenderStatus.REJECTED}, 422, "sender_unregistered",
                 id="sender_unregistered"),
    pytest.param({"messaging_is_active": False}, 422, "messaging_inactive", id="messaging_inactive"),
]


@pytest.mark.parametrize("url", [SEND_URL, PREVIEW_URL])
@pytest.mark.parametrize(("tenant_fields", "status", "code"), ACADEMY_STATES)
def test_an_academy_that_cannot_send_is_refused(url, tenant_fields, status, code):
    _, api, student_ids = academy_with(**tenant_fields)

    body = assert_refusal(refused(api, student_ids, url=url), status, code)

    if code == "sender_unregistered":
        assert "0212345678" in body["messages"]["en"]


def test_messaging_switched_off_wins_over_a_missing_sender():
    # An inactive academy must not be told to register a sender it still could not use.
    _, api, student_ids = academy_with(messaging_is_active=False, messaging_sender="")

    assert_refusal(refused(api, student_ids), 422, "messaging_inactive")


# --- the request ---------------------------------------------------------------------


def test_no_students_is_refused(api):
    assert_refusal(refused(api, []), 400, "no_students")


@pytest.mark.parametrize("body", ["", "   \n "])
def test_an_empty_body_is_refused(academy, api, body):
    assert_refusal(refused(api, academy.student_ids, body=body), 400, "body_empty")


def test_a_body_over_2000_euc_kr_bytes_is_refused_with_its_length(academy, api):
    body = assert_refusal(refused(api, academy.student_ids[:1], body="가" * 1001), 400, "body_too_long")

    assert (body["bytes"], body["limit"]) == (2002, 2000)
    assert "2002" in body["messages"]["ko"] and "2002" in body["messages"]["en"]


def test_a_subject_over_40_bytes_is_refused(academy, api):
    assert_refusal(refused(api, academy.student_ids[:1], body="안내", subject="가" * 21), 400, "subject_too_long")


# An emoji; an accented Latin letter; a Hangul syllable outside KS X 1001 that Python
# would otherwise encode as an 8-byte jamo sequence phones do not show.
@pytest.mark.parametrize("character", ["😀", "é", "똠"])
def test_characters_outside_euc_kr_are_refused_and_named(academy, api, character):
    body = assert_refusal(refused(api, academy.student_ids[:1], body=f"#{{이름}} 학생 {character} 안내"), 400,
                          "unsupported_characters")

    assert body["characters"] == [character]
    assert character in body["messages"]["ko"]


def test_an_unknown_variable_is_refused_and_named(academy, api):
    body = assert_refusal(refused(api, academy.student_ids, body="#{이름} 학생 #{반} 안내"), 400, "unknown_variable")

    assert "#{반}" in body["messages"]["ko"] and "#{반}" in body["messages"]["en"]


def test_a_student_that_does_not_exist_is_404_and_named(academy, api):
    body = assert_refusal(refused(api, [*academy.student_ids, 987654321]), 404, "student_not_found")

    assert body["student_ids"] == [987654321]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({"student_ids": "1,2"}, "student_ids", id="ids-not-a-list"),
        pytest.param({"student_ids": [0]}, "student_ids", id="id-zero"),
        pytest.param({"student_ids": ["abc"]}, "student_ids", id="id-not-a-number"),
        pytest.param({"student_ids": [1], "send_to": "teacher"}, "send_to", id="unknown-send-to"),
        pytest.param({"student_ids": [1], "message_mode": "fax"}, "message_mode", id="unknown-mode"),
        pytest.param({"student_ids": [1], "body": "x" * 4001}, "body", id="body-over-4000-characters"),
        pytest.param({"student_ids": [1], "alimtalk_replacements": ["반"]}, "alimtalk_replacements",
                     id="replacements-not-an-object"),
    ],
)
def test_a_malformed_request_is_invalid_request_naming_the_field(academy, api, payload, field):
    body = assert_refusal(api.post(SEND_URL, payload, format="json"), 400, "invalid_request")

    assert field in body["errors"], body


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"alimtalk_replacements": {"\ud800": "x"}}, "alimtalk_replacements", id="surrogate-in-a-key"),
        pytest.param({"alimtalk_replacements": {"\x00": "x"}}, "alimtalk_replacements", id="nul-in-a-key"),
        pytest.param({"alimtalk_replacements": {"반": "\x00"}}, "alimtalk_replacements", id="nul-in-a-value"),
        pytest.param({"body": "안내\x00"}, "body", id="nul-in-the-body"),
        # DRF quotes a rejected choice in its message; the surrogate must not make that a 500.
        pytest.param({"send_to": "\ud800"}, "send_to", id="surrogate-quoted-back"),
    ],
)
def test_characters_no_database_can_hold_are_invalid_request(academy, api, fields, field):
    # As any JSON client sends them: \u escapes, valid JSON, decoded by the parser.
    payload = json.dumps(send_body(academy.student_ids, **fields))

    body = assert_refusal(api.post(SEND_URL, payload, content_type="application/json"), 400, "invalid_request")

    assert field in body["errors"], body


def test_a_body_that_is_not_json_is_invalid_request(api):
    response = api.post(SEND_URL, "{not json", content_type="application/json")

    assert_refusal(response, 400, "invalid_request")


def test_an_unsupported_content_type_is_invalid_request(api):
    response = api.post(SEND_URL, "student_ids=1", content_type="text/plain")

    assert_refusal(response, 400, "invalid_request")


# --- templates -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["alimtalk", "both"])
@pytest.mark.parametrize("template_status", [TemplateStatus.PENDING, TemplateStatus.REJECTED])
def test_alimtalk_with_a_template_not_approved_is_refused(academy, api, mode, template_status):
    make_template(academy.tenant, template_id="TPL_DRAFT", status=template_status)

    assert_refusal(refused(api, academy.student_ids, message_mode=mode, template_id="TPL_DRAFT"), 422,
                   "template_not_approved")


def test_alimtalk_with_an_unknown_template_is_refused(academy, api):
    assert_refusal(refused(api, academy.student_ids, message_mode="alimtalk", template_id="TPL_NOPE"), 422,
                   "template_not_approved")


def test_another_academys_approved_template_is_not_usable(academy, other_academy, api):
    make_template(other_academy.tenant, template_id="TPL_THEIRS")

    assert_refusal(refused(api, academy.student_ids, message_mode="alimtalk", template_id="TPL_THEIRS"), 422,
                   "template_not_approved")


def test_alimtalk_without_a_template_id_is_refused(academy, api):
    assert_refusal(refused(api, academy.student_ids, message_mode="alimtalk"), 400, "template_required")


def test_alimtalk_without_a_kakao_channel_is_refused():
    _, api, student_ids = academy_with(kakao_pf_id="")

    assert_refusal(refused(api, student_ids, message_mode="alimtalk", template_id=TEMPLATE_ID), 422,
                   "kakao_channel_missing")


# --- money ---------------------------------------------------------------------------


def test_a_send_costing_more_than_the_available_credit_is_402_with_both_amounts():
    _, api, student_ids = academy_with(credit="20")  # two SMS at 13 KRW cost 26

    body = assert_refusal(refused(api, student_ids, body="안내"), 402, "insufficient_credit")

    assert (Decimal(body["estimated_cost"]), Decimal(body["available"])) == (Decimal("26"), Decimal("20"))


def test_an_academy_without_credit_is_refused():
    _, api, student_ids = academy_with(credit="0")

    assert_refusal(refused(api, student_ids), 402, "insufficient_credit")


def test_a_type_without_a_price_is_refused_not_sent_for_free():
    prices = {k: v for k, v in PRICES.items() if k != MessageType.LMS}
    _, api, student_ids = academy_with(prices=prices)

    body = assert_refusal(refused(api, student_ids, body="가" * 60), 422, "price_not_configured")

    assert "LMS" in body["messages"]["en"]


def test_a_send_whose_every_recipient_is_skipped_is_refused_with_the_reasons(academy, api):
    [no_phone] = make_students(academy.tenant, 1, parent_phone="")

    body = assert_refusal(refused(api, [no_phone.id]), 422, "no_recipients")

    assert body["skipped"] == [{"student_id": no_phone.id, "recipient": "parent", "reason": "no_phone"}]


# --- which academy -------------------------------------------------------------------


def test_staff_of_several_academies_must_name_one(academy, other_academy):
    user = make_staff(academy.tenant, username="both-staff")
    Membership.objects.create(user=user, tenant=other_academy.tenant)

    assert_refusal(refused(client_for(user), academy.student_ids), 400, "tenant_required")
    # Naming one is enough.
    preview = client_for(user, tenant=academy.tenant.slug).post(PREVIEW_URL, send_body(academy.student_ids),
                                                                format="json")
    assert preview.status_code == 200, preview.json()


def test_an_unknown_academy_slug_is_404(academy):
    api = client_for(academy.user, tenant="no-such-academy")

    assert_refusal(refused(api, academy.student_ids), 404, "tenant_not_found")


def test_a_user_without_any_academy_is_404():
    tenant = make_tenant("lonely")
    user = make_staff(tenant, username="former-staff")
    user.memberships.all().delete()

    assert_refusal(refused(client_for(user), [1]), 404, "tenant_not_found")
    assert Tenant.objects.filter(slug="lonely").exists()
