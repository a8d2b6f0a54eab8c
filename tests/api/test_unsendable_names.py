"""A student's name that SMS/LMS cannot carry skips that recipient, by name, and the rest of
the class is sent; only a text that no one could receive is refused (docs/security.md
section 10)."""

import pytest

from harness.academies import make_academy, make_students
from messaging.models import Message, MessageStatus, SkipReason
from tests.api.conftest import assert_refusal, client_for, send_body


@pytest.fixture
def academy(db):
    academy = make_academy(students=2)
    academy.students += make_students(academy.tenant, 2)
    academy.students[2].name, academy.students[3].name = "김똠", "이서연😀"
    for student in academy.students[2:]:
        student.save(update_fields=["name"])
    return academy


def post(academy, **fields):
    return client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids, **fields),
                                         format="json")


@pytest.mark.parametrize("mode", ["sms", "both"])
def test_a_name_outside_euc_kr_skips_that_student_by_name_and_sends_the_rest(broker, academy, mode):
    fields = {"message_mode": mode, "template_id": "TPL_NOTICE"} if mode == "both" else {}

    response = post(academy, **fields)

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["accepted"] == 2
    assert body["skipped"] == [
        {"student_id": academy.students[2].id, "recipient": "parent", "reason": "unsupported_characters_in_name",
         "student_name": "김똠", "characters": ["똠"]},
        {"student_id": academy.students[3].id, "recipient": "parent", "reason": "unsupported_characters_in_name",
         "student_name": "이서연😀", "characters": ["😀"]},
    ]
    skipped = Message.objects.filter(send_request_id=body["id"], status=MessageStatus.SKIPPED)
    assert set(skipped.values_list("skip_reason", flat=True)) == {SkipReason.UNSUPPORTED_CHARACTERS_IN_NAME}


def test_alimtalk_alone_is_not_limited_to_euc_kr_so_nobody_is_skipped(broker, academy):
    response = post(academy, message_mode="alimtalk", template_id="TPL_NOTICE")

    assert (response.status_code, response.json()["skipped"]) == (202, [])


def test_a_text_without_the_name_goes_to_everyone(broker, academy):
    response = post(academy, body="내일 휴원입니다.")

    assert (response.json()["accepted"], response.json()["skipped"]) == (4, [])


def test_the_body_itself_outside_euc_kr_still_refuses_the_whole_send(broker, academy):
    body = assert_refusal(post(academy, body="#{이름} 학생 안내 😀"), 400, "unsupported_characters")

    assert body["characters"] == ["😀"]


def test_a_shared_variable_outside_euc_kr_refuses_the_whole_send(broker, academy):
    body = assert_refusal(post(academy, body="#{이름} 학생 #{반} 안내", alimtalk_replacements={"반": "똠반"}), 400,
                          "unsupported_characters")

    assert body["characters"] == ["똠"]


def test_when_every_name_is_unsendable_the_refusal_lists_them(broker, db):
    academy = make_academy(students=1)
    academy.students[0].name = "똠"
    academy.students[0].save(update_fields=["name"])

    body = assert_refusal(post(academy), 422, "no_recipients")

    assert body["skipped"][0]["student_name"] == "똠"
