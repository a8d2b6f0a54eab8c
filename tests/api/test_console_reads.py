"""The reads the staff console needs: GET students, classes, templates, send-requests, a send
request's messages and its CSV export. Each: paging, filters, another academy's ids 404 (or
simply absent from a list), numbers masked."""

import csv
import io
from datetime import timedelta

import pytest

from harness.academies import make_class, make_students, make_template
from messaging.failures import FailureClass
from messaging.models import Message, MessageStatus, SendRequest
from messaging.pipeline.cancellation import cancel_send_request
from project import clock as project_clock
from tenants.models import MarketingConsent, RecipientKind, TemplateStatus
from tests.api.conftest import assert_refusal, client_for, send_body
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db


# --- students ------------------------------------------------------------------------------


def test_students_are_paged_by_name_with_masked_numbers_and_their_classes(academy, api, other_academy):
    make_students(academy.tenant, 4)
    math = make_class(academy.tenant, "수학 A반", academy.students[:1])

    first = api.get("/api/v1/students", {"page_size": 5}).json()
    second = api.get("/api/v1/students", {"page_size": 5, "page": 2}).json()

    assert (first["total"], first["page"], first["page_size"], len(first["results"])) == (7, 1, 5, 5)
    assert len(second["results"]) == 2
    listed = first["results"] + second["results"]
    assert [r["name"] for r in listed] == sorted(r["name"] for r in listed)
    assert {r["id"] for r in listed} == set(academy.tenant.students.values_list("id", flat=True))
    row = next(r for r in listed if r["id"] == academy.students[0].id)
    parent_phone = academy.students[0].parent_phone
    assert row["parent_phone"] == parent_phone[:3] + "****" + parent_phone[-4:]
    assert row["class_ids"] == [math.id]
    assert row["consent"] == {"student": False, "parent": False}
    # Past the last page: nothing, the same total.
    assert api.get("/api/v1/students", {"page": 9}).json() == {
        "results": [], "page": 9, "page_size": 50, "total": 7}


def test_students_are_searched_and_filtered_through_the_query_string(academy, api):
    first, second, _ = academy.students
    [kim] = make_students(academy.tenant, 1, name="김하늘", parent_phone="", phone="01055554321", grade=8)
    math = make_class(academy.tenant, "수학 A반", [first, kim])
    MarketingConsent.objects.create(student=second, recipient=RecipientKind.PARENT,
                                    marketing_consented_at=project_clock.now())

    def ids(**query) -> set[int]:
        response = api.get("/api/v1/students", query)
        assert response.status_code == 200, response.json()
        return {r["id"] for r in response.json()["results"]}

    assert ids(search="하늘") == {kim.id}
    assert ids(search="4321") == {kim.id}
    assert ids(class_id=math.id) == {first.id, kim.id}
    assert ids(grade=8) == {kim.id}
    assert ids(has_parent_phone="false") == {kim.id}
    assert ids(consent="given") == {second.id}
    assert ids(class_id=math.id, has_parent_phone="true") == {first.id}


def test_a_bad_filter_is_invalid_request_and_another_academys_class_is_not_found(academy, api, other_academy):
    foreign = make_class(other_academy.tenant, "외부 반", other_academy.students)

    assert_refusal(api.get("/api/v1/students", {"grade": "first"}), 400, "invalid_request")
    assert_refusal(api.get("/api/v1/students", {"consent": "maybe"}), 400, "invalid_request")
    assert_refusal(api.get("/api/v1/students", {"page_size": 100_000}), 400, "invalid_request")
    assert_refusal(api.get("/api/v1/students", {"class_id": foreign.id}), 404, "class_not_found")


def test_another_academys_students_are_never_listed(academy, api, other_academy):
    listed = {r["id"] for r in api.get("/api/v1/students", {"search": other_academy.students[0].name}).json()[
        "results"]}

    assert listed and not listed & set(other_academy.student_ids)


# --- classes and templates -----------------------------------------------------------------


def test_classes_are_the_academys_own_with_their_sizes(academy, api, other_academy):
    make_class(academy.tenant, "영어 B반", academy.students)
    make_class(academy.tenant, "수학 A반", academy.students[:1])
    make_class(other_academy.tenant, "국어 C반", other_academy.students)

    assert [(c["name"], c["student_count"]) for c in api.get("/api/v1/classes").json()] == [
        ("수학 A반", 1), ("영어 B반", 3)]


def test_templates_show_approval_and_variables(academy, api, other_academy):
    make_template(academy.tenant, template_id="TPL_PENDING", content="#{이름} 학생 #{과목} 보강 안내",
                  status=TemplateStatus.PENDING)
    make_template(other_academy.tenant, template_id="TPL_THEIRS")

    templates = api.get("/api/v1/templates").json()

    assert [(t["template_id"], t["status"], t["approved"]) for t in templates] == [
        ("TPL_NOTICE", "approved", True), ("TPL_PENDING", "pending", False)]
    assert templates[1]["variables"] == ["이름", "과목"]


# --- send requests -------------------------------------------------------------------------


