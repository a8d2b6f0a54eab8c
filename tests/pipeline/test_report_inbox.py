"""The webhook answers once a POST is stored; a task applies it after (messaging/reports/inbox.py).

The messages are made accepted (and charged) in the test (test_report_batches.Scene), and the
reports POSTed as Solapi words them. The apply tasks go to a queue of the test's own (no worker
takes them), and the test runs the task in this process, so it can see a batch waiting, make
an apply crash, and apply twice. The worker applies the webhook's batches in test_reports.py
and test_report_trust.py."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from billing.models import Hold, HoldStatus
from harness.sqs import task_of
from messaging.failures import FailureClass
from messaging.models import DeliveryReport, Message, MessageOutcome, MessageStatus, OutcomeEvent, ReceivedReportBatch
from messaging.operations.gauges import TableGauges
from messaging.pipeline import due_marks, queues, tasks
from messaging.reports import inbox
from messaging.solapi.outcomes import DELIVERED
from tests.billing.test_concurrency import run_at_once
from tests.pipeline.test_report_batches import Scene
from tests.pipeline.test_report_trust import post, report

pytestmark = [pytest.mark.django_db(transaction=True)]


def failure_of(scene: Scene, n: int, *, event_id: str | None = None) -> dict:
    """A failure report (3010: a dead number) for the scene's message n, tied to what we sent."""
    return report(scene.messages[n].id, group_id=scene.group, status="3010", event_id=event_id,
                  solapi_message_id=scene.solapi_id(n))


def message(scene: Scene, n: int) -> Message:
    return Message.objects.get(id=scene.messages[n].id)


def refunded(scene: Scene, n: int) -> Decimal:
    """What message n was charged, net of its refunds (its outcome rows)."""
    return sum(MessageOutcome.objects.filter(message_id=scene.messages[n].id).values_list("amount", flat=True))


def own_apply_queue(own_queues, broker) -> Callable[[], list[tuple[str, list]]]:
    """The interactive queue made one of this test's own (a session worker left running by an
    earlier test takes nothing from it); returns `published()`: the (name, args) of the tasks
    published there since the last call. Called after the scene's send is made: a send's lane is read
    from the same name."""
    interactive = own_queues("inbox")[1]
    return lambda: [task_of(m) for m in broker.drain(interactive)]


def backlog() -> dict[str, float]:
    """The webhook's backlog as /metrics shows it (the table gauges)."""
    return {m.name: m.samples[0].value for m in TableGauges().collect()
            if m.name in ("messaging_report_batches_waiting", "messaging_reports_waiting")}


def test_the_answer_comes_once_stored_and_the_task_applies_the_reports(client, own_queues, broker):
    scene = Scene("INBOX")
    published = own_apply_queue(own_queues, broker)
    failed, delivered = failure_of(scene, 0), report(scene.messages[1].id, group_id=scene.group, status=DELIVERED,
                                                     solapi_message_id=scene.solapi_id(1))
    assert refunded(scene, 0) == Decimal("13")  # charged on acceptance

    response = post(client, [failed, delivered, "not a report"])

    assert response.status_code == 200
    batch = ReceivedReportBatch.objects.get()
    assert response.json() == {"received": 3, "batch": batch.id}
    assert (batch.reports, batch.applied, batch.summary) == (3, None, None)
    # Nothing applied yet: the messages, stored reports and credit are as they were.
    assert [message(scene, n).status for n in (0, 1)] == [MessageStatus.ACCEPTED] * 2
    assert not DeliveryReport.objects.exists()
    assert refunded(scene, 0) == Decimal("13")
    # One apply published, on the interactive queue; the backlog shows on /metrics.
    assert published() == [(inbox.APPLY_TASK, [batch.id])]
    assert backlog() == {"messaging_report_batches_waiting": 1, "messaging_reports_waiting": 3}

    assert tasks.apply_received_reports(batch.id) == {"applied": 1, "failed": 0}

    batch.refresh_from_db()
    assert batch.applied is not None
    assert batch.summary == {"applied": 2, "duplicates": 0, "unmatched": 0, "invalid": 1}
    assert [message(scene, n).status for n in (0, 1)] == [MessageStatus.FAILED, MessageStatus.DELIVERED]
    assert message(scene, 0).failure_class == FailureClass.RECIPIENT_INVALID
    assert refunded(scene, 0) == 0 and refunded(scene, 1) == Decimal("13")
    assert not Hold.objects.filter(message_id__in=[m.id for m in scene.messages], status=HoldStatus.HELD).exists()
    scene.send_request.refresh_from_db()
    counts = scene.send_request.counts
    assert (counts.get("failed"), counts.get("delivered"), counts.get("accepted")) == (1, 2, 1)
    # Applied once: the next run finds nothing.
    assert tasks.apply_received_reports(batch.id) == {"applied": 0, "failed": 0}
    assert backlog() == {"messaging_report_batches_waiting": 0, "messaging_reports_waiting": 0}


