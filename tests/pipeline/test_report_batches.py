"""A POST's reports applied together (messaging/reports/apply.py, _apply_batch) do exactly what
applying them one by one did: the same answer, messages, stored reports, outcome rows, holds
and counts, for a batch with every kind of report in it; and a batch that meets a concurrent
copy of one of its events falls back to the one-by-one path without losing the others.

No worker is needed: the messages are made accepted (charged, as the send step leaves them)
in the test, and the reports are handed to apply_reports as the webhook's adapter reads them."""

import logging
import threading
from collections import Counter
from dataclasses import asdict

import pytest
from django.db import IntegrityError

from billing.models import Hold
from harness.academies import make_academy
from harness.waiting import DEFAULT_TIMEOUT
from messaging.models import Chunk, DeliveryReport, Message, MessageOutcome, MessageStatus, SendRequest
from messaging.pipeline import settlement
from messaging.reports import apply
from messaging.reports.apply import apply_reports
from messaging.solapi.outcomes import DELIVERED, REGISTERED
from messaging.solapi.reports import Report
from project import clock
from tests.billing.test_concurrency import run_at_once
from tests.pipeline.conftest import send

pytestmark = [pytest.mark.django_db(transaction=True)]

LOGGER = "messaging.reports.apply"


class Scene:
    """Four accepted messages of one request in one Solapi group; the last one already
    delivered, with its Solapi id recorded. Ids carry a prefix of the scene's own, so two
    scenes in one database do not see each other's reports."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        academy = make_academy(students=4)
        self.send_request = send(academy, publish=False)
        self.group = f"G4V{prefix}GROUP"
        chunk = Chunk.objects.create(send_request=self.send_request, index=0, solapi_group_id=self.group)
        self.messages = list(Message.objects.filter(send_request=self.send_request).order_by("id"))
        assert len(self.messages) == 4
        Message.objects.filter(send_request=self.send_request).update(
            chunk=chunk, status=MessageStatus.ACCEPTED, accepted_at=clock.now())
        Message.objects.filter(id=self.messages[3].id).update(
            status=MessageStatus.DELIVERED, solapi_message_id=self.solapi_id(3), completed_at=clock.now())
        settlement.settle(list(Message.objects.filter(send_request=self.send_request)))

    def solapi_id(self, n: int | str) -> str:
        return f"M4V{self.prefix}{n}"

    def report(self, event: str, message: int | None, status: str, *, solapi: str = "", group: str | None = None,
               message_id: int | None = None) -> Report:
        """`message` is the index of one of the scene's messages (None: the report names none)."""
        if message is not None:
            message_id = self.messages[message].id
        return Report(event_id=f"{self.prefix}-{event}", message_id=message_id, solapi_message_id=solapi,
                      status_code=status, message_type="SMS", status_message="전화번호 오류", payload={"e": event},
                      group_id=self.group if group is None else group)

    def batch(self) -> list[Report]:
        s = self.solapi_id
        return [
            self.report("stored-before", 0, REGISTERED, solapi=s(0)),  # a re-delivery of a stored event
            self.report("delivered", 0, DELIVERED, solapi=s(0)),  # ties message 0 to s(0) and finishes it
            self.report("late", 0, "3010", solapi=s(0)),  # final already: stored with it, moves nothing
            self.report("other-id", 0, "3010", solapi=s("x")),  # not the Solapi id now recorded: mismatched
            self.report("wrong-group", 1, "3010", solapi=s(1), group="G4VSOMEONEELSE"),  # mismatched
            self.report("too-long", 1, "123456789", solapi=s(1)),  # invalid: longer than its column
            self.report("in-progress", 1, REGISTERED, solapi=s(1)),  # tied, message 1 stays accepted
            self.report("failed", 2, "3010", solapi=s(2)),  # fails message 2 after acceptance: refunded
            self.report("failed", 2, "3010", solapi=s(2)),  # the same event again in the POST
            self.report("late-by-solapi-id", None, "3010", solapi=s(3)),  # found by Solapi id, final: late
            self.report("no-such-message", None, DELIVERED, message_id=10**9),  # unmatched
            self.report("no-such-solapi-id", None, DELIVERED, solapi=s("unknown")),  # unmatched
            self.report("no-id-at-all", None, DELIVERED),  # unmatched
        ]

    def outcome(self, summary, logs: list[logging.LogRecord]) -> dict:
        """What the batch left, with the scene's prefix and ids taken out."""
        index = {m.id: n for n, m in enumerate(self.messages)}
        ids = list(index)
        messages = Message.objects.filter(id__in=ids).order_by("id")
        request = SendRequest.objects.get(id=self.send_request.id)
        return {
            "summary": asdict(summary),
            "messages": [(m.status, m.failure_class, m.failure_reason, m.solapi_status_code,
                          m.solapi_message_id.removeprefix(f"M4V{self.prefix}"), m.delivered_type,
                          m.accepted_at is not None, m.completed_at is not None) for m in messages],
            "stored": sorted((r.event_data_id.removeprefix(f"{self.prefix}-"), index.get(r.message_id), r.status_code)
                             for r in DeliveryReport.objects.filter(event_data_id__startswith=f"{self.prefix}-")),
            "outcomes": sorted((index[o.message_id], o.event, o.amount)
                               for o in MessageOutcome.objects.filter(message_id__in=ids)),
            "holds": sorted((index[h.message_id], h.status, h.captured_amount, h.refunded)
                            for h in Hold.objects.filter(message_id__in=ids)),
            "counts": request.counts,
            "completed": request.completed is not None,
            "logs": Counter(r.getMessage().split(" ")[0] for r in logs if r.name == LOGGER),
        }


