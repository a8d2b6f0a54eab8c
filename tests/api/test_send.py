"""POST /api/v1/messages/send and /preview, GET the request's progress and the credit:
what is accepted, what is skipped and why, what each recipient gets and what it costs,
and that a send of any size publishes exactly one dispatch task."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from billing.ledger import top_up
from billing.models import MessageType
from harness.academies import TEMPLATE_ID, make_students, make_template, new_phone
from messaging.compose import message_rows, suppression
from messaging.failures import FailureClass
from messaging.models import Message, MessageStatus, SendRequest, SuppressionReason
from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE
from tests.api.conftest import send_body

pytestmark = pytest.mark.django_db

PREVIEW_URL = "/api/v1/messages/preview"


def messages_of(response) -> list[Message]:
    return list(Message.objects.filter(send_request_id=response.json()["id"]).order_by("id"))


def test_an_accepted_send_answers_202_with_id_status_url_count_cost_and_dispatch(academy, api, post_send, broker,
                                                                                clock):
    clock.freeze(datetime(2026, 3, 4, 5, 0, tzinfo=UTC))
    response = post_send(academy.student_ids)

    assert response.status_code == 202, response.json()
    body = response.json()
    send_request = SendRequest.objects.get()
    assert body == {
        "id": send_request.id,
        "status_url": f"/api/v1/messages/send-requests/{send_request.id}",
        "accepted": 3,
        "estimated_cost": body["estimated_cost"],
        "dispatched": True,
        "skipped": [],
        "deferred": 0,
        "deferred_until": None,
        "send_at": None,
        # Nothing ahead of it: it starts now (Korean time, like every time the API writes).
        "queued_behind": {"requests": 0, "messages": 0},
        "estimated_start": "2026-03-04T14:00:00+09:00",
        "delayed": False,
        "delay_messages": None,
    }
    assert Decimal(body["estimated_cost"]) == 3 * Decimal("13")
    assert send_request.dispatched is not None
    assert send_request.queue == INTERACTIVE_QUEUE
    assert [m.status for m in messages_of(response)] == [MessageStatus.PENDING] * 3
    assert broker.request_counts()["SendMessage"] == 1
    # The status URL answers for the request just made.
    progress = api.get(body["status_url"])
    assert progress.status_code == 200
    assert progress.json()["counts"]["pending"] == 3


def test_recipients_without_a_usable_number_are_skipped_with_their_reason(academy, post_send, broker):
    tenant = academy.tenant
    [reachable] = make_students(tenant, 1)
    [no_phone] = make_students(tenant, 1, parent_phone="")
    [bad_phone] = make_students(tenant, 1, parent_phone="0201")
    [opted_out, known_invalid] = make_students(tenant, 2)
    suppression.suppress(tenant_id=tenant.id, phone=opted_out.parent_phone, reason=SuppressionReason.OPTED_OUT)
    suppression.suppress(tenant_id=tenant.id, phone=known_invalid.parent_phone, reason=SuppressionReason.INVALID)
    shared = new_phone()
    older, younger = make_students(tenant, 2, parent_phone=shared)
    ids = [reachable.id, no_phone.id, bad_phone.id, opted_out.id, known_invalid.id, older.id, younger.id]

    # No per-student variable: siblings would get the very same text on the same phone.
    response = post_send(ids, body="내일은 휴원입니다.")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["accepted"] == 2
    assert body["skipped"] == [
        {"student_id": no_phone.id, "recipient": "parent", "reason": "no_phone"},
        {"student_id": bad_phone.id, "recipient": "parent", "reason": "invalid_phone"},
        {"student_id": opted_out.id, "recipient": "parent", "reason": "opted_out"},
        {"student_id": known_invalid.id, "recipient": "parent", "reason": "invalid_phone"},
        {"student_id": younger.id, "recipient": "parent", "reason": "duplicate_phone"},
    ]
    assert Decimal(body["estimated_cost"]) == 2 * Decimal("13")
    # Skipped recipients are rows too, so the request's history is complete.
    rows = {m.student_id: (m.status, m.skip_reason) for m in messages_of(response)}
    assert rows == {
        reachable.id: (MessageStatus.PENDING, ""),
        no_phone.id: (MessageStatus.SKIPPED, "no_phone"),
        bad_phone.id: (MessageStatus.SKIPPED, "invalid_phone"),
        opted_out.id: (MessageStatus.SKIPPED, "opted_out"),
        known_invalid.id: (MessageStatus.SKIPPED, "invalid_phone"),
        older.id: (MessageStatus.PENDING, ""),
        younger.id: (MessageStatus.SKIPPED, "duplicate_phone"),
    }


def test_siblings_sharing_a_parent_phone_each_get_a_message_when_their_texts_differ(academy, post_send, broker):
    shared = new_phone()
    older, younger = make_students(academy.tenant, 2, parent_phone=shared)
    older.name, younger.name = "김하나", "김두리"
    older.save(), younger.save()

    response = post_send([older.id, younger.id], body="#{이름} 학생 성적표가 나왔습니다.")

    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == 2
    assert response.json()["skipped"] == []
    assert sorted(m.text for m in messages_of(response)) == [
        "김두리 학생 성적표가 나왔습니다.", "김하나 학생 성적표가 나왔습니다."]


def test_send_to_both_reaches_student_and_parent_and_skips_a_student_without_a_phone(academy, post_send, broker):
    [with_phone] = make_students(academy.tenant, 1, phone=new_phone())
    [without_phone] = make_students(academy.tenant, 1, phone="")

    response = post_send([with_phone.id, without_phone.id], send_to="both")

    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == 3
    assert response.json()["skipped"] == [
        {"student_id": without_phone.id, "recipient": "student", "reason": "no_phone"}]
    assert [(m.student_id, m.recipient_kind, m.phone) for m in messages_of(response)] == [
        (with_phone.id, "student", with_phone.phone),
        (with_phone.id, "parent", with_phone.parent_phone),
        (without_phone.id, "student", ""),
        (without_phone.id, "parent", without_phone.parent_phone),
    ]


def test_the_student_name_variable_is_rendered_for_each_recipient(academy, post_send, broker):
    response = post_send(academy.student_ids, body="#{이름} 학생, 내일 #{이름} 학생의 시험이 있습니다.")

    assert response.status_code == 202, response.json()
    by_student = {m.student_id: m for m in messages_of(response)}
    for student in academy.students:
        message = by_student[student.id]
        assert message.text == f"{student.name} 학생, 내일 {student.name} 학생의 시험이 있습니다."
        assert message.variables == {"이름": student.name}
        assert message.phone == student.parent_phone


def test_the_type_and_price_follow_each_rendered_text_in_euc_kr_bytes(academy, post_send, broker):
    # 43 Hangul are 86 bytes: with a 2-syllable name the text is 90 bytes (SMS), with a
    # 3-syllable name 92 bytes (LMS). Characters alone would call both SMS.
    short, long = make_students(academy.tenant, 2)
    short.name, long.name = "이솔", "김민준"
    short.save(), long.save()

    response = post_send([short.id, long.id], body="#{이름}" + "가" * 43)

    assert response.status_code == 202, response.json()
    by_student = {m.student_id: m for m in messages_of(response)}
    assert (by_student[short.id].message_type, by_student[short.id].price) == (MessageType.SMS, Decimal("13"))
    assert (by_student[long.id].message_type, by_student[long.id].price) == (MessageType.LMS, Decimal("29"))
    assert Decimal(response.json()["estimated_cost"]) == Decimal("42")


def test_a_subject_makes_even_a_short_text_an_lms(academy, post_send, broker):
    response = post_send(academy.student_ids[:1], body="짧은 안내", subject="공지")

    assert response.status_code == 202, response.json()
    [message] = messages_of(response)
    assert (message.message_type, message.subject, message.price) == (MessageType.LMS, "공지", Decimal("29"))


def test_alimtalk_sends_the_approved_template_rendered_for_each_student(academy, post_send, broker):
    response = post_send(academy.student_ids, message_mode="alimtalk", template_id=TEMPLATE_ID, body="")

    assert response.status_code == 202, response.json()
    assert Decimal(response.json()["estimated_cost"]) == 3 * Decimal("9")
    by_student = {m.student_id: m for m in messages_of(response)}
    for student in academy.students:
        message = by_student[student.id]
        assert message.text == f"{student.name} 학생이 학원에 도착했습니다."
        assert (message.message_type, message.fallback_type, message.price) == (MessageType.ATA, "", Decimal("9"))
    assert SendRequest.objects.get().template.solapi_template_id == TEMPLATE_ID


def test_alimtalk_replacements_fill_the_template_variables(academy, post_send, broker):
    make_template(academy.tenant, template_id="TPL_CLASS", content="#{이름} 학생의 #{반} 수업이 #{시간}에 시작합니다.")

    response = post_send(academy.student_ids[:1], message_mode="alimtalk", template_id="TPL_CLASS",
                         alimtalk_replacements={"반": "수학A", "시간": "오후 4시"})

    assert response.status_code == 202, response.json()
    [message] = messages_of(response)
    name = academy.students[0].name
    assert message.text == f"{name} 학생의 수학A 수업이 오후 4시에 시작합니다."
    # The shared values are stored once, on the send request; the message keeps its own.
    assert message.variables == {"이름": name}
    assert SendRequest.objects.get().alimtalk_replacements == {"반": "수학A", "시간": "오후 4시"}


def test_both_mode_holds_the_dearer_of_alimtalk_and_its_text_fallback(academy, post_send, broker):
    long_template = "#{이름} 학생 안내: " + "내용" * 50  # over 90 bytes: the fallback is an LMS
    make_template(academy.tenant, template_id="TPL_LONG", content=long_template)

    short = post_send(academy.student_ids[:1], message_mode="both", template_id=TEMPLATE_ID)
    long = post_send(academy.student_ids[:1], message_mode="both", template_id="TPL_LONG")

    assert (short.status_code, long.status_code) == (202, 202), (short.json(), long.json())
    [short_message], [long_message] = messages_of(short), messages_of(long)
    assert (short_message.message_type, short_message.fallback_type, short_message.price) == (
        MessageType.ATA, MessageType.SMS, Decimal("13"))
    assert (long_message.message_type, long_message.fallback_type, long_message.price) == (
        MessageType.ATA, MessageType.LMS, Decimal("29"))
    assert Decimal(long.json()["estimated_cost"]) == Decimal("29")


@pytest.mark.parametrize("recipients", [1, 300])
def test_one_dispatch_task_is_published_per_request_whatever_its_size(academy, post_send, broker, recipients):
    top_up(tenant=academy.tenant, amount=Decimal("10000"))
    students = make_students(academy.tenant, recipients)
    broker.reset_counts()

    with CaptureQueriesContext(connection) as queries:
        response = post_send([s.id for s in students])

    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == recipients
    counts = broker.request_counts()
    assert counts["SendMessage"] == 1, counts
    assert counts["SendMessageBatch"] == 0, counts
    assert Message.objects.filter(send_request_id=response.json()["id"]).count() == recipients
    # Rows go in as one COPY (PostgreSQL) or bulk inserts (SQLite caps a statement at 999 parameters,
    # so a few), never one per row.
    message_inserts = [q for q in queries.captured_queries
                       if q["sql"].startswith(('INSERT INTO "messaging_message"', 'COPY "messaging_message"'))]
    assert 1 <= len(message_inserts) <= 10, len(message_inserts)
    # Large sends go to the bulk queue, so they do not hold up small ones.
    expected_queue = INTERACTIVE_QUEUE if recipients == 1 else BULK_QUEUE
    assert SendRequest.objects.get(id=response.json()["id"]).queue == expected_queue


def test_a_failure_while_writing_the_messages_leaves_no_request_and_publishes_nothing(
    academy, post_send, broker, monkeypatch
):
    def disk_full(*args, **kwargs):
        raise DatabaseError("disk full")

    # The rows' writer on either database: COPY on PostgreSQL, bulk_create on SQLite.
    monkeypatch.setattr(message_rows, "_copy", disk_full)
    monkeypatch.setattr(Message.objects, "bulk_create", disk_full)

    with pytest.raises(DatabaseError):
        post_send(academy.student_ids)

    assert SendRequest.objects.count() == 0
    assert broker.request_counts()["SendMessage"] == 0


def test_preview_shows_text_type_bytes_and_price_per_recipient_and_writes_nothing(academy, api, broker):
    student = academy.students[0]
    [no_phone] = make_students(academy.tenant, 1, parent_phone="")

    response = api.post(PREVIEW_URL, send_body([student.id, no_phone.id], body="#{이름} 학생 안내"), format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    first, second = body["recipients"]
    text = f"{student.name} 학생 안내"
    assert first == {"student_id": student.id, "recipient": "parent", "phone": student.parent_phone, "text": text,
                     "type": "SMS", "fallback_type": "", "bytes": len(text.encode("euc_kr")),
                     "price": first["price"], "skip_reason": "", "not_before": None}
    assert Decimal(first["price"]) == Decimal("13")
    assert (second["student_id"], second["skip_reason"]) == (no_phone.id, "no_phone")
    assert (body["sendable"], body["skipped"]) == (1, 1)
    assert Decimal(body["total_cost"]) == Decimal("13")
    assert Decimal(body["available"]) == Decimal("10000")
    assert body["sufficient_credit"] is True
    assert SendRequest.objects.count() == Message.objects.count() == 0
    assert broker.request_counts()["SendMessage"] == 0


def test_preview_reports_insufficient_credit_instead_of_refusing(academy, api):
    students = make_students(academy.tenant, 800)  # 800 × 13 KRW > 10,000 KRW

    response = api.post(PREVIEW_URL, send_body([s.id for s in students], body="안내"), format="json")

    assert response.status_code == 200, response.json()
    assert Decimal(response.json()["total_cost"]) == Decimal("10400")
    assert response.json()["sufficient_credit"] is False
    assert SendRequest.objects.count() == 0


def test_the_progress_shows_counts_and_each_messages_status_failure_class_and_reason(academy, api, post_send, broker):
    [no_phone] = make_students(academy.tenant, 1, parent_phone="")
    sent = post_send([*academy.student_ids, no_phone.id]).json()
    failed = Message.objects.filter(send_request_id=sent["id"], status=MessageStatus.PENDING).first()
    Message.objects.filter(id=failed.id).update(
        status=MessageStatus.FAILED, failure_class=FailureClass.RECIPIENT_INVALID, failure_reason="없는 번호입니다")

    response = api.get(sent["status_url"])

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == sent["id"]
    assert body["dispatched"] is True
    assert {k: v for k, v in body["counts"].items() if v} == {"pending": 2, "failed": 1, "skipped": 1, "total": 4}
    assert body["total_messages"] == 4
    by_id = {m["id"]: m for m in body["messages"]}
    assert (by_id[failed.id]["status"], by_id[failed.id]["failure_class"], by_id[failed.id]["failure_reason"]) == (
        "failed", FailureClass.RECIPIENT_INVALID, "없는 번호입니다")
    skipped = [m for m in body["messages"] if m["status"] == "skipped"]
    assert [(m["student_id"], m["skip_reason"]) for m in skipped] == [(no_phone.id, "no_phone")]


def test_the_progress_pages_through_messages(academy, api, post_send, broker):
    students = make_students(academy.tenant, 5)
    sent = post_send([s.id for s in students]).json()

    page_two = api.get(sent["status_url"], {"page": 2, "page_size": 2}).json()

    ids = list(Message.objects.filter(send_request_id=sent["id"]).order_by("id").values_list("id", flat=True))
    assert [m["id"] for m in page_two["messages"]] == ids[2:4]
    assert (page_two["page"], page_two["page_size"], page_two["total_messages"]) == (2, 2, 5)


@pytest.mark.parametrize("page", [10**20, 2**62])
def test_a_page_far_past_the_end_is_empty_not_an_error(academy, api, post_send, broker, page):
    # (page - 1) × page_size beyond a bigint made the database refuse the OFFSET.
    sent = post_send(academy.student_ids).json()

    response = api.get(sent["status_url"], {"page": page})

    assert response.status_code == 200
    assert response.json()["messages"] == []
    assert response.json()["total_messages"] == 3


def test_credits_show_balance_held_and_the_recent_ledger(academy, api):
    top_up(tenant=academy.tenant, amount=Decimal("500"), memo="추가 충전")

    response = api.get("/api/v1/credits")

    assert response.status_code == 200
    body = response.json()
    assert (Decimal(body["balance"]), Decimal(body["held"]), Decimal(body["available"])) == (
        Decimal("10500"), Decimal("0"), Decimal("10500"))
    assert [(e["kind"], Decimal(e["balance_delta"]), e["memo"]) for e in body["ledger"]] == [
        ("top_up", Decimal("500"), "추가 충전"), ("top_up", Decimal("10000"), "initial credit")]
