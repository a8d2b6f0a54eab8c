"""Tenant isolation and authentication: staff of academy A never see or touch academy B,
and B's things look exactly like things that do not exist (404, never 403)."""

import pytest
from django.contrib.auth import get_user_model
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient

from harness.academies import make_staff
from messaging.models import Message, SendRequest
from tests.api.conftest import PASSWORD, assert_refusal, client_for, send_body

pytestmark = pytest.mark.django_db

SEND_URL = "/api/v1/messages/send"
PREVIEW_URL = "/api/v1/messages/preview"
CREDITS_URL = "/api/v1/credits"


def detail_url(send_request_id: int) -> str:
    return f"/api/v1/messages/send-requests/{send_request_id}"


@pytest.fixture
def b_request(other_academy, broker) -> dict:
    """A send request of academy B, made by B's own staff."""
    response = client_for(other_academy.user).post(SEND_URL, send_body(other_academy.student_ids), format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def test_staff_of_a_cannot_read_bs_send_request(api, academy, b_request):
    own_tenant = client_for(academy.user, tenant=academy.tenant.slug)

    for client in (api, own_tenant):
        response = client.get(detail_url(b_request["id"]))
        assert_refusal(response, 404, "not_found")
        # The same answer as for an id nobody has.
        assert response.json() == client.get(detail_url(b_request["id"] + 1000)).json()


def test_staff_of_a_cannot_send_to_or_preview_bs_students(api, academy, other_academy, broker):
    b_ids = other_academy.student_ids

    for url in (SEND_URL, PREVIEW_URL):
        response = api.post(url, send_body([academy.student_ids[0], *b_ids]), format="json")
        body = assert_refusal(response, 404, "student_not_found")
        assert body["student_ids"] == b_ids
        # Shaped exactly like the answer for an id nobody has.
        unknown = assert_refusal(api.post(url, send_body([academy.student_ids[0], 10**9]), format="json"), 404,
                                 "student_not_found")
        assert set(unknown) == set(body)
        assert unknown["student_ids"] == [10**9]
    assert SendRequest.objects.count() == Message.objects.count() == 0
    assert broker.request_counts()["SendMessage"] == 0


def test_naming_bs_slug_in_x_tenant_is_404_like_an_unknown_slug(academy, other_academy, broker):
    as_b = client_for(academy.user, tenant=other_academy.tenant.slug)
    as_nobody = client_for(academy.user, tenant="no-such-academy")

    for method, url, data in [("post", SEND_URL, send_body(other_academy.student_ids)),
                              ("post", PREVIEW_URL, send_body(other_academy.student_ids)),
                              ("get", CREDITS_URL, None)]:
        response = getattr(as_b, method)(url, data, format="json")
        assert_refusal(response, 404, "tenant_not_found")
        assert response.json() == getattr(as_nobody, method)(url, data, format="json").json()
    assert SendRequest.objects.count() == 0


def test_staff_of_a_naming_bs_slug_cannot_read_bs_send_request(academy, other_academy, b_request):
    as_b = client_for(academy.user, tenant=other_academy.tenant.slug)

    assert_refusal(as_b.get(detail_url(b_request["id"])), 404, "tenant_not_found")


def test_each_academy_sees_its_own_credit_only(api, academy, other_academy, b_request):
    a_credits = api.get(CREDITS_URL).json()
    b_credits = client_for(other_academy.user).get(CREDITS_URL).json()

    assert a_credits["ledger"] and b_credits["ledger"]
    assert not {e["id"] for e in a_credits["ledger"]} & {e["id"] for e in b_credits["ledger"]}


def test_the_same_idempotency_key_in_two_academies_makes_two_requests(api, academy, other_academy, broker):
    # A key is per academy: B replaying A's key must not receive A's answer.
    headers = {"Idempotency-Key": "shared-key"}
    a = api.post(SEND_URL, send_body(academy.student_ids), format="json", headers=headers)
    b = client_for(other_academy.user).post(SEND_URL, send_body(other_academy.student_ids), format="json",
                                            headers=headers)

    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["id"] != b.json()["id"]
    assert SendRequest.objects.get(id=b.json()["id"]).tenant == other_academy.tenant


@pytest.mark.parametrize(("method", "url"), [("post", SEND_URL), ("post", PREVIEW_URL), ("get", CREDITS_URL),
                                             ("get", detail_url(1))])
def test_unauthenticated_requests_are_401(academy, method, url):
    response = getattr(APIClient(), method)(url, send_body(academy.student_ids), format="json")

    assert_refusal(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"] == "Token"


def test_an_unknown_token_is_401(academy):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")

    assert_refusal(client.get(CREDITS_URL), 401, "not_authenticated")


def test_a_deactivated_users_token_is_401(academy):
    # The token check reads the academies in the same statement (messaging/api/authentication.py):
    # a user with academies but switched off is still refused.
    academy.user.is_active = False
    academy.user.save(update_fields=["is_active"])

    assert_refusal(client_for(academy.user).get(CREDITS_URL), 401, "not_authenticated")


def test_a_valid_token_of_no_academy_is_404(academy):
    loner = get_user_model().objects.create_user(username="no-academy")

    assert_refusal(client_for(loner).get(CREDITS_URL), 404, "tenant_not_found")
    assert_refusal(client_for(loner, tenant=academy.tenant.slug).get(CREDITS_URL), 404, "tenant_not_found")


def test_session_authentication_works_and_requires_the_csrf_token(academy, broker):
    user = make_staff(academy.tenant, username="browser-staff", password=PASSWORD)
    browser = APIClient(enforce_csrf_checks=True)
    assert browser.login(username=user.username, password=PASSWORD)

    assert browser.get(CREDITS_URL).status_code == 200
    # A cross-site form post carries the session cookie but not the token.
    assert_refusal(browser.post(SEND_URL, send_body(academy.student_ids), format="json"), 403, "permission_denied")
    assert SendRequest.objects.count() == 0
    csrf = _get_new_csrf_string()
    browser.cookies["csrftoken"] = csrf
    response = browser.post(SEND_URL, send_body(academy.student_ids), format="json", headers={"X-CSRFToken": csrf})
    assert response.status_code == 202, response.json()
    assert SendRequest.objects.get().created_by == user
