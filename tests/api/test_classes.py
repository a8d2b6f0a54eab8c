"""Classes (반): a send or a preview to `class_ids` reaches every student of those classes once,
together with `student_ids`; another academy's class is 404. And students_for, the selector
behind GET students: search by name or phone suffix, filters by class, grade, parent phone
and consent."""

import pytest

from harness.academies import make_class, make_students
from messaging.models import Message
from project import clock
from tenants.models import MarketingConsent, RecipientKind
from tenants.selectors import ConsentFilter, students_for
from tests.api.conftest import assert_refusal, send_body

pytestmark = pytest.mark.django_db

SEND_URL, PREVIEW_URL = "/api/v1/messages/send", "/api/v1/messages/preview"


@pytest.fixture
def classes(academy):
    """Two overlapping classes of academy A: students 0-1 and 1-2 of its three."""
    first, second, third = academy.students
    return make_class(academy.tenant, "수학 A반", [first, second]), make_class(academy.tenant, "영어 B반",
                                                                              [second, third])


def test_a_send_to_two_overlapping_classes_and_a_student_reaches_each_student_once(academy, api, classes, broker):
    math, english = classes
    [extra] = make_students(academy.tenant, 1)

    response = api.post(SEND_URL, send_body([extra.id, academy.students[1].id], class_ids=[math.id, english.id]),
                        format="json")

    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == 4
    sent_to = list(Message.objects.filter(send_request_id=response.json()["id"]).values_list("student_id", flat=True))
    assert sorted(sent_to) == sorted([extra.id, *academy.student_ids])


def test_the_preview_expands_classes_the_same_way(academy, api, classes):
    math, _ = classes

    response = api.post(PREVIEW_URL, send_body([], class_ids=[math.id]), format="json")

    assert response.status_code == 200, response.json()
    assert [r["student_id"] for r in response.json()["recipients"]] == academy.student_ids[:2]


def test_another_academys_class_is_not_found(academy, other_academy, api):
    foreign = make_class(other_academy.tenant, "수학 A반", other_academy.students)

    body = assert_refusal(api.post(SEND_URL, send_body([], class_ids=[foreign.id]), format="json"), 404,
                          "class_not_found")
    assert body["class_ids"] == [foreign.id]
    assert_refusal(api.post(PREVIEW_URL, send_body(academy.student_ids, class_ids=[foreign.id]), format="json"),
                   404, "class_not_found")


def test_an_empty_class_and_no_students_is_no_students(academy, api):
    empty = make_class(academy.tenant, "빈 반", [])

    assert_refusal(api.post(SEND_URL, send_body([], class_ids=[empty.id]), format="json"), 400, "no_students")
    assert_refusal(api.post(SEND_URL, {"purpose": "info", "body": "안내"}, format="json"), 400, "no_students")


def test_students_for_searches_names_and_phone_endings_of_the_academy_only(academy, other_academy):
    tenant = academy.tenant
    [kim] = make_students(tenant, 1, name="김하늘", phone="01055551234", parent_phone="01099998765")
    make_students(other_academy.tenant, 1, name="김하늘", parent_phone="01000001234")

    assert list(students_for(tenant, search="하늘")) == [kim]
    assert list(students_for(tenant, search="1234")) == [kim]
    assert list(students_for(tenant, search="9998-765")) == [kim]
    assert list(students_for(tenant, search="없는이름")) == []


def test_students_for_filters_by_class_grade_parent_phone_and_consent(academy, classes, other_academy):
    tenant = academy.tenant
    first, second, third = academy.students
    math, _ = classes
    [no_parent] = make_students(tenant, 1, parent_phone="", grade=9)
    first.grade = 9
    first.save()
    MarketingConsent.objects.create(student=second, recipient=RecipientKind.PARENT, marketing_consented_at=clock.now())
    MarketingConsent.objects.create(student=third, recipient=RecipientKind.PARENT, marketing_consented_at=clock.now(),
                                    withdrawn_at=clock.now())
    foreign_class = make_class(other_academy.tenant, "외부 반", other_academy.students)

    def ids(**filters) -> set[int]:
        return {s.id for s in students_for(tenant, **filters)}

    assert ids(class_id=math.id) == {first.id, second.id}
    assert ids(class_id=foreign_class.id) == set()
    assert ids(grade=9) == {first.id, no_parent.id}
    assert ids(has_parent_phone=False) == {no_parent.id}
    assert ids(has_parent_phone=True) == {first.id, second.id, third.id}
    assert ids(consent=ConsentFilter.GIVEN) == {second.id}
    assert ids(consent=ConsentFilter.MISSING) == {first.id, third.id, no_parent.id}
    assert ids(class_id=math.id, consent=ConsentFilter.MISSING) == {first.id}
