"""Small sends share the dispatch already due on their queue (messaging/pipeline/outbox.py,
request_dispatch): what is published, and that every request is still sent, once, when the
group is full or the dispatch is lost. The dispatches run in this process (express.deliver),
against the sandbox; publishing is recorded instead of sent."""

from datetime import timedelta

import pytest

from harness.academies import Academy, make_academy
from messaging.compose.send_requests import SendInput, send_request_create
from messaging.models import MessageStatus, PendingDispatch, QueueProgress, SendRequest
from messaging.pipeline import express, outbox
from messaging.pipeline.queues import INTERACTIVE_QUEUE

pytestmark = pytest.mark.django_db

OTHER_SENDER = "0311112222"


class Publishes(list):
    """The dispatches published: (send request id, queue). `fail` makes the next publish raise."""

    fail = False

    def signature(self, name: str, args: tuple):
        publishes = self

        class Recorded:
            def apply_async(self, *, queue: str, retry: bool) -> None:
                if publishes.fail:
                    publishes.fail = False
                    raise ConnectionError("the broker is unreachable")
                publishes.append((args[0], queue))

        assert name == outbox.DISPATCH_TASK
        return Recorded()


@pytest.fixture
def published(monkeypatch) -> Publishes:
    publishes = Publishes()
    monkeypatch.setattr(outbox, "signature", publishes.signature)
    return publishes


def accept(academy: Academy) -> SendRequest:
    """A send as the API accepts it (a text to every student's parent)."""
    data = SendInput(student_ids=[s.id for s in academy.students], body="#{이름} 학생 안내입니다.")
    response = send_request_create(tenant=academy.tenant, user=academy.user, data=data, idempotency_key=None)
    assert response["dispatched"] is True
    return SendRequest.objects.get(id=response["id"])


def run_dispatch(send_request: SendRequest) -> None:
    express.deliver(send_request.id, task_id=f"test-{send_request.id}")


def statuses(send_request: SendRequest) -> set[str]:
    return set(send_request.messages.values_list("status", flat=True))


def test_sends_while_a_dispatch_is_due_publish_nothing_and_that_dispatch_sends_them_all(published, sandbox,
                                                                                         settings):
    settings.MESSAGING_SHARED_GROUP_WINDOW_MS = 0
    academy = make_academy(students=2)
    first, second, third = accept(academy), accept(academy), accept(academy)

    assert published == [(first.id, INTERACTIVE_QUEUE)]
    # Each counts as dispatched when accepted: the relay's "lost" rule watches it from then on.
    assert SendRequest.objects.filter(dispatched__isnull=True).count() == 0

    run_dispatch(first)

    for send_request in (first, second, third):
        assert statuses(send_request) == {MessageStatus.ACCEPTED}
    assert sandbox.accepted_total == 6
    assert sum(sandbox.request_counts()["send_group"].values()) == 1
    # The dispatch cleared the mark as it started: the next send publishes its own.
    fourth = accept(academy)
    assert published == [(first.id, INTERACTIVE_QUEUE), (fourth.id, INTERACTIVE_QUEUE)]


def test_a_mark_left_by_a_lost_dispatch_expires(published, sandbox, settings, clock):
    academy = make_academy(students=1)
    accept(academy)
    accept(academy)
    assert len(published) == 1

    clock.set(clock.now() + timedelta(seconds=settings.MESSAGING_DISPATCH_COALESCE_SECONDS + 1))
    third = accept(academy)

    assert published[-1] == (third.id, INTERACTIVE_QUEUE) and len(published) == 2


def test_a_failed_publish_leaves_no_mark(published, sandbox):
    academy = make_academy(students=1)
    published.fail = True
    response = send_request_create(tenant=academy.tenant, user=academy.user, idempotency_key=None,
                                   data=SendInput(student_ids=[academy.students[0].id], body="안내"))
    assert response["dispatched"] is False
    assert PendingDispatch.objects.get(queue=INTERACTIVE_QUEUE).pending_until is None

    second = accept(academy)

    assert published == [(second.id, INTERACTIVE_QUEUE)]


def test_a_request_left_out_of_a_full_group_gets_the_next_dispatch(published, sandbox, settings):
    settings.MESSAGING_SHARED_GROUP_WINDOW_MS = 0
    settings.MESSAGING_SHARED_GROUP_MAX_MESSAGES = 3
    sandbox.register_sender(OTHER_SENDER)
    first = accept(make_academy(students=3))
    second = accept(make_academy(students=3, messaging_sender=OTHER_SENDER))
    assert published == [(first.id, INTERACTIVE_QUEUE)]

    run_dispatch(first)

    assert statuses(first) == {MessageStatus.ACCEPTED}
    assert statuses(second) == {MessageStatus.PENDING}
    assert published[-1] == (second.id, INTERACTIVE_QUEUE) and len(published) == 2

    run_dispatch(second)

    assert statuses(second) == {MessageStatus.ACCEPTED}
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for r in (first, second) for m in r.messages.all()}


def test_requests_of_a_lost_dispatch_are_published_again_by_the_relay(published, sandbox, settings, clock):
    settings.MESSAGING_SHARED_GROUP_WINDOW_MS = 0
    academy = make_academy(students=2)
    first, second = accept(academy), accept(academy)
    assert len(published) == 1  # and SQS loses it: no dispatch ever runs
    assert outbox.relay_undispatched() == 0  # nothing looks lost yet

    later = clock.now() + timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS + 60)
    clock.set(later)
    # The queue's consumers have started tasks published after both (queue_progress.py).
    QueueProgress.objects.create(queue=INTERACTIVE_QUEUE, head_published_at=later, updated=later)

    assert outbox.relay_undispatched() == 2
    assert {request_id for request_id, _ in published[1:]} == {first.id, second.id}
    for send_request in (first, second):
        run_dispatch(send_request)

    assert statuses(first) == statuses(second) == {MessageStatus.ACCEPTED}
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for r in (first, second) for m in r.messages.all()}
