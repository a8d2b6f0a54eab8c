"""The operations console tells the truth: every time in KST and labelled, names in Korean,
the bad case shown as a warning, each ledger row with its own balance, the internals apart,
and a button on an object's page for what an operator does to that one object."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing.ledger import top_up
from billing.models import CreditAccount
from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.models import (
    BreakerState,
    Chunk,
    CircuitBreaker,
    DeliveryAttempt,
    Message,
    MessageStatus,
    SendRequest,
    SolapiOperation,
)
from messaging.pipeline import breaker
from messaging.solapi.errors import SolapiAuthError
from project.admin_site import INTERNALS, OPERATIONS
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db

HANGUL = re.compile(r"[가-힣]")
# A moment whose UTC and KST readings differ in day and hour.
MOMENT = datetime(2026, 3, 2, 16, 30, 5, tzinfo=UTC)  # 2026-03-03 01:30:05 KST


@pytest.fixture
def academy(clock):
    clock.freeze(MOMENT)
    academy = make_academy()
    send(academy, publish=False)
    return academy


def _page(client, name: str, *args) -> str:
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.mark.parametrize("app", ["tenants", "billing", "messaging"])
def test_every_model_and_field_has_a_korean_name(app):
    unnamed = []
    for model in apps.get_app_config(app).get_models():
        opts = model._meta
        for name in (opts.verbose_name, opts.verbose_name_plural):
            if not HANGUL.search(str(name)):
                unnamed.append(f"{opts.label}: {name}")
        unnamed += [f"{opts.label}.{field.name}: {field.verbose_name}"
                    for field in opts.get_fields() if field.concrete and not field.auto_created
                    if not HANGUL.search(str(field.verbose_name))]
    assert unnamed == []


def test_list_titles_read_in_korean_without_a_stray_digit(admin_client, academy):
    page = _page(admin_client, "admin:messaging_sendrequest_changelist")

    assert "<h1>볼 발송 요청 선택</h1>" in page
    assert "보기위한" not in page


def test_the_message_page_shows_every_time_in_kst_labelled_the_timeline_included(admin_client, academy):
    message = Message.objects.first()

    page = _page(admin_client, "admin:messaging_message_change", message.pk)

    # The `created` field and the timeline's first row: the same moment, the same label.
    assert message.created == MOMENT
    assert "2026-03-03 01:30:05 KST" in page
    assert "<tr><td>2026-03-03 01:30:05 KST</td><td>created</td>" in page
    # No time printed in UTC, labelled or not.
    assert "2026-03-02 16:30" not in page
    times = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?(?: [A-Z]+)?", page)
    assert times and all(t.endswith(" KST") for t in times), times


def test_list_pages_label_their_times_kst(admin_client, academy):
    page = _page(admin_client, "admin:messaging_sendrequest_changelist")

    assert "2026-03-03 01:30:05 KST" in page
    assert "2026-03-02 16:30" not in page


def test_an_ambiguous_call_is_a_warning_not_a_green_check(admin_client, academy):
    chunk = Chunk.objects.create(send_request=SendRequest.objects.get(), index=0)
    DeliveryAttempt.objects.create(chunk=chunk, operation=SolapiOperation.SEND_GROUP, error_code="ReadTimeout",
                                   ambiguous=True)
    DeliveryAttempt.objects.create(chunk=chunk, operation=SolapiOperation.CREATE_GROUP, http_status=200)

    page = _page(admin_client, "admin:messaging_deliveryattempt_changelist")

    assert page.count("icon-alert.svg") == 1
    assert "불확실: Solapi에 도달했을 수 있음" in page
    assert "icon-yes.svg" not in page and "icon-no.svg" not in page


def test_each_ledger_row_shows_its_own_balance_after_not_the_accounts_current_balance(admin_client, academy):
    tenant = academy.tenant
    first = top_up(tenant=tenant, amount=Decimal("111.00"), memo="first")
    top_up(tenant=tenant, amount=Decimal("222.00"), memo="second")
    current = CreditAccount.objects.get(tenant=tenant).balance

    page = _page(admin_client, "admin:billing_ledgerentry_changelist")

    rows = {memo: row for row in re.findall(r"<tr>.*?</tr>", page, re.S)
            for memo in ("first", "second") if f">{memo}<" in row}
    assert f">{first.balance_after}<" in rows["first"]
    assert f">{current}<" in rows["second"] and str(current) not in rows["first"]
    assert ">이 항목 후 잔액<" in page or "이 항목 후 잔액" in page


def test_internals_are_listed_under_the_operations_section(admin_client, academy):
    index = admin_client.get(reverse("admin:index"))
    app_list = index.context["app_list"]
    sections = {app["app_label"]: {m["model"]._meta.label_lower for m in app["models"]} for app in app_list}

    assert app_list[-1]["app_label"] == OPERATIONS
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert sections[OPERATIONS] == INTERNALS & registered
    assert {"messaging.chunk", "messaging.deliveryattempt", "messaging.circuitbreaker",
            "django_celery_results.taskresult", "messaging.workerheartbeat",
            "messaging.requestrate"} <= sections[OPERATIONS]
    assert not sections["messaging"] & INTERNALS and "messaging.message" in sections["messaging"]
    section = _page(admin_client, "admin:operations_index")
    assert "운영 (operations)" in section and "/admin/messaging/chunk/" in section
    # An app's own page still lists all its models (its breadcrumbs lead there).
    assert "/admin/messaging/chunk/" in _page(admin_client, "admin:app_list", "messaging")


def _staff(client, username: str, *codenames: str):
    user = get_user_model().objects.create_user(username=username, password="pw-for-console-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def test_the_breaker_page_has_a_close_button_for_whoever_may_close_it(client, academy):
    breaker.trip(SolapiAuthError("bad key", http_status=403, error_code="InvalidApiKey"))
    row = CircuitBreaker.objects.get()
    change = reverse("admin:messaging_circuitbreaker_change", args=[row.pk])

    _staff(client, "viewer", "view_circuitbreaker")
    assert 'value="close_breaker"' not in client.get(change).content.decode()

    _staff(client, "operator", "view_circuitbreaker", "close_breaker")
    page = client.get(change).content.decode()
    assert 'value="close_breaker"' in page
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page, re.S)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)))
    response = client.post(form.group(1), fields)

    assert response.status_code == 302 and response.url == change
    row.refresh_from_db()
    assert row.state == BreakerState.CLOSED
    assert "Breaker closed" in client.get(change).content.decode()


def test_a_view_only_member_posting_the_button_anyway_gets_403(client, academy):
    breaker.trip(SolapiAuthError("bad key", http_status=403, error_code="InvalidApiKey"))
    row = CircuitBreaker.objects.get()
    _staff(client, "viewer", "view_circuitbreaker")

    response = client.post(reverse("admin:messaging_circuitbreaker_changelist"),
                           {"action": "close_breaker", "_selected_action": row.pk, "_object_page": "1"})

    assert response.status_code == 403
    assert CircuitBreaker.objects.get().state == BreakerState.OPEN


def test_retry_from_a_send_requests_page_retries_its_transient_failures_only(client, academy):
    first, second, _ = Message.objects.order_by("id")
    Message.objects.filter(id=first.id).update(status=MessageStatus.FAILED,
                                               failure_class=FailureClass.TRANSIENT_EXHAUSTED)
    Message.objects.filter(id=second.id).update(status=MessageStatus.FAILED,
                                                failure_class=FailureClass.RECIPIENT_INVALID)
    original = SendRequest.objects.get()
    _staff(client, "operator", "view_sendrequest", "retry_messages")

    response = client.post(reverse("admin:messaging_sendrequest_changelist"),
                           {"action": "retry_failed_of_request", "_selected_action": original.pk,
                            "_object_page": "1"})

    assert response.status_code == 302
    assert response.url == reverse("admin:messaging_sendrequest_change", args=[original.pk])
    retry = SendRequest.objects.exclude(id=original.id).get()
    assert list(retry.messages.values_list("retry_of", flat=True)) == [first.id]


def test_every_object_button_is_a_declared_action_with_permissions():
    for model_admin in admin.site._registry.values():
        declared = {name: func for func, name, _ in model_admin._get_base_actions()}
        for name in getattr(model_admin, "object_actions", []):
            assert name in declared, f"{model_admin}: {name}"
            assert getattr(declared[name], "allowed_permissions", None), f"{model_admin}: {name}"
