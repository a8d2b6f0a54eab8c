"""Back-pressure that tells the truth: a send accepted behind a deep backlog is still accepted,
and its answer says what is ahead of it and when it should start; /healthz turns degraded
(messaging/operations/backlog.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from harness.waiting import wait_until
from messaging.models import Message, MessageStatus, SendRequest, WorkerHeartbeat
from messaging.operations import backlog
from messaging.operations.backlog import Basis, backlog_for, kst_iso
from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE
from project.health.monitor import monitor
from tests.api.test_idempotency import with_key

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)  # 14:00 in Korea: no night rule in the way


@pytest.fixture(autouse=True)
def frozen(clock):
    clock.freeze(NOW)
    return clock


def _backlog(post_send, academy, *, requests: int, drained: int, drained_over: int) -> list[int]:
    """`requests` sends of the academy's 3 students on the interactive queue; the first
    `drained` of them accepted by Solapi, evenly over the last `drained_over` seconds. Returns
    the ids of the sends still ahead."""
    ids = [post_send(academy.student_ids).json()["id"] for _ in range(requests)]
    for position, send_request_id in enumerate(ids[:drained]):
        accepted_at = NOW - timedelta(seconds=drained_over * (drained - position) / drained)
        Message.objects.filter(send_request_id=send_request_id).update(status=MessageStatus.ACCEPTED,
                                                                       accepted_at=accepted_at)
    return ids[drained:]


def test_the_estimate_is_what_is_ahead_at_the_rate_the_queue_drained(academy, post_send, broker):
    _backlog(post_send, academy, requests=10, drained=4, drained_over=40)  # 4 requests, 12 messages in 40 s

    backlog = backlog_for(INTERACTIVE_QUEUE)

    assert (backlog.requests_ahead, backlog.messages_ahead) == (6, 18)
    assert (backlog.requests_per_second, backlog.messages_per_second) == (0.1, 0.3)
    assert (backlog.wait_seconds, backlog.basis) == (60, Basis.DRAIN_RATE)
    assert backlog.estimated_start == NOW + timedelta(seconds=60)
    # The other queue is empty: nothing ahead, no wait.
    assert (backlog_for(BULK_QUEUE).wait_seconds, backlog_for(BULK_QUEUE).basis) == (0, Basis.EMPTY)


def test_a_queue_that_drained_nothing_lately_waits_as_long_as_its_oldest(academy, post_send, broker, frozen):
    post_send(academy.student_ids)
    frozen.freeze(NOW + timedelta(minutes=7))

    backlog = backlog_for(INTERACTIVE_QUEUE)

    assert (backlog.messages_ahead, backlog.wait_seconds, backlog.basis) == (3, 420, Basis.OLDEST_WAITING)


def test_night_deferred_ads_and_settled_messages_are_not_ahead(academy, post_send, broker):
    [deferred, settled] = [post_send(academy.student_ids).json()["id"] for _ in range(2)]
    Message.objects.filter(send_request_id=deferred).update(not_before=NOW + timedelta(hours=10))
    Message.objects.filter(send_request_id=settled).update(status=MessageStatus.DELIVERED,
                                                           accepted_at=NOW - timedelta(hours=1))

    assert backlog_for(INTERACTIVE_QUEUE).messages_ahead == 0


def test_an_idle_queue_answers_no_wait_and_no_delay(academy, post_send, broker):
    body = post_send(academy.student_ids).json()

    assert body["queued_behind"] == {"requests": 0, "messages": 0}
    assert body["estimated_start"] == kst_iso(NOW) == "2026-03-04T14:00:00+09:00"
    assert (body["delayed"], body["delay_messages"]) == (False, None)


def test_a_send_behind_a_deep_backlog_is_accepted_and_says_it_will_start_late(academy, post_send, broker,
                                                                              settings):
    settings.MESSAGING_BACKLOG_WARN_SECONDS = 45
    ahead = _backlog(post_send, academy, requests=10, drained=4, drained_over=40)

    response = post_send(academy.student_ids)

    body = response.json()
    assert response.status_code == 202
    assert body["accepted"] == 3 and body["dispatched"] is True
    assert body["queued_behind"] == {"requests": len(ahead), "messages": 3 * len(ahead)}
    assert body["estimated_start"] == "2026-03-04T14:01:00+09:00"
    assert body["delayed"] is True
    assert "약 1분 후(14:01 예정)" in body["delay_messages"]["ko"]
    assert "about 1 min (around 14:01 KST)" in body["delay_messages"]["en"]
    # Nothing is lost: stored and published like any other send.
    assert Message.objects.filter(send_request_id=body["id"], status=MessageStatus.PENDING).count() == 3
    assert SendRequest.objects.get(id=body["id"]).dispatched is not None


def test_under_the_threshold_the_estimate_is_given_without_a_delay(academy, post_send, broker, settings):
    settings.MESSAGING_BACKLOG_WARN_SECONDS = 60
    _backlog(post_send, academy, requests=10, drained=4, drained_over=40)

    body = post_send(academy.student_ids).json()

    assert body["estimated_start"] == "2026-03-04T14:01:00+09:00"
    assert (body["delayed"], body["delay_messages"]) == (False, None)


def test_a_replay_answers_what_the_first_answer_said_after_the_backlog_is_gone(academy, post_send, broker,
                                                                               settings, frozen):
    settings.MESSAGING_BACKLOG_WARN_SECONDS = 45
    _backlog(post_send, academy, requests=10, drained=4, drained_over=40)
    first = post_send(academy.student_ids, headers=with_key("late-lesson"))
    Message.objects.update(status=MessageStatus.DELIVERED, accepted_at=NOW)
    frozen.freeze(NOW + timedelta(minutes=5))

    again = post_send(academy.student_ids, headers=with_key("late-lesson"))

    assert first.json()["delayed"] is True
    assert (again.status_code, again.json()) == (202, first.json())
    assert backlog_for(INTERACTIVE_QUEUE).messages_ahead == 0  # a fresh answer would have said otherwise


def test_health_is_degraded_while_a_queue_s_wait_exceeds_the_threshold(academy, post_send, broker, settings,
                                                                        client, frozen):
    settings.HEALTH_TOKEN = "health-token-for-the-monitoring-system"
    settings.MESSAGING_BACKLOG_WARN_SECONDS = 45
    WorkerHeartbeat.objects.create(hostname="w@host", pid=1, started=NOW, last_seen=NOW)

    def health():
        monitor.refresh()  # as the background thread does (project/health/monitor.py)
        return client.get("/healthz", headers={"X-Health-Token": settings.HEALTH_TOKEN}).json()

    before = health()
    _backlog(post_send, academy, requests=10, drained=4, drained_over=40)
    behind = health()
    anyone = client.get("/healthz").json()
    Message.objects.update(status=MessageStatus.DELIVERED, accepted_at=NOW)
    drained = health()

    assert before["status"] == "ok", before
    assert behind["status"] == "degraded"
    assert behind["backlog"][INTERACTIVE_QUEUE] | {"queue": INTERACTIVE_QUEUE} == {
        "queue": INTERACTIVE_QUEUE, "requests_ahead": 6, "messages_ahead": 18, "messages_per_second": 0.3,
        "requests_per_second": 0.1, "wait_seconds": 60, "basis": Basis.DRAIN_RATE,
        "estimated_start": "2026-03-04T14:01:00+09:00", "delayed": True}
    assert behind["backlog"][BULK_QUEUE]["delayed"] is False
    assert anyone == {"status": "degraded"}
    assert drained["status"] == "ok"


def test_sends_in_the_same_second_share_one_estimate(academy, post_send, broker, settings):
    """The answer's estimate is reused for MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS in a process:
    the second send does not count the first one ahead of it, and runs none of the estimate's
    queries."""
    settings.MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS = 60
    backlog._recent.clear()
    first = post_send(academy.student_ids).json()
    with CaptureQueriesContext(connection) as queries:
        second = post_send(academy.student_ids).json()

    assert first["queued_behind"] == second["queued_behind"] == {"requests": 0, "messages": 0}
    assert backlog_for(INTERACTIVE_QUEUE).requests_ahead == 2  # a fresh estimate sees both
    assert not [q for q in queries.captured_queries if q["sql"].startswith("SELECT") and "accepted_at" in q["sql"]]
    backlog._recent.clear()


@pytest.mark.django_db(transaction=True)
def test_an_estimate_past_its_age_is_answered_while_a_thread_estimates_again(academy, post_send, broker, settings):
    """Past MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS the send does not wait for the estimate's
    queries (they grow with the backlog): it answers the one it has, and a background thread
    of the process makes the next one. Far past it (STALE_FACTOR), the request estimates."""
    settings.MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS = 60
    backlog._recent.clear()
    post_send(academy.student_ids)  # the process's first estimate: in the request, nothing ahead
    aged_at = _age_estimate(INTERACTIVE_QUEUE, by=61)

    with CaptureQueriesContext(connection) as queries:
        second = post_send(academy.student_ids).json()
    # Made while the second send ran: it counts the first request ahead, maybe the second too.
    wait_until(lambda: backlog._recent[INTERACTIVE_QUEUE][0] > aged_at and not backlog._refreshing.locked(),
               timeout=30, what="the background estimate")
    refreshed = backlog._recent[INTERACTIVE_QUEUE][1]
    _age_estimate(INTERACTIVE_QUEUE, by=60 * backlog.STALE_FACTOR)
    third = post_send(academy.student_ids).json()

    assert second["queued_behind"] == {"requests": 0, "messages": 0}
    assert not [q for q in queries.captured_queries if q["sql"].startswith("SELECT") and "accepted_at" in q["sql"]]
    assert refreshed.requests_ahead in (1, 2)
    assert third["queued_behind"] == {"requests": 2, "messages": 6}
    backlog._recent.clear()


def _age_estimate(queue: str, *, by: float) -> float:
    estimated_at, estimate = backlog._recent[queue]
    backlog._recent[queue] = (estimated_at - by, estimate)
    return estimated_at - by
