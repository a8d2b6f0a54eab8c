"""Retention (messaging/operations/retention.py): old rows that no step needs are deleted in
bounded batches; rows a step still reads are kept whatever their age; a second run deletes
nothing; the beat task runs in a real worker and stores no result."""

import uuid
from datetime import timedelta

import pytest
from django_celery_results.models import TaskResult

from billing import ledger
from billing.models import HoldStatus
from celeryconfig import beat_schedule
from harness.academies import make_academy
from harness.waiting import wait_until
from messaging.failures import FailureClass
from messaging.models import (
    Chunk,
    ChunkStatus,
    DeliveryAttempt,
    DeliveryReport,
    Message,
    MessageOutcome,
    MessageStatus,
    OutcomeEvent,
    ReceivedReportBatch,
    SolapiOperation,
)
from messaging.operations import retention
from messaging.operations.tasks import prune_old_records
from messaging.pipeline import delivery, settlement
from tests.pipeline.conftest import send

# Past every default age (365, 90, 90 and 7 days).
OLD = timedelta(days=400)


def _chunk(academy, *, status: str, outcomes: dict[str, str]) -> tuple[Chunk, list[Message]]:
    """A send request of the academy's students put into one chunk of `status`, its messages
    moved to the given statuses (in order) and settled as the pipeline would."""
    send_request = send(academy, publish=False)
    (chunk_id,) = delivery.split_into_chunks(send_request.id)
    messages = list(Message.objects.filter(chunk_id=chunk_id).order_by("id"))
    for message, message_status in zip(messages, outcomes.values(), strict=True):
        message.status = message_status
        message.accepted_at = (message.created if message_status in (MessageStatus.ACCEPTED, MessageStatus.DELIVERED)
                               else None)
        if message_status == MessageStatus.FAILED:
            message.failure_class = FailureClass.INTERNAL
        message.save()
    Chunk.objects.filter(id=chunk_id).update(status=status)
    return Chunk.objects.get(id=chunk_id), dict(zip(outcomes, messages, strict=True))


def _attempt(chunk: Chunk) -> DeliveryAttempt:
    return DeliveryAttempt.objects.create(chunk=chunk, operation=SolapiOperation.SEND_GROUP, http_status=200)


def _report(message: Message | None) -> DeliveryReport:
    return DeliveryReport.objects.create(event_data_id=uuid.uuid4().hex, message=message, status_code="4000",
                                         payload={})


def _report_batch(clock, *, applied: bool) -> ReceivedReportBatch:
    return ReceivedReportBatch.objects.create(body="[]", reports=0, applied=clock.now() if applied else None)


def _task_result(clock, age: timedelta = timedelta(0)) -> TaskResult:
    row = TaskResult.objects.create(task_id=uuid.uuid4().hex, status="SUCCESS")
    # django-celery-results stamps date_done with the real time (auto_now): set it from the project clock.
    TaskResult.objects.filter(id=row.id).update(date_done=clock.now() - age)
    return row


@pytest.fixture
def world(db, clock):
    """Rows written 400 days ago, some of them still needed, then today's rows."""
    academy = make_academy(students=3, credit="100000")
    moment = clock.freeze(clock.now() - OLD)
    done, done_messages = _chunk(academy, status=ChunkStatus.FINALIZED, outcomes={
        "delivered": MessageStatus.DELIVERED, "accepted": MessageStatus.ACCEPTED,
        "delivered_hold_open": MessageStatus.DELIVERED})
    settlement.settle([done_messages["delivered"], done_messages["accepted"]])
    # As if the process died between the status change and the credit move: settle_open_holds
    # will settle it, and write its outcome rows then.
    stuck = done_messages["delivered_hold_open"]
    MessageOutcome.objects.create(tenant=academy.tenant, message=stuck, event=OutcomeEvent.ACCEPTED, success=True,
                                  recipient_summary="010-****-0000")
    open_chunk, open_messages = _chunk(academy, status=ChunkStatus.SENDING, outcomes={
        "failed": MessageStatus.FAILED, "sending": MessageStatus.SENDING, "sending2": MessageStatus.SENDING})
    settlement.settle([open_messages["failed"]])
    old = {
        "attempt_finalized": _attempt(done), "attempt_open_chunk": _attempt(open_chunk),
        "report_final": _report(done_messages["delivered"]), "report_accepted": _report(done_messages["accepted"]),
        "report_unmatched": _report(None), "task_result": _task_result(clock),
        "batch_applied": _report_batch(clock, applied=True), "batch_waiting": _report_batch(clock, applied=False),
    }
    clock.freeze(moment + OLD)
    recent_chunk, recent_messages = _chunk(academy, status=ChunkStatus.FINALIZED, outcomes={
        "delivered": MessageStatus.DELIVERED, "delivered2": MessageStatus.DELIVERED,
        "delivered3": MessageStatus.DELIVERED})
    settlement.settle(list(recent_messages.values()))
    recent = {"attempt": _attempt(recent_chunk), "report": _report(recent_messages["delivered"]),
              "task_result": _task_result(clock, timedelta(days=6)), "batch": _report_batch(clock, applied=True)}
    return {"done": done_messages, "open": open_messages, "recent": recent_messages, "old": old,
            "recent_rows": recent}


def _outcomes() -> set[tuple[int, str]]:
    return set(MessageOutcome.objects.values_list("message_id", "event"))


def _ids(model) -> set[int]:
    return set(model.objects.values_list("id", flat=True))