def test_send_requests_are_paged_newest_first_and_filtered(academy, api, other_academy, clock):
    clock.freeze(clock.next_kst(10))
    old = send(academy, publish=False)
    clock.freeze(clock.now() + timedelta(days=1))
    cancelled = send(academy, publish=False)
    cancel_send_request(academy.tenant, cancelled.id)
    scheduled = SendRequest.objects.get(id=api.post("/api/v1/messages/send", send_body(
        academy.student_ids, send_at=(clock.now() + timedelta(hours=2)).isoformat()), format="json").json()["id"])
    send(other_academy, publish=False)

    def ids(**query) -> list[int]:
        response = api.get("/api/v1/messages/send-requests", query)
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["results"]]

    assert ids() == [scheduled.id, cancelled.id, old.id]
    page = api.get("/api/v1/messages/send-requests", {"page_size": 2, "page": 2}).json()
    assert ([r["id"] for r in page["results"]], page["total"]) == ([old.id], 3)
    assert ids(status="cancelled") == [cancelled.id]
    assert ids(status="scheduled") == [scheduled.id]
    assert ids(status="sending") == [old.id]
    assert ids(purpose="ad") == []
    today = clock.kst_now().date()
    assert ids(created_from=today.isoformat()) == [scheduled.id, cancelled.id]
    assert ids(created_to=(today - timedelta(days=1)).isoformat()) == [old.id]
    row = api.get("/api/v1/messages/send-requests", {"status": "cancelled"}).json()["results"][0]
    assert row["status_url"] == f"/api/v1/messages/send-requests/{cancelled.id}"
    assert row["counts"]["failed"] == 3 and row["cancelled"] is not None
    assert_refusal(api.get("/api/v1/messages/send-requests", {"status": "lost"}), 400, "invalid_request")
    assert_refusal(api.get("/api/v1/messages/send-requests", {"created_from": "yesterday"}), 400, "invalid_request")


def test_the_detail_says_where_the_request_stands(academy, api):
    send_request = send(academy, publish=False)
    cancel_send_request(academy.tenant, send_request.id)

    detail = api.get(f"/api/v1/messages/send-requests/{send_request.id}").json()

    assert (detail["status"], detail["send_at"], detail["counts"]["failed"]) == ("cancelled", None, 3)
    assert detail["cancelled"] is not None


@pytest.fixture
def mixed_request(academy):
    """A request with one message skipped (no parent phone), one cancelled and two accepted."""
    [no_phone] = make_students(academy.tenant, 1, parent_phone="", name="박없음")
    academy.students.append(no_phone)
    send_request = send(academy, publish=False)
    messages = list(Message.objects.filter(send_request=send_request, status=MessageStatus.PENDING).order_by("id"))
    Message.objects.filter(id__in=[m.id for m in messages[:2]]).update(status=MessageStatus.ACCEPTED,
                                                                        accepted_at=project_clock.now())
    Message.objects.filter(id=messages[2].id).update(text="=HYPERLINK(\"http://x\")")
    cancel_send_request(academy.tenant, send_request.id)
    return send_request


def test_a_requests_messages_are_paged_and_filtered_with_names_masked_numbers_and_korean_reasons(
        academy, api, mixed_request):
    url = f"/api/v1/messages/send-requests/{mixed_request.id}/messages"

    everything = api.get(url, {"page_size": 3}).json()
    failed = api.get(url, {"status": "failed"}).json()["results"]
    cancelled = api.get(url, {"failure_class": "cancelled"}).json()["results"]
    skipped = api.get(url, {"status": "skipped"}).json()["results"]

    assert (everything["total"], len(everything["results"])) == (4, 3)
    assert len(api.get(url, {"page_size": 3, "page": 2}).json()["results"]) == 1
    assert [m["id"] for m in failed] == [m["id"] for m in cancelled] and len(cancelled) == 1
    assert cancelled[0]["reason"] == "발송 취소" and cancelled[0]["failure_class"] == FailureClass.CANCELLED
    assert (skipped[0]["student_name"], skipped[0]["reason"], skipped[0]["phone"]) == ("박없음", "전화번호 없음", "")
    accepted = api.get(url, {"status": "accepted"}).json()["results"]
    phone = Message.objects.get(id=accepted[0]["id"]).phone
    assert accepted[0]["phone"] == phone[:3] + "****" + phone[-4:] and accepted[0]["reason"] == ""
    assert accepted[0]["student_name"] and accepted[0]["text"]
    assert_refusal(api.get(url, {"failure_class": "bored"}), 400, "invalid_request")


def test_the_csv_export_has_a_bom_every_message_and_no_formula(academy, api, mixed_request):
    response = api.get(f"/api/v1/messages/send-requests/{mixed_request.id}/export.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="send-request-{mixed_request.id}.csv"' in response["Content-Disposition"]
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 4
    assert {r["상태"] for r in rows} == {"접수", "실패", "제외"}
    assert {r["사유"] for r in rows} == {"", "발송 취소", "전화번호 없음"}
    cancelled = next(r for r in rows if r["사유"] == "발송 취소")
    assert cancelled["내용"] == "'=HYPERLINK(\"http://x\")"
    for row in rows:
        assert not row["전화번호"] or "****" in row["전화번호"]


@pytest.mark.parametrize("path", ["", "/messages", "/export.csv"])
def test_another_academys_send_request_is_not_found(academy, other_academy, path):
    theirs = send(other_academy, publish=False)

    response = client_for(academy.user).get(f"/api/v1/messages/send-requests/{theirs.id}{path}")

    assert_refusal(response, 404, "not_found")
