"""The staff console's pages without a browser: who may see them, which academy they act
for, another academy's ids (404), the retry button. The browser tests (tests/browser) drive
compose, watch and history end to end."""

import re

import pytest
from django.test import Client

from billing.ledger import release_holds
from harness.academies import make_academy, make_class, make_template
from messaging.compose.send_requests import SendInput, send_request_create
from messaging.failures import FailureClass
from messaging.models import MessageStatus, SendRequest
from tenants.models import Membership, TemplateStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def academy():
    return make_academy("console-a", students=2)


@pytest.fixture
def other():
    return make_academy("console-b", students=2)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def a_send(academy, broker) -> SendRequest:
    answer = send_request_create(tenant=academy.tenant, user=academy.user, idempotency_key=None,
                                 data=SendInput(student_ids=academy.student_ids, body="#{이름} 안내"))
    return SendRequest.objects.get(id=answer["id"])


def test_pages_need_a_login():
    for path in ("/app/", "/app/send-requests/", "/app/send-requests/1/", "/app/academies/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/app/login/")


def test_logging_in_with_the_staff_account_leads_to_compose(academy):
    academy.user.set_password("pw-12345678")
    academy.user.save()
    client = Client()

    wrong = client.post("/app/login/", {"username": academy.user.username, "password": "nope"})
    assert "아이디 또는 비밀번호가 맞지 않습니다" in wrong.content.decode()

    response = client.post("/app/login/", {"username": academy.user.username, "password": "pw-12345678"},
                           follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/app/"
    assert "메시지 쓰기" in page and academy.tenant.name in page

    assert client.post("/app/logout/").status_code == 302
    assert client.get("/app/").status_code == 302


def test_compose_offers_the_classes_and_only_approved_templates(academy):
    make_class(academy.tenant, "수학 A반", academy.students)
    make_template(academy.tenant, template_id="TPL_PENDING", status=TemplateStatus.PENDING)

    page = logged_in(academy.user).get("/app/").content.decode()

    assert "수학 A반" in page and "2명" in page
    assert re.search(r'<option value="TPL_PENDING"[^>]*\bdisabled\b[^>]*>안내 \(검수 중\)', page)
    assert re.search(r'<option value="TPL_NOTICE"[^>]*>안내 \(승인\)', page)
    assert '<option value="TPL_NOTICE" data-content="#{이름} 학생이 학원에 도착했습니다."' in page


def test_a_user_of_no_academy_is_told_so(db, django_user_model):
    admin = django_user_model.objects.create_user("admin-only", is_staff=True, is_superuser=True)
    client = logged_in(admin)

    assert client.get("/app/")["Location"] == "/app/academies/"
    response = client.get("/app/academies/")
    assert response.status_code == 403
    assert "소속된 학원이 없습니다" in response.content.decode()


def test_staff_of_two_academies_pick_one_and_only_their_own(academy, other):
    Membership.objects.create(user=academy.user, tenant=other.tenant)
    stranger = make_academy("console-c", students=1)
    client = logged_in(academy.user)

    assert client.get("/app/")["Location"] == "/app/academies/"
    refused = client.post("/app/academies/", {"academy": stranger.tenant.id})
    assert refused.status_code == 200 and "선택해 주세요" in refused.content.decode()
    assert client.get("/app/")["Location"] == "/app/academies/"

    assert client.post("/app/academies/", {"academy": other.tenant.id})["Location"] == "/app/"
    page = client.get("/app/").content.decode()
    assert f'data-slug="{other.tenant.slug}"' in page

    # Removed from that academy since: the pick no longer counts.
    Membership.objects.filter(user=academy.user, tenant=other.tenant).delete()
    assert f'data-slug="{academy.tenant.slug}"' in client.get("/app/").content.decode()


def test_another_academys_send_request_is_not_found(academy, other, broker):
    theirs = a_send(other, broker)
    client = logged_in(academy.user)

    assert client.get(f"/app/send-requests/{theirs.id}/").status_code == 404
    assert client.post(f"/app/send-requests/{theirs.id}/retry").status_code == 404
    history = client.get("/app/send-requests/").content.decode()
    assert f'href="/app/send-requests/{theirs.id}/"' not in history
    assert "아직 보낸 메시지가 없습니다" in history


def test_watch_and_history_show_the_request(academy, broker):
    send_request = a_send(academy, broker)
    client = logged_in(academy.user)

    watch = client.get(f"/app/send-requests/{send_request.id}/").content.decode()
    assert f"발송 #{send_request.id}" in watch and 'id="count-total">2<' in watch
    history = client.get("/app/send-requests/").content.decode()
    assert f'href="/app/send-requests/{send_request.id}/"' in history
    assert "예약" in history  # the hold in the recent ledger entries


def test_the_csv_download_is_the_apis_export_for_the_sessions_academy(academy, other, broker):
    mine, theirs = a_send(academy, broker), a_send(other, broker)
    client = logged_in(academy.user)

    response = client.get(f"/app/send-requests/{mine.id}/export.csv")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff메시지 ID,학생")
    assert len(text.strip().splitlines()) == 1 + 2
    assert client.get(f"/app/send-requests/{theirs.id}/export.csv").status_code == 404


def test_history_filters_by_status(academy, broker):
    send_request = a_send(academy, broker)
    client = logged_in(academy.user)
    link = f'href="/app/send-requests/{send_request.id}/"'

    assert link in client.get("/app/send-requests/?status=sending").content.decode()
    assert link not in client.get("/app/send-requests/?status=completed").content.decode()
    assert link in client.get("/app/send-requests/?status=nonsense").content.decode()


def test_failures_are_retried_once(academy, broker):
    send_request = a_send(academy, broker)
    failed = send_request.messages.first()
    # Failed as the pipeline fails a message: its hold released.
    send_request.messages.filter(id=failed.id).update(status=MessageStatus.FAILED,
                                                      failure_class=FailureClass.TRANSIENT_EXHAUSTED)
    release_holds(message_ids=[failed.id])
    client = logged_in(academy.user)
    watch = client.get(f"/app/send-requests/{send_request.id}/").content.decode()
    assert "실패한 1건 다시 보내기" in watch and "재시도 초과" in watch

    response = client.post(f"/app/send-requests/{send_request.id}/retry")

    retry = SendRequest.objects.exclude(id=send_request.id).get()
    assert response["Location"] == f"/app/send-requests/{retry.id}/"
    assert list(retry.messages.values_list("retry_of_id", flat=True)) == [failed.id]
    again = client.post(f"/app/send-requests/{send_request.id}/retry", follow=True)
    assert "다시 보낼 수 있는 실패 메시지가 없습니다" in again.content.decode()
    assert SendRequest.objects.count() == 2