def test_an_event_delivered_again_in_another_post_is_applied_once_before_or_after_the_first(client, own_queues, broker):
    scene = Scene("AGAIN")
    own_apply_queue(own_queues, broker)
    before, after = failure_of(scene, 0), failure_of(scene, 1)

    # Before: both copies wait, the second POST's is a duplicate when applied.
    post(client, [before])
    post(client, [before])
    assert inbox.apply_waiting() == {"applied": 2, "failed": 0}
    # After: the first copy was applied when the second arrived.
    post(client, [after])
    assert inbox.apply_waiting() == {"applied": 1, "failed": 0}
    post(client, [after])
    assert inbox.apply_waiting() == {"applied": 1, "failed": 0}

    summaries = list(ReceivedReportBatch.objects.order_by("id").values_list("summary", flat=True))
    once, again = {"applied": 1, "duplicates": 0, "unmatched": 0, "invalid": 0}, \
        {"applied": 0, "duplicates": 1, "unmatched": 0, "invalid": 0}
    assert summaries == [once, again, once, again]
    for n in (0, 1):
        assert message(scene, n).status == MessageStatus.FAILED
        assert refunded(scene, n) == 0  # refunded once: charged 13, refunded 13
        assert MessageOutcome.objects.filter(message_id=scene.messages[n].id, event=OutcomeEvent.FAILED).count() == 1
    assert DeliveryReport.objects.count() == 2


def test_posts_while_an_apply_is_due_publish_none_and_that_apply_takes_them_all(client, own_queues, broker):
    scene = Scene("COALESCE")
    published = own_apply_queue(own_queues, broker)
    first = post(client, [failure_of(scene, 0)]).json()["batch"]
    post(client, [failure_of(scene, 1)])
    post(client, [failure_of(scene, 2)])

    # One apply on the queue, published for the first POST; the others found it due.
    assert published() == [(inbox.APPLY_TASK, [first])]
    assert tasks.apply_received_reports(first) == {"applied": 3, "failed": 0}
    assert [message(scene, n).status for n in (0, 1, 2)] == [MessageStatus.FAILED] * 3
    # It cleared its mark as it started: the next POST publishes its own.
    latest = post(client, [failure_of(scene, 0, event_id="COALESCE-again")]).json()["batch"]
    assert published() == [(inbox.APPLY_TASK, [latest])]


def test_the_apply_gives_way_to_a_small_sends_dispatch_and_publishes_the_rest_behind_it(client, own_queues, broker):
    scene = Scene("YIELD")
    published = own_apply_queue(own_queues, broker)
    first = post(client, [failure_of(scene, 0)]).json()["batch"]
    post(client, [failure_of(scene, 1)])
    published()
    # A small send's dispatch is due on the interactive queue (published, not started yet).
    assert due_marks.claim(queues.INTERACTIVE_QUEUE) and due_marks.is_due(queues.INTERACTIVE_QUEUE)

    # One batch, then the task stops and publishes an apply for the other behind the dispatch.
    assert tasks.apply_received_reports(first) == {"applied": 1, "failed": 0}
    assert [message(scene, n).status for n in (0, 1)] == [MessageStatus.FAILED, MessageStatus.ACCEPTED]
    [(name, [up_to])] = published()
    assert name == inbox.APPLY_TASK and up_to == ReceivedReportBatch.objects.latest("id").id

    # The dispatch has started; the republished apply takes the rest, and leaves nothing to publish.
    due_marks.clear(queues.INTERACTIVE_QUEUE)
    assert tasks.apply_received_reports(up_to) == {"applied": 1, "failed": 0}
    assert message(scene, 1).status == MessageStatus.FAILED
    assert published() == []


