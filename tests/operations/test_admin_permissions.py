"""Admin actions are checked when they run: a staff member who may only look gets 403 and
changes nothing; one with the action's permission acts, and the history names them."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing.ledger import account_for, release_holds
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
    send(academy, publish=False)
    release_holds(message_ids=Message.objects.values_list("id", flat=True))
    Tenant.objects.filter(id=academy.tenant.id).update(messaging_sender_status=SenderStatus.REJECTED)
    first = Message.objects.order_by("id").first()
    Message.objects.filter(id=first.id).update(status=MessageStatus.FAILED,
                                               failure_class=FailureClass.TRANSIENT_EXHAUSTED)
    breaker.trip(SolapiAuthError("bad key", http_status=403, error_code="InvalidApiKey"))
    chunk = Chunk.objects.create(send_request=SendRequest.objects.get(), index=0, solapi_group_id="G4VBOOKS")
    GroupReconciliation.objects.create(chunk=chunk, solapi_group_id="G4VBOOKS", expected=Decimal("39"),
                                       billed=Decimal("54"), difference=Decimal("15"),
                                       status=BooksStatus.DIFFERS)
    return academy


def _staff(client, username: str, *codenames: str):
    user = get_user_model().objects.create_user(username=username, password="pw-for-admin-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


VIEW_ONLY = ("view_creditaccount", "view_circuitbreaker", "view_message", "view_tenant", "view_groupreconciliation")


def _actions(academy):
    """(changelist, action POST) for every custom action, the top-up's second step included."""
    account = account_for(academy.tenant)
    failed = Message.objects.get(status=MessageStatus.FAILED)
    return {
        "top_up_credit": ("admin:billing_creditaccount_changelist", {
            "action": "top_up_selected", "_selected_action": [account.id], "apply": "1", "amount": "5000000",
            "memo": "free money"}),
        "close_breaker": ("admin:messaging_circuitbreaker_changelist", {
            "action": "close_breaker", "_selected_action": [CircuitBreaker.objects.get().id]}),
        "retry_messages": ("admin:messaging_message_changelist", {
            "action": "retry_failed_transient", "_selected_action": [failed.id]}),
        "reregister_sender": ("admin:tenants_tenant_changelist", {
            "action": "sender_registered_again", "_selected_action": [academy.tenant.id]}),
        "explain_books_difference": ("admin:messaging_groupreconciliation_changelist", {
            "action": "explain_difference", "_selected_action": [GroupReconciliation.objects.get().id], "apply": "1",
            "explanation": "a credit note"}),
        "delete_tenant": ("admin:tenants_tenant_changelist", {
            "action": "delete_selected", "_selected_action": [academy.tenant.id], "post": "yes"}),
    }


def _state(academy) -> dict:
    account = CreditAccount.objects.get(tenant=academy.tenant)
    return {
        "balance": account.balance, "ledger": LedgerEntry.objects.count(),
        "breaker": CircuitBreaker.objects.get().state, "send_requests": SendRequest.objects.count(),
        "messages": Message.objects.count(),
        "sender": Tenant.objects.filter(id=academy.tenant.id).values_list("messaging_sender_status", flat=True).get(),
        "books": GroupReconciliation.objects.get().status,
        "history": LogEntry.objects.count(),
    }


def test_a_view_only_staff_member_gets_403_for_every_action_and_nothing_changes(client, academy):
    _staff(client, "viewer", *VIEW_ONLY)
    before = _state(academy)

    for name, (changelist, post) in _actions(academy).items():
        assert client.get(reverse(changelist)).status_code == 200, name  # may look
        response = client.post(reverse(changelist), post)
        assert response.status_code == 403, f"{name}: {response.status_code}"

    assert _state(academy) == before
    assert before["breaker"] == BreakerState.OPEN and before["sender"] == SenderStatus.REJECTED


def test_the_top_up_form_itself_is_refused_without_the_permission(client, academy):
    """The form's first step (render) as well as its second (apply)."""
    _staff(client, "viewer", *VIEW_ONLY)
    changelist, post = _actions(academy)["top_up_credit"]
    first_step = {k: v for k, v in post.items() if k not in ("apply", "amount", "memo")}

    assert client.post(reverse(changelist), first_step).status_code == 403


@pytest.mark.parametrize("permission", ["top_up_credit", "close_breaker", "retry_messages", "reregister_sender",
                                        "explain_books_difference"])
def test_a_staff_member_with_the_permission_acts_and_the_history_names_them(client, academy, permission):
    user = _staff(client, f"operator-{permission}", *VIEW_ONLY, permission)
    changelist, post = _actions(academy)[permission]
    before = _state(academy)

    response = client.post(reverse(changelist), post)

    assert response.status_code in (200, 302), response.status_code
    after = _state(academy)
    changed = {key for key in before if before[key] != after[key]}
    expected = {
        "top_up_credit": {"balance", "ledger", "history"},
        "close_breaker": {"breaker", "history"},
        "retry_messages": {"send_requests", "messages", "history"},
        "reregister_sender": {"sender", "history"},
        "explain_books_difference": {"books", "history"},
    }[permission]
    assert changed == expected
    entry = LogEntry.objects.get()
    assert entry.user == user and entry.change_message
    if permission == "top_up_credit":
        assert after["balance"] == before["balance"] + Decimal("5000000")
        assert LedgerEntry.objects.filter(kind="top_up", memo="free money", created_by=user).exists()
    if permission == "retry_messages":
        assert SendRequest.objects.order_by("-id").first().created_by == user


def test_every_admin_action_declares_its_permissions():
    """An action without `allowed_permissions` is open to anyone who can see the list."""
    open_actions = [
        f"{model._meta.label}.{name}"
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in ("tenants", "billing", "messaging")
        for func, name, _ in model_admin._get_base_actions()
        if not getattr(func, "allowed_permissions", None)
    ]
    assert open_actions == []
