"""The reserve step and staff retries check each recipient again (messaging/compose/
recipient_checks.py): the steps run here in the test process, with the project clock frozen, so
the night window can be reached at will. The whole path with a real worker is in
tests/pipeline/test_consent_at_send_time.py."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.ledger import account_for, movements_for_message, release_holds
from billing.models import EntryKind
from harness.academies import make_academy
from messaging.compose import suppression
from messaging.compose.resend import retry_failed_messages
from messaging.compose.send_requests import SendInput, send_request_create
from messaging.failures import FailureClass
from messaging.models import (
    Chunk,
    ChunkStatus,
    Message,
    MessageStatus,
    SendRequest,
    SkipReason,
    SuppressionReason,
)
from messaging.pipeline import delivery, outbox
from project import clock as project_clock
from tenants.models import RecipientKind
from tenants.services import consent_record

pytestmark = [pytest.mark.django_db, pytest.mark.clock]


def last_8am() -> datetime:
    """The latest 08:00 in Korea by the clock, which dispatch reads for `not_before`."""
    now = project_clock.kst_now()
    morning = now.replace(hour=8, minute=0, second=0, microsecond=0)
    return morning if morning <= now else morning - timedelta(days=1)


@pytest.fixture
def academy():
    return make_academy(students=3, ad_opt_out_number="0801234567")


@pytest.fixture
def at(clock):
    def set_clock(moment: datetime) -> datetime:
        return clock.freeze(moment)
    return set_clock


@pytest.fixture(autouse=True)
def unpublished(monkeypatch):
    """The steps are called by hand here: nothing goes to SQS."""
    monkeypatch.setattr(outbox, "publish_task", lambda send_request: "held back by the test")


def consent(academy, *, night=False):
    for student in academy.students:
        consent_record(student=student, recipient=RecipientKind.PARENT, marketing=True, night=night)


def first_opts_out_second_withdraws(academy) -> None:
    opted_out, withdrawn, _ = academy.students
    suppression.suppress(tenant_id=academy.tenant.id, phone=opted_out.parent_phone,
                         reason=SuppressionReason.OPTED_OUT)
    consent_record(student=withdrawn, recipient=RecipientKind.PARENT, marketing=False, night=False)


def send_ad(academy) -> int:
    data = SendInput(student_ids=academy.student_ids, purpose="ad",
                     body=f"(광고) {academy.tenant.name} 특강 안내\n무료수신거부 080-123-4567")
    return send_request_create(tenant=academy.tenant, user=academy.user, data=data, idempotency_key=None)["id"]


def reserve(send_request_id: int) -> list[Message]:
    for chunk_id in delivery.split_into_chunks(send_request_id):
        delivery.reserve_chunk(chunk_id)
    return list(Message.objects.filter(send_request_id=send_request_id).order_by("id"))


def test_the_reserve_step_skips_whoever_opted_out_or_withdrew_and_releases_their_credit(academy, at):
    at(last_8am() + timedelta(hours=3))
    consent(academy)
    send_request_id = send_ad(academy)
    assert account_for(academy.tenant).held == Decimal("39")
    first_opts_out_second_withdraws(academy)

    messages = reserve(send_request_id)

    assert [(m.shown_status, m.skip_reason) for m in messages] == [
        (MessageStatus.SKIPPED, SkipReason.OPTED_OUT), (MessageStatus.SKIPPED, SkipReason.NO_MARKETING_CONSENT),
        (MessageStatus.HELD, "")]
    assert account_for(academy.tenant).held == Decimal("13")
    assert [e.kind for e in movements_for_message(messages[0].id)] == [EntryKind.HOLD, EntryKind.RELEASE]
    assert [e.kind for e in movements_for_message(messages[2].id)] == [EntryKind.HOLD]  # not held twice


def test_the_reserve_step_reads_suppressions_and_consents_once_per_chunk(academy, at):
    at(last_8am() + timedelta(hours=3))
    consent(academy)
    send_request_id = send_ad(academy)
    (chunk_id,) = delivery.split_into_chunks(send_request_id)

    with CaptureQueriesContext(connection) as queries:
        delivery.reserve_chunk(chunk_id)

    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    assert sum('"messaging_suppressedrecipient"' in sql for sql in reads) == 1
    assert sum('"tenants_marketingconsent"' in sql for sql in reads) == 1


def test_an_ad_that_reaches_the_reserve_step_at_night_waits_for_8am_still_paid_for(academy, at):
    morning = last_8am()
    at(morning - timedelta(hours=12))  # written at 20:00, by day, to day-only consent
    consent(academy)
    send_request_id = send_ad(academy)
    (chunk_id,) = delivery.split_into_chunks(send_request_id)
    at(morning - timedelta(hours=10, minutes=30))  # the chunk reaches its reserve step at 21:30

    delivery.reserve_chunk(chunk_id)

    messages = list(Message.objects.filter(send_request_id=send_request_id))
    assert {(m.status, m.chunk_id, m.not_before) for m in messages} == {(MessageStatus.PENDING, None, morning)}
    assert account_for(academy.tenant).held == Decimal("39")  # still held: the 202 was paid for
    assert Chunk.objects.get(id=chunk_id).status == ChunkStatus.HELD
    assert delivery.send_chunk(delivery.Lease(chunk_id, task_id="t")).accepted == 0  # nothing left to call Solapi for

    at(morning)  # 08:00: dispatch takes them again, and they may go now
    messages = reserve(send_request_id)
    assert {m.shown_status for m in messages} == {MessageStatus.HELD}
    assert all([e.kind for e in movements_for_message(m.id)] == [EntryKind.HOLD] for m in messages)


def test_informational_messages_are_not_held_back_at_night_but_opt_outs_still_count(academy, at):
    at(last_8am() - timedelta(hours=10))  # 22:00
    data = SendInput(student_ids=academy.student_ids, purpose="info", body="내일 휴원입니다.")
    send_request_id = send_request_create(tenant=academy.tenant, user=academy.user, data=data,
                                          idempotency_key=None)["id"]
    suppression.suppress(tenant_id=academy.tenant.id, phone=academy.students[0].parent_phone,
                         reason=SuppressionReason.OPTED_OUT)

    messages = reserve(send_request_id)

    assert [m.shown_status for m in messages] == [MessageStatus.SKIPPED, MessageStatus.HELD, MessageStatus.HELD]


# --- staff retries ---------------------------------------------------------------------


def failed_ad(academy) -> list[Message]:
    """An ad whose messages all failed for a reason that may pass (its credit given back)."""
    send_request_id = send_ad(academy)
    messages = list(Message.objects.filter(send_request_id=send_request_id).order_by("id"))
    Message.objects.filter(id__in=[m.id for m in messages]).update(
        status=MessageStatus.FAILED, failure_class=FailureClass.TRANSIENT)
    release_holds(message_ids=[m.id for m in messages])
    return messages


def retried(messages: list[Message]) -> list[Message]:
    (retry,) = retry_failed_messages([m.id for m in messages])
    return list(retry.messages.order_by("retry_of_id"))


def test_a_retry_skips_whoever_opted_out_or_withdrew_since(academy, at):
    at(last_8am() + timedelta(hours=3))
    consent(academy)
    originals = failed_ad(academy)
    first_opts_out_second_withdraws(academy)

    retries = retried(originals)

    assert [(m.status, m.skip_reason) for m in retries] == [
        (MessageStatus.SKIPPED, SkipReason.OPTED_OUT), (MessageStatus.SKIPPED, SkipReason.NO_MARKETING_CONSENT),
        (MessageStatus.PENDING, "")]
    assert SendRequest.objects.get(id=retries[0].send_request_id).counts["skipped"] == 2


def test_a_retry_at_night_of_an_ad_waits_for_8am(academy, at):
    morning = last_8am()
    at(morning - timedelta(hours=12))
    consent(academy)
    originals = failed_ad(academy)
    at(morning - timedelta(hours=1))  # 07:00: staff retry before the night window ends

    retries = retried(originals)

    assert {(m.status, m.not_before) for m in retries} == {(MessageStatus.PENDING, morning)}


def test_an_opt_out_after_the_retry_is_caught_by_the_reserve_step(academy, at):
    at(last_8am() + timedelta(hours=3))
    consent(academy)
    originals = failed_ad(academy)
    retries = retried(originals)
    suppression.suppress(tenant_id=academy.tenant.id, phone=academy.students[0].parent_phone,
                         reason=SuppressionReason.OPTED_OUT)

    messages = reserve(retries[0].send_request_id)

    assert [m.shown_status for m in messages] == [MessageStatus.SKIPPED, MessageStatus.HELD, MessageStatus.HELD]
    # A retry is held by its reserve step (none at its creation): the skipped one never was.
    assert movements_for_message(messages[0].id) == []
    assert account_for(academy.tenant).held == Decimal("26")