@pytest.mark.postgres
def test_two_workers_take_different_batches_and_a_shared_event_is_applied_once(client, own_queues, broker):
    scene = Scene("SKIP")
    own_apply_queue(own_queues, broker)
    shared = failure_of(scene, 0)
    for n in range(4):
        post(client, [shared, failure_of(scene, 1, event_id=f"SKIP-own-{n}")])

    results = run_at_once(2, lambda i: inbox.apply_waiting())

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r["applied"] for r in results) == 4 and all(r["failed"] == 0 for r in results)
    summaries = ReceivedReportBatch.objects.values_list("summary", flat=True)
    # The shared event moved message 0 once; message 1's first report moved it, the others are late.
    assert sum(s["applied"] for s in summaries) == 2
    assert sum(s["duplicates"] for s in summaries) == 3
    assert refunded(scene, 0) == 0 and refunded(scene, 1) == 0
    assert MessageOutcome.objects.filter(message_id=scene.messages[0].id, event=OutcomeEvent.FAILED).count() == 1


def test_a_crashed_apply_leaves_the_batch_waiting_and_the_sweep_has_it_applied_once(client, own_queues, broker,
                                                                                    monkeypatch, clock):
    scene = Scene("CRASH")
    published = own_apply_queue(own_queues, broker)
    poisoned, fine = failure_of(scene, 0), failure_of(scene, 1)
    real = inbox.record_reports

    def crash_after_recording(reports, rejected=()):
        result = real(reports, rejected)  # the statuses written, in the batch's transaction
        if any(r.event_id == poisoned["eventDataId"] for r in reports):
            raise RuntimeError("the worker died mid-apply")
        return result

    first = post(client, [poisoned]).json()["batch"]
    post(client, [fine])
    with monkeypatch.context() as patched:
        patched.setattr(inbox, "record_reports", crash_after_recording)
        assert inbox.apply_waiting() == {"applied": 1, "failed": 1}  # the other batch went on

    crashed = ReceivedReportBatch.objects.get(id=first)
    assert (crashed.applied, crashed.failed_attempts) == (None, 1)
    assert crashed.last_error == "RuntimeError: the worker died mid-apply"
    # Rolled back whole: the report is not stored, the message has not moved, no refund.
    assert not DeliveryReport.objects.filter(event_data_id=poisoned["eventDataId"]).exists()
    assert message(scene, 0).status == MessageStatus.ACCEPTED and refunded(scene, 0) == Decimal("13")
    assert message(scene, 1).status == MessageStatus.FAILED

    # The applies the POSTs published are lost (drained); beat's sweep publishes one again once
    # the batch has waited long enough, and the task it published applies it.
    published()
    assert tasks.reapply_waiting_reports() == 0  # not waited long enough yet
    assert published() == []
    clock.freeze(crashed.received + timedelta(seconds=61))
    assert tasks.reapply_waiting_reports() == 1
    assert published() == [(inbox.APPLY_TASK, [first])]  # up to the one that waited that long
    assert tasks.apply_received_reports(first) == {"applied": 1, "failed": 0}

    crashed.refresh_from_db()
    assert crashed.summary == {"applied": 1, "duplicates": 0, "unmatched": 0, "invalid": 0}
    assert message(scene, 0).status == MessageStatus.FAILED
    assert MessageOutcome.objects.filter(message_id=scene.messages[0].id, event=OutcomeEvent.FAILED).count() == 1
    assert DeliveryReport.objects.filter(event_data_id=poisoned["eventDataId"]).count() == 1
    # Applied once: a second run (the sweep's again, a redelivered task) changes nothing.
    assert inbox.apply_waiting() == {"applied": 0, "failed": 0}


@pytest.mark.parametrize("body, status, code", [
    ({"not": "a list"}, 400, "invalid_request"),
    ([{}] * 1001, 400, "too_many_items"),
])
def test_a_refused_body_stores_nothing(client, own_queues, broker, body, status, code):
    published = own_apply_queue(own_queues, broker)
    response = post(client, body)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not ReceivedReportBatch.objects.exists()
    assert published() == []


def test_an_empty_post_stores_nothing(client, own_queues, broker):
    published = own_apply_queue(own_queues, broker)
    assert post(client, []).json() == {"received": 0, "batch": None}
    assert published() == []
    assert not ReceivedReportBatch.objects.exists()
