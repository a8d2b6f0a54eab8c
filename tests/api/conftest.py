"""Academies for the send API's tests (harness/academies.py), and clients that call it.

Prices are per-academy overrides (TenantPrice) and no platform Price rows exist, so
an academy made without a price for a type really cannot send that type.
"""

from collections.abc import Callable

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from harness.academies import Academy, make_academy

PASSWORD = "correct-horse-battery"


def client_for(user, *, tenant: str | None = None) -> APIClient:
    """An APIClient authenticated by the user's DRF token, optionally naming an academy."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", **({"HTTP_X_TENANT": tenant} if tenant else {}))
    return client


@pytest.fixture
def academy(db) -> Academy:
    return make_academy("academy-a")


@pytest.fixture
def other_academy(db) -> Academy:
    return make_academy("academy-b")


@pytest.fixture
def api(academy: Academy) -> APIClient:
    """Staff of academy A, by token; the only academy they belong to, so no X-Tenant."""
    return client_for(academy.user)


def send_body(student_ids: list[int], **fields) -> dict:
    return {"student_ids": student_ids, "purpose": "info", "body": "#{이름} 학생 안내입니다.", **fields}


@pytest.fixture
def post_send(api: APIClient) -> Callable:
    """POST /messages/send as academy A's staff."""

    def post(student_ids: list[int], *, client: APIClient | None = None, headers: dict | None = None, **fields):
        return (client or api).post("/api/v1/messages/send", send_body(student_ids, **fields), format="json",
                                    headers=headers)

    return post


def assert_refusal(response, status: int, code: str) -> dict:
    """The API's one error shape: a code, a bilingual detail, and both messages apart."""
    body = response.json()
    assert (response.status_code, body.get("code")) == (status, code), body
    ko, en = body["messages"]["ko"], body["messages"]["en"]
    assert ko and en and ko != en
    assert any("가" <= c <= "힣" for c in ko), ko
    assert body["detail"] == f"{ko} / {en}"
    return body
