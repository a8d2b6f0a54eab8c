"""A send's message rows go in with one COPY on PostgreSQL and through the ORM on SQLite
(messaging/compose/message_rows.py). The COPY path must write exactly what the ORM path
writes: every column, every price, and the same answer (accepted, skipped, cost) and holds."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.ledger import holds_for
from harness.academies import make_academy, make_students
from messaging.compose import message_rows, suppression
from messaging.compose.planning import PlannedMessage
from messaging.models import Message, MessageStatus, SendRequest, SkipReason, SuppressionReason
from messaging.pipeline.queues import BULK_QUEUE
from project import clock
from tests.api.conftest import assert_refusal, client_for, send_body

pytestmark = pytest.mark.django_db
# Compared column by column; ids, the request, its chunks and the write time differ between two
# writes by nature (the chunk is compared by its index in the request).
OWN_COLUMNS = [f.attname for f in Message._meta.concrete_fields
               if f.attname not in ("id", "send_request_id", "chunk_id", "created", "updated")]
# What COPY's text format must escape, in every text column and in the JSON.
AWKWARD = "탭\t줄\n역슬래시\\ \\N 'quote' \"double\" 널 아님 😀"


def _rows(send_request_id: int) -> list[dict]:
    return list(Message.objects.filter(send_request_id=send_request_id).order_by("id")
                .values(*OWN_COLUMNS, "chunk__index"))


def _new_request(academy) -> SendRequest:
    return SendRequest.objects.create(tenant=academy.tenant, mode="sms", send_to="parent", body="x", fingerprint="f",
                                      queue=BULK_QUEUE, estimated_cost=0)


def _orm_path(monkeypatch) -> None:
    monkeypatch.setattr(message_rows, "copies", lambda: False)


def _planned(academy) -> list[PlannedMessage]:
    """Every kind of row a send or a staff resend writes, with the values COPY must escape."""
    first, second = academy.students[:2]
    return [
        PlannedMessage(student_id=first.id, recipient_kind="parent", phone="01012345678", text=AWKWARD,
                       subject="제목\t\\", variables={"이름": AWKWARD, "반": "A\\B"}, message_type="LMS",
                       price=Decimal("29.50")),
        PlannedMessage(student_id=first.id, recipient_kind="student", phone="01012345679", text="알림톡 본문",
                       variables={"이름": first.name}, message_type="ATA", fallback_type="SMS", price=Decimal("13")),
        PlannedMessage(student_id=second.id, recipient_kind="parent", phone="", skip_reason=SkipReason.NO_PHONE),
        PlannedMessage(student_id=second.id, recipient_kind="student", phone="01012345670", text="밤 광고",
                       variables={}, message_type="SMS", price=Decimal("13"),
                       not_before=clock.now() + timedelta(hours=9)),
        PlannedMessage(student_id=None, recipient_kind="parent", phone="01012345671", text="재시도",
                       variables={"이름": "똠"}, message_type="SMS", price=Decimal("13"),
                       skip_reason=SkipReason.UNSUPPORTED_CHARACTERS_IN_NAME),
    ]


@pytest.mark.postgres
def test_copy_writes_every_column_as_the_orm_does(monkeypatch):
    academy = make_academy(students=2)
    planned = _planned(academy)
    by_copy, by_orm = _new_request(academy), _new_request(academy)

    copied_ids = message_rows.write_messages(by_copy, planned)
    _orm_path(monkeypatch)
    orm_ids = message_rows.write_messages(by_orm, planned)

    assert _rows(by_copy.id) == _rows(by_orm.id)
    assert _rows(by_copy.id)[0]["text"] == AWKWARD and _rows(by_copy.id)[0]["variables"]["이름"] == AWKWARD
    # The ids come back in the order of the plan, on both paths.
    for ids in (copied_ids, orm_ids):
        assert [Message.objects.get(id=i).phone for i in ids] == [m.phone for m in planned]
    copied = Message.objects.filter(send_request=by_copy)
    assert {m.status for m in copied} == {MessageStatus.PENDING, MessageStatus.SKIPPED}
    # created/updated come from the project clock, as auto_now(_add) would set them.
    assert all(m.created == m.updated and abs(m.created - clock.now()) < timedelta(minutes=1) for m in copied)


@pytest.mark.postgres
def test_copy_is_one_statement_where_the_orm_path_is_an_insert_per_thousand_rows(monkeypatch):
    academy = make_academy(students=2)
    planned = _planned(academy) * 400  # 2,000 rows
    by_copy, by_orm = _new_request(academy), _new_request(academy)

    with CaptureQueriesContext(connection) as copied:
        message_rows.write_messages(by_copy, planned)
    _orm_path(monkeypatch)
    with CaptureQueriesContext(connection) as inserted:
        message_rows.write_messages(by_orm, planned)

    # The broadcast's chunks in one INSERT, the COPY, then the new ids read back in order.
    assert [q["sql"].split()[0] for q in copied.captured_queries] == ["INSERT", "COPY", "SELECT"]
    assert [q["sql"].split()[0] for q in inserted.captured_queries] == ["INSERT", "INSERT", "INSERT"]


@pytest.mark.postgres
def test_a_send_by_copy_answers_holds_and_writes_exactly_as_by_the_orm(broker, monkeypatch):
    academy = make_academy(students=150, credit="100000")
    api = client_for(academy.user)
    first = academy.students[0]
    odd = make_students(academy.tenant, 1, name="똠방각하")  # a name SMS cannot carry: skipped by name
    no_phone = make_students(academy.tenant, 1, parent_phone="")
    siblings = make_students(academy.tenant, 2, parent_phone=first.parent_phone, name=first.name)  # duplicates
    suppression.suppress(tenant_id=academy.tenant.id, phone=academy.students[7].parent_phone,
                         reason=SuppressionReason.OPTED_OUT)
    ids = [s.id for s in (*academy.students, *odd, *no_phone, *siblings)]
    body = send_body(ids, body="#{이름} 학부모님, 내일은 #{반} 보강입니다.", alimtalk_replacements={"반": "3반"})

    by_copy = api.post("/api/v1/messages/send", body, format="json").json()
    _orm_path(monkeypatch)
    by_orm = api.post("/api/v1/messages/send", body, format="json").json()

    # The answer about the send itself (what is queued ahead differs: the first send is ahead of the second).
    about_the_send = ("accepted", "estimated_cost", "skipped", "deferred", "deferred_until", "dispatched")
    assert {k: by_copy[k] for k in about_the_send} == {k: by_orm[k] for k in about_the_send}
    assert by_copy["accepted"] == 149
    assert sorted(s["reason"] for s in by_copy["skipped"]) == sorted([
        SkipReason.UNSUPPORTED_CHARACTERS_IN_NAME, SkipReason.NO_PHONE, SkipReason.DUPLICATE_PHONE,
        SkipReason.DUPLICATE_PHONE, SkipReason.OPTED_OUT])
    copied, written = _rows(by_copy["id"]), _rows(by_orm["id"])
    assert copied == written
    assert sum(r["price"] for r in copied if r["status"] == MessageStatus.PENDING) == \
        Decimal(by_copy["estimated_cost"])
    # The credit of every message that will go is held, keyed by its id, at its price.
    for send_request_id in (by_copy["id"], by_orm["id"]):
        pending = Message.objects.filter(send_request_id=send_request_id, status=MessageStatus.PENDING)
        holds = holds_for(pending.values_list("id", flat=True))
        assert {i: h.amount for i, h in holds.items()} == dict(pending.values_list("id", "price"))


def test_a_long_list_finds_suppressed_numbers_and_missing_students(broker):
    """Lists of 100 and more go to PostgreSQL as one array (project/sql.py); the same answers as a short list."""
    academy = make_academy(students=120)
    api = client_for(academy.user)
    opted_out = academy.students[110]
    suppression.suppress(tenant_id=academy.tenant.id, phone=opted_out.parent_phone,
                         reason=SuppressionReason.OPTED_OUT)

    sent = api.post("/api/v1/messages/send", send_body(academy.student_ids), format="json")

    assert sent.status_code == 202, sent.json()
    assert (sent.json()["accepted"], sent.json()["skipped"]) == (
        119, [{"student_id": opted_out.id, "recipient": "parent", "reason": SkipReason.OPTED_OUT}])
    other = make_academy(students=1)
    refused = api.post("/api/v1/messages/send", send_body([*academy.student_ids, other.student_ids[0]]),
                       format="json")
    body = assert_refusal(refused, 404, "student_not_found")
    assert body["student_ids"] == [other.student_ids[0]]
