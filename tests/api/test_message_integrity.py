"""What the database no longer checks for `messaging_message`, the code guarantees (issue 17).

A send writes up to 10,000 message rows in its request. PostgreSQL checks every foreign key
of every row at commit, one row at a time, so the keys whose target the code path guarantees
have no database constraint (messaging/models.py, Message): `tenant`, `send_request`,
`chunk` and `retry_of` hold because those rows are written only next to their targets, in the
same transaction, and their targets are never deleted. The same holds for a credit `Hold`'s
`account` (billing/models.py). Staff may delete a student: `student` holds because a send and
a deletion lock the student's row (messaging/student_guard.py), raced here on PostgreSQL.
These tests keep both halves true.
"""

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import connection, connections, transaction
from django.db.models import ProtectedError
from django.test import RequestFactory, override_settings

from billing.models import CreditAccount, Hold, LedgerEntry
from harness.academies import make_academy
from harness.waiting import DEFAULT_TIMEOUT, wait_until
from messaging.compose import send_requests
from messaging.compose.resend import retry_failed_messages
from messaging.failures import FailureClass
from messaging.models import Chunk, Message, MessageStatus, SendRequest
from messaging.operations import retention
from messaging.pipeline import delivery
from tenants.models import Student
from tests.api.conftest import client_for, send_body

pytestmark = pytest.mark.django_db

UNCHECKED = {"tenant_id", "send_request_id", "chunk_id", "retry_of_id", "student_id"}


def _dangling() -> dict[str, int]:
    """Messages whose unchecked keys name a row that does not exist (or, for the tenant,
    not their send request's)."""
    return {
        "send_request": Message.objects.exclude(send_request_id__in=SendRequest.objects.values("id")).count(),
        "tenant": sum(1 for m in Message.objects.select_related("send_request")
                      if m.tenant_id != m.send_request.tenant_id),
        "chunk": Message.objects.filter(chunk_id__isnull=False)
                                .exclude(chunk_id__in=Chunk.objects.values("id")).count(),
        "retry_of": Message.objects.filter(retry_of_id__isnull=False)
                                   .exclude(retry_of_id__in=Message.objects.values("id")).count(),
        "student": Message.objects.filter(student_id__isnull=False)
                                  .exclude(student_id__in=Student.objects.values("id")).count(),
    }


def _constraints(model) -> dict:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, model._meta.db_table)


def test_no_key_of_a_message_is_checked_by_the_database():
    assert {Message._meta.get_field(name[:-3]).column for name in UNCHECKED} == {
        f.column for f in Message._meta.concrete_fields if f.is_relation}
    assert not [c for c in _constraints(Message).values() if c["foreign_key"]]
    assert not [c for c in _constraints(Hold).values() if c["foreign_key"]]


def test_the_rows_a_send_writes_go_into_the_indexes_queries_need():
    """Every index of the message table is one docs/capacity.md justifies; none is on one column
    that a two-column index starts with."""
    indexed = sorted(tuple(c["columns"]) for c in _constraints(Message).values()
                     if (c["index"] or c["unique"]) and not c["primary_key"])
    assert indexed == [("chunk_id", "status"), ("retry_of_id",), ("send_request_id", "status"),
                       ("solapi_message_id",), ("status", "accepted_at"), ("student_id",)]
    assert ["account_id"] not in [c["columns"] for c in _constraints(Hold).values() if c["index"]]


def test_a_send_its_chunks_and_a_retry_point_at_rows_that_exist(broker):
    academy = make_academy(students=25)
    sent = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids), format="json")
    assert sent.status_code == 202, sent.json()
    request_id = sent.json()["id"]
    with override_settings(MESSAGING_CHUNK_SIZE=10):
        chunk_ids = delivery.split_into_chunks(request_id)
    assert len(chunk_ids) == 3
    failed = Message.objects.filter(send_request_id=request_id).first()
    Message.objects.filter(id=failed.id).update(status=MessageStatus.FAILED, failure_class=FailureClass.TRANSIENT)

    (retry,) = retry_failed_messages([failed.id])

    assert Message.objects.get(send_request=retry).retry_of_id == failed.id
    assert Message.objects.filter(send_request_id=request_id, chunk_id__in=chunk_ids).count() == 25
    # Every hold is a message's (billing keeps a plain message id: billing sits below messaging)
    # and its account's, which the movement's ledger entry (a checked key) names too.
    holds = Hold.objects.filter(message_id__in=Message.objects.filter(send_request_id=request_id).values("id"))
    assert holds.count() == 25
    assert not Hold.objects.exclude(message_id__in=Message.objects.values("id")).exists()
    assert not Hold.objects.exclude(account_id__in=CreditAccount.objects.values("id")).exists()
    assert set(holds.values_list("account_id", flat=True)) == set(
        LedgerEntry.objects.filter(kind="hold", message_count=25).values_list("account_id", flat=True))
    assert _dangling() == {"send_request": 0, "tenant": 0, "chunk": 0, "retry_of": 0, "student": 0}


def test_a_message_cannot_be_retried_twice_without_the_constraint(broker):
    """The unique index on retry_of stays: it, not a foreign key, refuses a second retry."""
    academy = make_academy(students=1)
    sent = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids), format="json")
    failed = Message.objects.get(send_request_id=sent.json()["id"])
    Message.objects.filter(id=failed.id).update(status=MessageStatus.FAILED, failure_class=FailureClass.TRANSIENT)
    assert len(retry_failed_messages([failed.id])) == 1
    assert retry_failed_messages([failed.id]) == []
    assert Message.objects.filter(retry_of=failed).count() == 1