def test_old_rows_no_step_needs_are_pruned_and_the_rest_kept(world):
    done, open_, recent, old = world["done"], world["open"], world["recent"], world["old"]
    kept_reports = {old["report_accepted"].id, world["recent_rows"]["report"].id}

    summary = retention.prune_old_records()

    # Old outcome rows of final, finalized, settled messages go; the rest stay.
    assert _outcomes() == {
        (done["accepted"].id, "accepted"),  # not final: its delivered outcome is still to come
        (done["delivered_hold_open"].id, "accepted"),  # its credit has not moved yet
        (open_["failed"].id, "failed"),  # its chunk is not finalized: finalize writes it again
        *{(m.id, e) for m in recent.values() for e in ("accepted", "delivered")},  # young
    }
    # The open chunk's attempt decides whether its group may have gone out.
    assert _ids(DeliveryAttempt) == {old["attempt_open_chunk"].id, world["recent_rows"]["attempt"].id}
    assert _ids(DeliveryReport) == kept_reports
    assert _ids(TaskResult) == {world["recent_rows"]["task_result"].id}
    # A webhook batch still waiting holds the only copy of its reports.
    assert _ids(ReceivedReportBatch) == {old["batch_waiting"].id, world["recent_rows"]["batch"].id}
    assert summary.deleted == 2 + 1 + 2 + 1 + 1 and summary.finished
    # Nothing the pipeline reads changed: the open chunk still counts as possibly sent, and the
    # stuck message's hold is still there to be settled.
    assert Chunk.objects.get(id=open_["sending"].chunk_id).may_have_been_sent()
    assert ledger.holds_for([done["delivered_hold_open"].id])[done["delivered_hold_open"].id].status == HoldStatus.HELD


def test_a_second_run_deletes_nothing(world):
    retention.prune_old_records()
    before = (_outcomes(), _ids(DeliveryAttempt), _ids(DeliveryReport), _ids(TaskResult))

    again = retention.prune_old_records()

    assert again.deleted == 0
    assert (_outcomes(), _ids(DeliveryAttempt), _ids(DeliveryReport), _ids(TaskResult)) == before


def test_rows_become_prunable_once_their_work_is_done(world, clock):
    retention.prune_old_records()
    open_chunk = Chunk.objects.get(id=world["open"]["sending"].chunk_id)
    Message.objects.filter(chunk=open_chunk, status=MessageStatus.SENDING).update(status=MessageStatus.FAILED)
    settlement.settle(list(Message.objects.filter(chunk=open_chunk)))
    Chunk.objects.filter(id=open_chunk.id).update(status=ChunkStatus.FINALIZED)

    retention.prune_old_records()

    assert not DeliveryAttempt.objects.filter(chunk=open_chunk).exists()
    # Today's outcome rows of the messages failed just now are young: kept.
    assert (world["open"]["failed"].id, "failed") not in _outcomes()
    assert (world["open"]["sending"].id, "failed") in _outcomes()


def test_every_statement_deletes_at_most_one_batch(db, clock):
    old = [_task_result(clock, timedelta(days=30)) for _ in range(11)]
    TaskResult.objects.filter(id__in=[old[3].id, old[4].id, old[5].id]).delete()  # a gap in the ids
    young = [_task_result(clock) for _ in range(2)]

    summary = retention.prune_old_records(batch_size=3)

    table = next(t for t in summary.tables if t.table == TaskResult._meta.db_table)
    assert (table.deleted, table.largest_statement_rows) == (8, 3)
    assert table.statements >= 3
    assert _ids(TaskResult) == {row.id for row in young}


def test_a_spent_time_budget_stops_the_run_and_the_next_run_goes_on(db, clock):
    for _ in range(4):
        _task_result(clock, timedelta(days=30))

    stopped = retention.prune_old_records(time_budget=0)
    resumed = retention.prune_old_records(batch_size=2, time_budget=60)

    assert (stopped.deleted, stopped.finished) == (0, False)
    assert (resumed.deleted, resumed.finished) == (4, True)


def test_an_age_of_zero_keeps_a_table_for_ever(db, clock, settings):
    settings.RETENTION_TASK_RESULT_DAYS = 0
    row = _task_result(clock, timedelta(days=3000))

    retention.prune_old_records()

    assert TaskResult.objects.filter(id=row.id).exists()


def test_the_cutoffs_come_from_the_project_clock(db, clock, settings):
    settings.RETENTION_TASK_RESULT_DAYS = 7
    row = _task_result(clock, timedelta(days=6))

    retention.prune_old_records()
    assert TaskResult.objects.filter(id=row.id).exists()

    clock.set(clock.now() + timedelta(days=2))
    retention.prune_old_records()
    assert not TaskResult.objects.filter(id=row.id).exists()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_prune_in_the_worker_and_it_stores_no_result(worker, clock):
    assert beat_schedule["prune-old-records"]["task"] == prune_old_records.name
    moment = clock.now()
    clock.freeze(moment - OLD)
    old_report = _report(None)
    clock.freeze(moment)
    young_report = _report(None)

    result = prune_old_records.delay()

    wait_until(lambda: not DeliveryReport.objects.filter(id=old_report.id).exists(), what="the old report pruned")
    assert DeliveryReport.objects.filter(id=young_report.id).exists()
    # With results stored, task_track_started would have written a STARTED row before the body ran.
    assert not TaskResult.objects.filter(task_id=result.id).exists()
