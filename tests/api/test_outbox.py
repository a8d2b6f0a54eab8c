"""Broker down at publish time: the send is still accepted and nothing is lost. The beat
relay publishes it once SQS is back, onto the real (local) SQS, exactly once."""

import time
from datetime import timedelta

import pytest

from harness.academies import make_academy
from harness.sqs import task_of
from messaging.models import Message, MessageStatus, QueueProgress, SendRequest
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from messaging.pipeline.tasks import redispatch_undispatched
from project import clock
from tests.api.conftest import client_for, send_body

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A refused connection fails the publish after kombu's few quick retries (~1.3 s on
# loopback, a few seconds on a loaded machine), so the staff member's request is not held
# long: the bound is generous, far below a publish that retried for good. Not covered here: an endpoint
# that accepts connections but never answers holds the request for botocore's read timeout
# (30 s, celeryconfig) per attempt, about 90 s in all when measured.
PUBLISH_GIVES_UP_WITHIN_SECONDS = 30
RELAY_QUEUE = f"{INTERACTIVE_QUEUE}-relay"


@pytest.fixture
def sqs_down(broker):
    broker.down()
    try:
        yield broker
    finally:
        broker.up()


def test_a_send_while_sqs_is_down_is_accepted_and_published_by_the_relay_when_it_is_back(
    sqs_down, settings
):
    academy = make_academy("outage")
    api = client_for(academy.user)

    started = time.monotonic()
    response = api.post("/api/v1/messages/send", send_body(academy.student_ids), format="json")
    took = time.monotonic() - started

    assert response.status_code == 202, response.json()
    assert response.json()["dispatched"] is False
    assert response.json()["accepted"] == 3
    assert took < PUBLISH_GIVES_UP_WITHIN_SECONDS, f"the API waited {took:.1f}s for an unreachable broker"
    send_request = SendRequest.objects.get(id=response.json()["id"])
    assert send_request.dispatched is None
    assert send_request.dispatch_attempts == 1
    assert send_request.dispatch_error
    # Committed, not just written: the relay (another process in production) can read them.
    assert Message.objects.filter(send_request=send_request, status=MessageStatus.PENDING).count() == 3
    # So does the request's progress.
    assert api.get(response.json()["status_url"]).json()["dispatched"] is False
    # A small send goes to the interactive queue. From here on its dispatch goes to a queue of
    # this test's own, which no worker consumes: the session's worker, if an earlier test
    # started it, would take the task before the test reads it.
    assert send_request.queue == INTERACTIVE_QUEUE
    SendRequest.objects.filter(id=send_request.id).update(queue=RELAY_QUEUE)

    # While SQS stays down the relay cannot publish either, and says so.
    settings.MESSAGING_REDISPATCH_AFTER_SECONDS = 0
    assert redispatch_undispatched() == 0
    send_request.refresh_from_db()
    assert (send_request.dispatched, send_request.dispatch_attempts) == (None, 2)

    sqs_down.up()
    sqs_down.reset_counts()
    assert redispatch_undispatched() == 1

    send_request.refresh_from_db()
    assert send_request.dispatched is not None
    assert send_request.dispatch_error == ""
    assert sqs_down.request_counts()["SendMessage"] == 1
    # The dispatch task really is in the queue, for this request.
    tasks = [task_of(m) for m in sqs_down.drain(RELAY_QUEUE)]
    assert tasks == [("messaging.dispatch", [send_request.id])]
    assert api.get(response.json()["status_url"]).json()["dispatched"] is True
    # Once published, the relay leaves it alone.
    assert redispatch_undispatched() == 0
    assert sqs_down.request_counts()["SendMessage"] == 1


def test_the_relay_waits_before_republishing_a_recent_request(sqs_down, settings):
    # A request whose publish is still under way in the web process must not be published twice.
    academy = make_academy("patient")
    response = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids), format="json")
    assert response.json()["dispatched"] is False
    sqs_down.up()
    sqs_down.reset_counts()
    settings.MESSAGING_REDISPATCH_AFTER_SECONDS = 60

    assert redispatch_undispatched() == 0
    assert sqs_down.request_counts()["SendMessage"] == 0
    assert SendRequest.objects.get().dispatched is None


