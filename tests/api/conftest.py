"""Academies, staff and students for the send API's tests, and clients that call it.

Prices are per-academy overrides (TenantPrice) and no platform Price rows exist, so
an academy made without a price for a type really cannot send that type.
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.ledger import top_up
from billing.models import MessageType, TenantPrice
from tenants.models import AlimTalkTemplate, Membership, SenderStatus, Student, TemplateStatus, Tenant
from tests.conftest import DEMO_SENDER

PRICES = {MessageType.SMS: Decimal("13"), MessageType.LMS: Decimal("29"), MessageType.ATA: Decimal("9")}
TEMPLATE_ID = "TPL_NOTICE"
TEMPLATE_CONTENT = "#{이름} 학생이 학원에 도착했습니다."
PASSWORD = "correct-horse-battery"
NAMES = ["김민준", "이서연", "박도윤", "최서윤", "정하준", "강지우", "조시우", "윤하은", "장주원", "임지호"]

# Every phone number a test makes is distinct, so siblings share one only on purpose.
_phone_numbers = itertools.count(1)


def new_phone() -> str:
    return f"010{next(_phone_numbers):08d}"


@dataclass
class Academy:
    tenant: Tenant
    user: object
    token: str
    students: list[Student] = field(default_factory=list)

    @property
    def student_ids(self) -> list[int]:
        return [s.id for s in self.students]


def make_tenant(slug: str, *, prices: dict[str, Decimal] | None = None, credit: Decimal | str = "10000",
                **fields) -> Tenant:
    values = {"name": f"{slug} 학원", "messaging_sender": DEMO_SENDER,
              "messaging_sender_status": SenderStatus.VERIFIED, "kakao_pf_id": "KA01PF0000TEST", **fields}
    tenant = Tenant.objects.create(slug=slug, **values)
    for message_type, amount in (PRICES if prices is None else prices).items():
        TenantPrice.objects.create(tenant=tenant, message_type=message_type, amount=amount)
    if Decimal(credit) > 0:
        top_up(tenant=tenant, amount=Decimal(credit), memo="test credit")
    return tenant


def make_template(tenant: Tenant, *, template_id: str = TEMPLATE_ID, content: str = TEMPLATE_CONTENT,
                  status: str = TemplateStatus.APPROVED) -> AlimTalkTemplate:
    return AlimTalkTemplate.objects.create(tenant=tenant, solapi_template_id=template_id, name="안내",
                                           content=content, status=status)


def make_staff(tenant: Tenant, username: str | None = None, password: str | None = None):
    """A staff member of the academy. No password unless asked: hashing one costs ~0.3 s."""
    user = get_user_model().objects.create_user(username=username or f"{tenant.slug}-staff", password=password)
    Membership.objects.create(user=user, tenant=tenant)
    return user


def make_students(tenant: Tenant, count: int, **fields) -> list[Student]:
    """`count` students with their own parent phone each, unless `fields` says otherwise."""
    return [
        Student.objects.create(tenant=tenant, **{"name": NAMES[i % len(NAMES)], "parent_phone": new_phone(), **fields})
        for i in range(count)
    ]


def make_academy(slug: str, *, students: int = 3, **tenant_fields) -> Academy:
    tenant = make_tenant(slug, **tenant_fields)
    make_template(tenant)
    user = make_staff(tenant)
    token = Token.objects.create(user=user).key
    return Academy(tenant=tenant, user=user, token=token, students=make_students(tenant, students))


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