def test_what_the_unchecked_keys_point_at_is_never_deleted():
    """Send requests, chunks, messages and credit accounts: no admin may delete them and
    retention prunes none."""
    request = RequestFactory().get("/")
    request.user = type("Superuser", (), {"is_active": True, "is_staff": True, "is_superuser": True,
                                          "has_perm": lambda self, perm, obj=None: True})()
    targets = {SendRequest, Chunk, Message, CreditAccount}
    for model in targets:
        assert not admin.site._registry[model].has_delete_permission(request), model
    assert not {rule.model for rule in retention.RULES} & targets


def test_an_academy_with_messages_still_cannot_be_deleted(broker):
    """Message.tenant does nothing on delete: the send requests protect the academy."""
    academy = make_academy(students=2, credit=Decimal("1000"))
    client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids), format="json")
    with pytest.raises(ProtectedError):
        academy.tenant.delete()
    assert Message.objects.filter(tenant=academy.tenant).count() == 2


def test_deleting_a_student_keeps_their_messages_without_them(broker):
    """A deleted student's messages stay, with no student."""
    academy = make_academy(students=2)
    sent = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids), format="json")
    academy.students[0].delete()
    rows = Message.objects.filter(send_request_id=sent.json()["id"])
    assert sorted(rows.values_list("student_id", flat=True), key=lambda v: v or 0) == [None, academy.student_ids[1]]


def test_a_send_whose_student_was_deleted_after_it_read_them_is_refused_whole(broker, monkeypatch):
    """The student is deleted between the send's reading (planning) and its writing: the send's
    lock finds them missing, and nothing is written or held."""
    academy = make_academy(students=3, credit=Decimal("1000"))
    gone = academy.students[1]
    gone_id = gone.id  # delete() clears it
    plan_send = send_requests.plan_send

    def plan_then_delete(**kwargs):
        plan = plan_send(**kwargs)
        gone.delete()
        return plan

    monkeypatch.setattr(send_requests, "plan_send", plan_then_delete)
    answer = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids), format="json")

    assert answer.status_code == 404, answer.json()
    assert answer.json()["code"] == "student_not_found"
    assert answer.json()["student_ids"] == [gone_id]
    assert (SendRequest.objects.count(), Message.objects.count(), Hold.objects.count()) == (0, 0, 0)
    assert CreditAccount.objects.get(tenant=academy.tenant).held == 0


def _thread(work: Callable[[], object]) -> threading.Thread:
    """A thread that runs `work` on its own database connection, closed at its end (the test
    database is dropped after the test)."""

    def run() -> None:
        try:
            work()
        finally:
            connections.close_all()

    return threading.Thread(target=run)


def _someone_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        # Inside a transaction the statistics views keep their first reading: read afresh.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_deletion_waits_for_the_send_that_holds_its_student_then_clears_its_messages(broker, monkeypatch):
    academy = make_academy(students=2, credit=Decimal("1000"))
    deleted = academy.students[0]
    deleted_id = deleted.id  # delete() clears it
    deletion = _thread(deleted.delete)
    lock = send_requests.lock_students_for_messages

    def lock_then_race_a_deletion(student_ids):
        lock(student_ids)
        deletion.start()
        wait_until(_someone_waits_for_a_row_lock, what="the deletion to wait for the send's lock")

    monkeypatch.setattr(send_requests, "lock_students_for_messages", lock_then_race_a_deletion)
    answer = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids), format="json")
    deletion.join(timeout=DEFAULT_TIMEOUT)

    assert answer.status_code == 202, answer.json()
    assert not Student.objects.filter(id=deleted_id).exists()
    rows = Message.objects.filter(send_request_id=answer.json()["id"])
    assert sorted(rows.values_list("student_id", flat=True), key=lambda v: v or 0) == [None, academy.student_ids[1]]
    assert _dangling()["student"] == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_send_waits_for_the_deletion_that_holds_its_student_then_is_refused(broker):
    academy = make_academy(students=2, credit=Decimal("1000"))
    student_ids = academy.student_ids  # read from the students, which delete() clears
    deleted, commit = threading.Event(), threading.Event()

    def delete_and_hold():
        with transaction.atomic():
            academy.students[0].delete()
            deleted.set()
            commit.wait(timeout=DEFAULT_TIMEOUT)

    deletion = _thread(delete_and_hold)
    deletion.start()
    deleted.wait(timeout=DEFAULT_TIMEOUT)
    answers = []
    send = _thread(lambda: answers.append(client_for(academy.user).post(
        "/api/v1/messages/send", send_body(student_ids), format="json")))
    send.start()
    wait_until(_someone_waits_for_a_row_lock, what="the send to wait for the deletion's lock")
    commit.set()
    deletion.join(timeout=DEFAULT_TIMEOUT)
    send.join(timeout=DEFAULT_TIMEOUT)

    [answer] = answers
    assert answer.status_code == 404, answer.json()
    assert answer.json()["code"] == "student_not_found"
    assert (Message.objects.count(), Hold.objects.count()) == (0, 0)
    assert CreditAccount.objects.get(tenant=academy.tenant).held == 0