def test_the_relay_publishes_again_a_dispatch_lost_with_its_queue_once_it_is_stale(sqs_down, settings):
    # Published, but the queue was lost with it (an SQS endpoint back empty): its messages are
    # still pending outside any chunk. Only past the stale-chunk threshold, so that a dispatch
    # merely waiting in a backlog is not published twice.
    from datetime import timedelta

    from django.utils import timezone

    academy = make_academy("lost")
    api = client_for(academy.user)
    lost, recent = (api.post("/api/v1/messages/send", send_body(academy.student_ids), format="json").json()["id"]
                    for _ in range(2))
    # A queue no worker consumes, as above.
    SendRequest.objects.filter(id=lost).update(dispatched=timezone.now() - timedelta(seconds=1300), queue=RELAY_QUEUE)
    SendRequest.objects.filter(id=recent).update(dispatched=timezone.now() - timedelta(seconds=60), queue=RELAY_QUEUE)
    sqs_down.up()
    sqs_down.reset_counts()
    settings.MESSAGING_STALE_CHUNK_SECONDS = 1200
    # Its queue's consumers have not yet started anything published after it: it may be waiting.
    head = QueueProgress.objects.create(queue=RELAY_QUEUE, head_published_at=timezone.now() - timedelta(
        seconds=1400), updated=timezone.now())
    assert redispatch_undispatched() == 0
    # They have now: it was lost.
    QueueProgress.objects.filter(id=head.id).update(head_published_at=timezone.now())

    assert redispatch_undispatched() == 1
    assert [task_of(m) for m in sqs_down.drain(RELAY_QUEUE)] == [("messaging.dispatch", [lost])]
    # Published again just now: not again until it is stale again.
    assert redispatch_undispatched() == 0
    # Messages deferred to the morning are not owed a dispatch (release_deferred sends them).
    SendRequest.objects.filter(id=lost).update(dispatched=timezone.now() - timedelta(seconds=1300))
    Message.objects.filter(send_request_id=lost).update(not_before=timezone.now() + timedelta(hours=9))
    assert redispatch_undispatched() == 0
    assert sqs_down.request_counts()["SendMessage"] == 1


def test_the_relay_publishes_a_broadcasts_dispatch_on_the_interactive_queue(sqs_down, own_queues, settings):
    # Every dispatch goes on the interactive queue, a broadcast's too (its chunks go on the bulk
    # queue): the relay publishes it there, and whether it was lost is read from that queue's
    # head, not from the bulk queue's.
    bulk, interactive = own_queues("relay")
    settings.MESSAGING_INTERACTIVE_MAX_RECIPIENTS = 1
    academy = make_academy("broadcaster")
    # Scheduled: its messages are written outside any chunk until a dispatch releases them (a
    # broadcast's due messages are written into their chunks, and a lost dispatch of those
    # leaves only unpublished chunks, which the pacing sweep publishes: tests/pipeline/test_pacing.py).
    send_at = (clock.now() + timedelta(hours=1)).isoformat()
    response = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids, send_at=send_at),
                                             format="json")
    assert response.json()["dispatched"] is False
    broadcast = SendRequest.objects.get(id=response.json()["id"])
    assert broadcast.queue == bulk
    sqs_down.up()
    settings.MESSAGING_REDISPATCH_AFTER_SECONDS = 0

    assert redispatch_undispatched() == 1
    assert sqs_down.drain(bulk) == []
    assert [task_of(m) for m in sqs_down.drain(interactive)] == [("messaging.dispatch", [broadcast.id])]

    # Its time came and the dispatch that released it was lost with its queue: its messages are
    # still outside any chunk past the stale threshold.
    settings.MESSAGING_STALE_CHUNK_SECONDS = 1200
    Message.objects.filter(send_request=broadcast).update(not_before=clock.now() - timedelta(seconds=1400))
    SendRequest.objects.filter(id=broadcast.id).update(dispatched=clock.now() - timedelta(seconds=1300))
    # The bulk queue has moved on, but the dispatch was never there: it may still wait.
    QueueProgress.objects.create(queue=bulk, head_published_at=clock.now(), updated=clock.now())
    assert redispatch_undispatched() == 0
    # The interactive queue has moved on past it: lost.
    QueueProgress.objects.create(queue=interactive, head_published_at=clock.now(), updated=clock.now())
    assert redispatch_undispatched() == 1
    assert sqs_down.drain(bulk) == []
    assert [task_of(m) for m in sqs_down.drain(interactive)] == [("messaging.dispatch", [broadcast.id])]
