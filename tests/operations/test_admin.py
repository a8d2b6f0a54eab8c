"""The admin is the operations console: every page renders, and its actions act safely."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from billing.audit import audit
from billing.ledger import HoldRequest, account_for, hold_credit, release_holds
from billing.models import CreditAccount, LedgerEntry
from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.models import (
    BooksStatus,
    BreakerState,
    Chunk,
    CircuitBreaker,
    GroupReconciliation,
    Message,
    MessageStatus,
    SendRequest,
)
from messaging.pipeline import breaker
from messaging.solapi.errors import SolapiAuthError
from tenants.models import SenderStatus, Tenant
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db


@pytest.fixture
def academy():
    academy = make_academy()
    send(academy, publish=False)  # rows in every messaging table worth showing
    return academy


def _models():
    return [model for model in admin.site._registry if model._meta.app_label in
            ("tenants", "billing", "messaging", "django_celery_results")]


@pytest.mark.parametrize("page", ["changelist", "add"])
def test_every_admin_page_renders(admin_client, admin_user, academy, page):
    request = RequestFactory().get("/")
    request.user = admin_user
    for model in _models():
        opts = model._meta
        if page == "add" and not admin.site._registry[model].has_add_permission(request):
            continue
        response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_{page}"))
        assert response.status_code == 200, f"{opts.label} {page}: {response.status_code}"


def test_every_change_page_renders_and_hides_full_phone_numbers(admin_client, academy):
    for model in _models():
        obj = model.objects.first()
        if obj is None:
            continue
        opts = model._meta
        response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert response.status_code == 200, opts.label
        if opts.app_label in ("messaging", "billing"):
            for phone in academy.parent_phones():
                assert phone not in response.content.decode(), f"{opts.label} shows {phone}"


def test_the_message_page_shows_its_timeline(admin_client, academy):
    message = Message.objects.first()
    hold_credit(tenant=academy.tenant, requests=[HoldRequest(message.id, message.price)])

    page = admin_client.get(reverse("admin:messaging_message_change", args=[message.pk])).content.decode()

    assert "<td>created</td><td>SMS 13.00, parent</td>" in page
    assert "<td>credit hold</td><td>balance +0.00, held +13.00" in page
    release_holds(message_ids=[message.id])


def test_a_rejected_sender_can_be_marked_registered_again(admin_client, academy):
    tenant = academy.tenant
    Tenant.objects.filter(id=tenant.id).update(messaging_sender_status=SenderStatus.REJECTED)

    admin_client.post(reverse("admin:tenants_tenant_changelist"),
                      {"action": "sender_registered_again", "_selected_action": [tenant.id]})

    tenant.refresh_from_db()
    assert tenant.messaging_sender_status == SenderStatus.VERIFIED


def test_retry_action_retries_transient_failures_once_and_nothing_else(admin_client, academy):
    first, second, third = Message.objects.order_by("id")
    Message.objects.filter(id=first.id).update(status=MessageStatus.FAILED,
                                               failure_class=FailureClass.TRANSIENT_EXHAUSTED)
    Message.objects.filter(id=second.id).update(status=MessageStatus.FAILED,
                                                failure_class=FailureClass.RECIPIENT_INVALID)
    changelist = reverse("admin:messaging_message_changelist")
    action = {"action": "retry_failed_transient", "_selected_action": [first.id, second.id, third.id]}

    admin_client.post(changelist, action)
    admin_client.post(changelist, action)  # twice: the second click retries nothing

    retries = SendRequest.objects.exclude(id=first.send_request_id)
    assert retries.count() == 1
    assert list(retries.get().messages.values_list("retry_of", "status")) == [(first.id, MessageStatus.PENDING)]
    # A retry that fails again is not retried: a temporary failure gets one more chance.
    retry = retries.get().messages.get()
    Message.objects.filter(id=retry.id).update(status=MessageStatus.FAILED, failure_class=FailureClass.TRANSIENT)
    admin_client.post(changelist, {"action": "retry_failed_transient", "_selected_action": [retry.id]})
    assert SendRequest.objects.count() == 2


def test_the_breaker_can_be_closed_from_the_admin(admin_client, transactional_db):
    breaker.trip(SolapiAuthError("bad key", http_status=403, error_code="InvalidApiKey"))
    row = CircuitBreaker.objects.get()

    admin_client.post(reverse("admin:messaging_circuitbreaker_changelist"),
                      {"action": "close_breaker", "_selected_action": [row.id]})

    row.refresh_from_db()
    assert row.state == BreakerState.CLOSED


def test_top_up_action_credits_the_account_through_the_ledger(admin_client, academy):
    account = account_for(academy.tenant)
    release_holds(message_ids=Message.objects.values_list("id", flat=True))
    before = account.balance

    url = reverse("admin:billing_creditaccount_changelist")
    page = admin_client.post(url, {"action": "top_up_selected", "_selected_action": [account.id]})
    admin_client.post(url, {
        "action": "top_up_selected", "_selected_action": [account.id], "apply": "1", "amount": "500",
        "memo": "bank transfer"})

    assert page.status_code == 200 and f"{academy.tenant}: balance {before}" in page.content.decode()

    account = CreditAccount.objects.get(id=account.id)
    assert account.balance == before + Decimal("500")
    assert LedgerEntry.objects.filter(account=account, kind="top_up", memo="bank transfer").exists()



@pytest.mark.parametrize("model", ["tenants.student", "messaging.suppressedrecipient"])
def test_change_forms_show_phone_numbers_masked(admin_client, academy, model):
    from messaging.compose.suppression import suppress
    from messaging.models import SuppressionReason
    from tenants.models import Student

    student = academy.students[0]
    Student.objects.filter(id=student.id).update(phone="01098765432")
    entry = suppress(tenant_id=academy.tenant.id, phone=student.parent_phone, reason=SuppressionReason.OPTED_OUT)
    obj = student if model == "tenants.student" else entry
    app_label, model_name = model.split(".")

    page = admin_client.get(reverse(f"admin:{app_label}_{model_name}_change", args=[obj.pk])).content.decode()

    assert student.parent_phone not in page and "01098765432" not in page
    assert f"010****{student.parent_phone[-4:]}" in page


def test_admin_search_finds_numbers_by_their_last_four_digits_not_whole(admin_client, academy):
    from messaging.compose.suppression import suppress
    from messaging.models import SuppressionReason

    phone = academy.parent_phones()[0]
    suppress(tenant_id=academy.tenant.id, phone=phone, reason=SuppressionReason.OPTED_OUT)
    changelist = reverse("admin:messaging_suppressedrecipient_changelist")

    by_suffix = admin_client.get(changelist, {"q": phone[-4:]})
    whole = admin_client.get(changelist, {"q": phone}, follow=True)

    assert by_suffix.context["cl"].result_count == 1
    assert whole.context["cl"].result_count == 0
    assert "search by the last 4 digits" in whole.content.decode()
    students = admin_client.get(reverse("admin:tenants_student_changelist"), {"q": phone[-4:]})
    assert students.context["cl"].result_count == 1
def test_a_books_difference_is_explained_from_the_admin_and_leaves_billing_audit(admin_client, academy):
    chunk = Chunk.objects.create(send_request=SendRequest.objects.get(), index=0, solapi_group_id="G4VBOOKS")
    books = GroupReconciliation.objects.create(
        chunk=chunk, solapi_group_id="G4VBOOKS", expected=Decimal("39"), billed=Decimal("54"),
        difference=Decimal("15"), status=BooksStatus.DIFFERS)
    url = reverse("admin:messaging_groupreconciliation_changelist")
    assert audit() == [f"unreconciled groups: group G4VBOOKS (chunks {chunk.id}): Solapi billed 54.00, our books "
                       "say 39.00 (difference +15.00)"]

    page = admin_client.post(url, {"action": "explain_difference", "_selected_action": [books.id]})
    admin_client.post(url, {"action": "explain_difference", "_selected_action": [books.id], "apply": "1",
                            "explanation": "Solapi credit note 2026-11"})

    assert page.status_code == 200 and "G4VBOOKS: expected 39.00, billed 54.00 (+15.00)" in page.content.decode()
    books.refresh_from_db()
    assert (books.status, books.explanation) == (BooksStatus.EXPLAINED, "Solapi credit note 2026-11 (admin)")
    assert audit() == []
