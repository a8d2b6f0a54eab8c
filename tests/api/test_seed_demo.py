"""`manage.py seed_demo [--json]`: a demo academy that can send at once, made once however
often the command runs."""

import io
import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from billing.ledger import account_for
from billing.models import LedgerEntry, Price
from messaging.management.commands import seed_demo
from tenants.models import AlimTalkTemplate, Membership, SchoolClass, SenderStatus, Student, TemplateStatus, Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def password_file(tmp_path, monkeypatch):
    """The dev admin's password file, away from the developer's own var/."""
    path = tmp_path / "dev-admin-password"
    monkeypatch.setattr(seed_demo, "DEV_ADMIN_PASSWORD_FILE", path)
    return path


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def table_sizes() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in
            (Tenant, get_user_model(), Membership, Student, SchoolClass, AlimTalkTemplate, Price, LedgerEntry)}


def test_json_output_has_the_token_the_tenant_and_the_student_ids():
    output = json.loads(seed("--json"))

    assert set(output) == {"token", "tenant", "student_ids", "class_ids"}  # and "admin" with DEBUG on (below)
    tenant = Tenant.objects.get(slug=output["tenant"])
    assert sorted(output["student_ids"]) == sorted(tenant.students.values_list("id", flat=True))
    assert len(output["student_ids"]) == 20
    assert get_user_model().objects.get(auth_token__key=output["token"]).memberships.get().tenant == tenant


def test_the_demo_academy_is_ready_to_send():
    seed()
    tenant = Tenant.objects.get(slug="demo")

    assert tenant.messaging_sender and tenant.messaging_sender_status == SenderStatus.VERIFIED
    assert tenant.messaging_is_active and tenant.kakao_pf_id
    assert all(s.parent_phone for s in tenant.students.all())
    assert AlimTalkTemplate.objects.get(tenant=tenant).status == TemplateStatus.APPROVED
    classes = list(tenant.classes.all())
    assert len(classes) == 3 and all(c.students.exists() for c in classes)
    assert not tenant.students.filter(grade__isnull=True).exists()
    assert account_for(tenant).available > 0
    assert set(Price.objects.values_list("message_type", flat=True)) >= {"SMS", "LMS", "ATA"}


def test_running_it_twice_changes_nothing_and_prints_the_same():
    first = seed("--json")
    sizes = table_sizes()
    balance = account_for(Tenant.objects.get(slug="demo")).balance

    second = seed("--json")

    assert json.loads(second) == json.loads(first)
    assert table_sizes() == sizes
    assert account_for(Tenant.objects.get(slug="demo")).balance == balance == Decimal("100000")


def test_plain_output_prints_the_token_and_the_slug():
    token = json.loads(seed("--json"))["token"]

    output = seed()

    assert token in output
    assert "demo" in output


def test_the_printed_token_can_preview_and_send_to_the_printed_students(broker):
    demo = json.loads(seed("--json"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {demo['token']}", HTTP_X_TENANT=demo["tenant"])
    body = {"student_ids": demo["student_ids"], "purpose": "info", "message_mode": "both",
            "template_id": "TPL_ATTENDANCE"}

    preview = client.post("/api/v1/messages/preview", body, format="json")
    sent = client.post("/api/v1/messages/send", body, format="json")

    assert preview.status_code == 200, preview.json()
    assert preview.json()["sendable"] == 20
    assert sent.status_code == 202, sent.json()
    assert (sent.json()["accepted"], sent.json()["dispatched"]) == (20, True)


def test_with_debug_on_a_dev_admin_can_log_into_the_admin_with_the_printed_password(client, settings,
                                                                                    password_file):
    settings.DEBUG = True
    admin = json.loads(seed("--json"))["admin"]

    assert client.login(username=admin["username"], password=admin["password"])
    assert client.get("/admin/").status_code == 200
    assert password_file.read_text().strip() == admin["password"]
    assert oct(password_file.stat().st_mode & 0o777) == "0o600"
    assert json.loads(seed("--json"))["admin"] == admin  # the same login on every run
    assert f"{admin['username']} / {admin['password']}" in seed()


def test_a_lost_password_file_gets_a_new_password(settings, password_file):
    settings.DEBUG = True
    first = json.loads(seed("--json"))["admin"]["password"]
    password_file.unlink()

    second = json.loads(seed("--json"))["admin"]["password"]

    assert second != first
    assert get_user_model().objects.get(username="dev-admin").check_password(second)


def test_with_debug_off_no_admin_is_made(settings, password_file):
    settings.DEBUG = False  # as in production (and the test runner's default)

    output = json.loads(seed("--json"))

    assert "admin" not in output
    assert not get_user_model().objects.filter(is_superuser=True).exists()
    assert not password_file.exists()
