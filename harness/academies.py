"""Academies ready to send, made in one place for the tests, the benchmarks and `seed_demo`.

An academy here is a tenant with a verified sender and a Kakao channel, its prices,
credit, an approved AlimTalk template, a staff member with an API token, and students
with parents' phones. Each piece has its own function, so a test builds exactly the odd
academy it needs (no template, no credit, a rejected sender …).

It lives in harness/, beside the local SQS and the Solapi sandbox, because it is
tooling, not the product: no production path creates academies this way. It cannot
live in tests/ (benchmarks and `seed_demo` use it), nor in tenants/ (an academy ready
to send needs billing's prices and credit, and tenants imports nothing above it).

Import it after Django is set up: it imports models.
"""

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from billing.ledger import top_up
from billing.models import MessageType, Price, TenantPrice
from tenants.models import (
    AlimTalkTemplate,
    Membership,
    SchoolClass,
    SenderStatus,
    Student,
    TemplateStatus,
    Tenant,
)

# The sender number registered in the Solapi sandbox by `make run` (Procfile.dev), the
# test suite and the benchmarks.
SENDER = "0212345678"
KAKAO_PF_ID = "KA01PF0000TEST"
# KRW, roughly Solapi's list prices.
PRICES: dict[str, Decimal] = {MessageType.SMS: Decimal("13"), MessageType.LMS: Decimal("29"),
                              MessageType.MMS: Decimal("60"), MessageType.ATA: Decimal("9")}
TEMPLATE_ID = "TPL_NOTICE"
TEMPLATE_CONTENT = "#{이름} 학생이 학원에 도착했습니다."
NAMES = ["김민준", "이서연", "박도윤", "최서윤", "정하준", "강지우", "조시우", "윤하은", "장주원", "임지호",
         "한예준", "오수아", "서도현", "신지안", "권건우", "황채원", "안우진", "송다은", "류현우", "전서아"]

# Phone numbers and slugs made here are distinct within a process, so two students share
# a number, or two academies a slug, only on purpose.
_numbers = itertools.count(1)


def new_phone() -> str:
    return f"010{next(_numbers):08d}"


@dataclass
class Academy:
    tenant: Tenant
    user: object
    token: str
    students: list[Student] = field(default_factory=list)

    @property
    def student_ids(self) -> list[int]:
        return [s.id for s in self.students]

    def parent_phones(self) -> list[str]:
        return [s.parent_phone for s in self.students]


def set_platform_prices(prices: Mapping[str, Decimal] = PRICES) -> dict[str, Decimal]:
    """The platform's price list (billing.Price): what every academy pays unless it has its own."""
    for message_type, amount in prices.items():
        Price.objects.update_or_create(message_type=message_type, defaults={"amount": Decimal(amount)})
    return dict(prices)


def make_tenant(slug: str | None = None, *, prices: Mapping[str, Decimal] | None = None,
                credit: Decimal | str = "0", **fields) -> Tenant:
    """A tenant with a verified sender and a Kakao channel (`fields` override any column).
    `prices` become its own prices (billing.TenantPrice); without them it pays the platform's."""
    slug = slug or f"academy-{next(_numbers)}"
    values = {"name": f"{slug} 학원", "messaging_sender": SENDER, "messaging_sender_status": SenderStatus.VERIFIED,
              "kakao_pf_id": KAKAO_PF_ID, **fields}
    tenant = Tenant.objects.create(slug=slug, **values)
    TenantPrice.objects.bulk_create([TenantPrice(tenant=tenant, message_type=message_type, amount=Decimal(amount))
                                     for message_type, amount in (prices or {}).items()])
    if Decimal(credit) > 0:
        top_up(tenant=tenant, amount=Decimal(credit), memo="initial credit")
    return tenant


def make_template(tenant: Tenant, *, template_id: str = TEMPLATE_ID, content: str = TEMPLATE_CONTENT,
                  status: str = TemplateStatus.APPROVED) -> AlimTalkTemplate:
    return AlimTalkTemplate.objects.create(tenant=tenant, solapi_template_id=template_id, name="안내",
                                           content=content, status=status)


def make_staff(tenant: Tenant, username: str | None = None, *, password: str | None = None):
    """A staff member of the academy. No password unless asked: hashing one costs ~0.3 s."""
    user = get_user_model().objects.create_user(username=username or f"{tenant.slug}-staff", password=password)
    Membership.objects.create(user=user, tenant=tenant)
    return user


def make_students(tenant: Tenant, count: int, *, phone_base: int | None = None, own_phones: bool = False,
                  **fields) -> list[Student]:
    """`count` students in one INSERT, named from NAMES. Each parent's phone is new
    (new_phone), or 010 + (phone_base + n) for the n-th student when a benchmark keeps its
    own range. With own_phones every other student has a phone too. `fields` override any column."""

    def phone(number: int, offset: int = 0) -> str:
        return new_phone() if phone_base is None else f"010{phone_base + offset + number:08d}"

    students = [
        Student(tenant=tenant, name=NAMES[(number - 1) % len(NAMES)], parent_phone=phone(number),
                phone=phone(number, 10_000_000) if own_phones and number % 2 else "")
        for number in range(1, count + 1)
    ]
    for student in students:
        for name, value in fields.items():
            setattr(student, name, value)
    return Student.objects.bulk_create(students, batch_size=2000)


def make_class(tenant: Tenant, name: str, students: list[Student]) -> SchoolClass:
    """A class (반) of the academy with these students."""
    school_class = SchoolClass.objects.create(tenant=tenant, name=name)
    school_class.students.add(*students)
    return school_class


def make_academy(slug: str | None = None, *, students: int = 3, credit: Decimal | str = "10000",
                 prices: Mapping[str, Decimal] | None = PRICES, username: str | None = None,
                 password: str | None = None, template_id: str = TEMPLATE_ID, phone_base: int | None = None,
                 own_phones: bool = False, **tenant_fields) -> Academy:
    """An academy that can send at once: tenant, prices, credit, an approved template,
    one staff member with an API token, and `students` students."""
    tenant = make_tenant(slug, prices=prices, credit=credit, **tenant_fields)
    make_template(tenant, template_id=template_id)
    user = make_staff(tenant, username, password=password)
    token = Token.objects.create(user=user).key
    return Academy(tenant=tenant, user=user, token=token,
                   students=make_students(tenant, students, phone_base=phone_base, own_phones=own_phones))