def run(scene: Scene, caplog) -> dict:
    apply_reports([scene.report("stored-before", 0, REGISTERED, solapi=scene.solapi_id(0))])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        summary = apply_reports(scene.batch())
    return scene.outcome(summary, caplog.records)


def test_a_batch_does_what_the_reports_did_one_by_one(monkeypatch, caplog):
    together = run(Scene("BATCH"), caplog)

    with monkeypatch.context() as patched:
        patched.setattr(apply, "_apply_batch", _refuse)  # every batch takes the one-by-one path
        one_by_one = run(Scene("ONEBYONE"), caplog)

    assert together == one_by_one
    # And what that is, spelled out:
    assert together["summary"] == {"applied": 2, "duplicates": 2, "unmatched": 5, "invalid": 1}
    assert [m[0] for m in together["messages"]] == [
        MessageStatus.DELIVERED, MessageStatus.ACCEPTED, MessageStatus.FAILED, MessageStatus.DELIVERED]
    assert together["messages"][0][4] == "0"  # message 0 now bound to the Solapi id of its report
    assert {event: message for event, message, _ in together["stored"]} == {
        "stored-before": 0, "delivered": 0, "late": 0, "other-id": None, "wrong-group": None, "in-progress": 1,
        "failed": 2, "late-by-solapi-id": 3, "no-such-message": None, "no-such-solapi-id": None,
        "no-id-at-all": None}
    assert together["counts"]["accepted"] == 1 and not together["completed"]
    assert together["logs"] == {"report_invalid": 1, "report_mismatched": 2, "report_unmatched": 3}


def test_a_concurrent_copy_of_one_event_sends_the_batch_one_by_one_and_stops_only_that_copy(monkeypatch, caplog):
    scene = Scene("RACE")
    first = scene.report("delivered", 0, DELIVERED, solapi=scene.solapi_id(0))
    batch = [first, scene.report("failed", 2, "3010", solapi=scene.solapi_id(2))]
    # The other POST stored `first`, and committed, after our look and before our insert:
    # the look answers as it would have a moment before.
    apply_reports([first])
    monkeypatch.setattr(apply, "_stored_already", lambda event_ids: set())
    fell_back = []
    monkeypatch.setattr(apply, "_apply_one_by_one", _recording(apply._apply_one_by_one, fell_back))

    summary = apply_reports(batch)

    assert fell_back == [2], "the batch's insert did not meet the stored copy"
    assert asdict(summary) == {"applied": 1, "duplicates": 1, "unmatched": 0, "invalid": 0}
    statuses = list(Message.objects.filter(id__in=[m.id for m in scene.messages]).order_by("id")
                    .values_list("status", flat=True))
    assert statuses == [MessageStatus.DELIVERED, MessageStatus.ACCEPTED, MessageStatus.FAILED,
                        MessageStatus.DELIVERED]
    assert DeliveryReport.objects.filter(event_data_id=first.event_id).count() == 1
    assert DeliveryReport.objects.get(event_data_id=batch[1].event_id).message_id == scene.messages[2].id


@pytest.mark.postgres
def test_two_posts_of_the_same_batch_at_once_apply_each_report_once(monkeypatch):
    """Solapi re-delivering a batch while the first copy is being applied, for real: two threads
    each look (nothing stored yet), then both insert; one waits on the other's uncommitted rows,
    meets them once they commit, and goes one by one, where all its copies stop."""
    scene = Scene("TWICE")
    batch = [scene.report(f"r{n}", n, DELIVERED if n != 1 else "3010", solapi=scene.solapi_id(n)) for n in range(3)]
    both_looked = threading.Barrier(2, timeout=DEFAULT_TIMEOUT)
    look = apply._stored_already

    def look_together(event_ids):
        stored = look(event_ids)
        both_looked.wait()
        return stored

    monkeypatch.setattr(apply, "_stored_already", look_together)
    fell_back = []
    monkeypatch.setattr(apply, "_apply_one_by_one", _recording(apply._apply_one_by_one, fell_back))

    answers = run_at_once(2, lambda i: apply_reports(batch))

    assert not [a for a in answers if isinstance(a, Exception)], answers
    assert sorted(asdict(a)["applied"] for a in answers) == [0, 3]
    assert sorted(asdict(a)["duplicates"] for a in answers) == [0, 3]
    assert fell_back == [3]
    statuses = list(Message.objects.filter(id__in=[m.id for m in scene.messages]).order_by("id")
                    .values_list("status", flat=True))
    assert statuses == [MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.DELIVERED,
                        MessageStatus.DELIVERED]
    assert DeliveryReport.objects.filter(event_data_id__startswith="TWICE-").count() == 3
    assert MessageOutcome.objects.filter(message__in=scene.messages[:3], event="failed").count() == 1


def _refuse(reports, summary):
    raise IntegrityError("as if a concurrent POST had stored one of these events")


def _recording(function, calls: list):
    def recorded(reports, summary):
        calls.append(len(reports))
        return function(reports, summary)
    return recorded
