"""Publishing a send request's one dispatch task, honestly.

The request is committed first; publishing comes after. If SQS is unreachable the
request stays undispatched and beat publishes it again (relay_undispatched), so
a broker outage delays messages but loses none.

Small requests share their dispatch. One dispatch on the interactive queue sweeps every
small request waiting there (messaging/pipeline/express.py), so a send accepted while one is
due to start publishes nothing (request_dispatch): under the everyday load most sends did, and
each publish was an SQS round trip in the API request and a no-op task in the worker. Why no
send is left without a dispatch:

- a send looks at the queue's mark after its rows are committed, and the dispatch clears it
  before it looks for waiting requests (messaging/pipeline/due_marks.py says why that is enough);
- a sweep that leaves requests waiting (its group full) publishes the next dispatch itself;
- a mark expires after MESSAGING_DISPATCH_COALESCE_SECONDS (a dispatch lost in SQS never
  clears it), and a request it covered counts as dispatched when it was accepted, so the relay
  below publishes it again if its messages are still waiting once its queue has moved past it.

The task is published by its name: the tasks module calls into this one, and this
one does not import it back.
"""

import logging
from datetime import timedelta

from celery import signature
from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q

from messaging.models import Message, MessageStatus, SendRequest
from messaging.pipeline import due_marks, queue_progress
from messaging.pipeline.queues import INTERACTIVE_QUEUE, dispatch_queue, lanes_dispatched_on
from project import clock

logger = logging.getLogger(__name__)

DISPATCH_TASK = "messaging.dispatch"
# How many send requests one beat run publishes at most.
BATCH = 500
# The queues whose requests one dispatch sweeps together (express.py): a big request's
# dispatch chunks that request alone, so each needs its own.
COALESCED_QUEUES = (INTERACTIVE_QUEUE,)


def request_dispatch(send_request: SendRequest) -> bool:
    """A newly accepted request's dispatch: published, unless its queue coalesces dispatches
    and one published for it is still due to start (that one's sweep takes this request).
    Returns whether a dispatch covers the request. Call it after the request is committed.

    On a coalescing queue the request's row is written before publishing, if at all: once
    published, the dispatch locks the row for its sweep (express.py), and an UPDATE after the
    publish waited for that sweep under the everyday load. The API's send sets `dispatched`
    with its rows, so a send covered by a due dispatch writes nothing here."""
    if send_request.queue not in COALESCED_QUEUES:
        return publish_dispatch(send_request)
    if not due_marks.claim(send_request.queue):
        if send_request.dispatched is None:
            SendRequest.objects.filter(id=send_request.id).update(dispatched=clock.now())
        return True
    SendRequest.objects.filter(id=send_request.id).update(
        dispatched=clock.now(), dispatch_attempts=F("dispatch_attempts") + 1, dispatch_error="")
    error = publish_task(send_request)
    if not error:
        return True
    # Nothing was published: the next send must not count on it, and the relay publishes this
    # one as never dispatched.
    due_marks.clear(send_request.queue)
    SendRequest.objects.filter(id=send_request.id).update(dispatched=None, dispatch_error=error)
    return False


def publish_dispatch(send_request: SendRequest) -> bool:
    """Publish dispatch(send_request.id) (publish_task: on its dispatch queue), and record the
    try on the request. Returns whether it was published."""
    error = publish_task(send_request)
    if error:
        SendRequest.objects.filter(id=send_request.id).update(dispatch_attempts=F("dispatch_attempts") + 1,
                                                              dispatch_error=error)
        return False
    SendRequest.objects.filter(id=send_request.id).update(
        dispatched=clock.now(), dispatch_attempts=F("dispatch_attempts") + 1, dispatch_error=""
    )
    return True


def publish_task(send_request: SendRequest) -> str:
    """Publish dispatch(send_request.id) on its dispatch queue (queues.dispatch_queue: the
    interactive one, a broadcast's too), recording nothing: "" when published, else the error.
    Every publish goes through here (tests hold publishing back here)."""
    try:
        # No publish retries in the request: beat's relay_undispatched is the retry.
        signature(DISPATCH_TASK, args=(send_request.id,)).apply_async(queue=dispatch_queue(send_request.queue),
                                                                       retry=False)
    except Exception as exc:  # kombu and botocore raise many types for "broker unreachable"
        logger.warning("dispatch_publish_failed send_request=%s error=%s", send_request.id, type(exc).__name__)
        return f"{type(exc).__name__}: {exc}"[:300]
    return ""


def relay_undispatched() -> int:
    """The outbox relay: publish requests whose dispatch never reached SQS, and those whose
    dispatch reached SQS but never ran (lost with its queue: a queue deleted, an SQS endpoint
    back empty). Those still have due messages outside any chunk long after the publish, and
    the queue their dispatch went to (queues.dispatch_queue: the interactive one, not a
    broadcast's lane) has started tasks published after it (messaging/pipeline/queue_progress.py):
    a dispatch merely waiting in a backlog is not published twice (a second dispatch would
    publish the chains of its queued chunks again). Dispatching twice is harmless otherwise
    (split_into_chunks takes only unchunked messages, under the request's row lock).
    Returns how many were published."""
    now = clock.now()
    cutoff = now - timedelta(seconds=settings.MESSAGING_REDISPATCH_AFTER_SECONDS)
    lost_cutoff = now - timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS)
    unchunked = Message.objects.filter(send_request=OuterRef("pk"), status=MessageStatus.PENDING,
                                       chunk__isnull=True).exclude(not_before__gt=now)
    lost = Q(Exists(unchunked), dispatched__lte=lost_cutoff) & queue_progress.overtaken(
        moment="dispatched", queue="queue", rows_on=lanes_dispatched_on)
    owed = Q(dispatched__isnull=True, created__lte=cutoff) | lost
    waiting = SendRequest.objects.filter(owed)[:BATCH]
    return sum(publish_dispatch(send_request) for send_request in waiting)


def release_due_deferred() -> int:
    """Dispatch again the send requests whose held-back messages are now due: night-deferred
    ads (from 08:00 KST, in waves) and scheduled sends (send_at); dispatch chunks only the
    messages that are due.

    Each wave is released once: only messages that fell due after the request's last
    publish count, so a second beat run (or a second beat) publishes nothing more. A
    release whose dispatch is lost in SQS is published again by relay_undispatched."""
    now = clock.now()
    due = SendRequest.objects.filter(
        Q(dispatched__isnull=True) | Q(messages__not_before__gt=F("dispatched")),
        messages__status=MessageStatus.PENDING, messages__chunk__isnull=True, messages__not_before__lte=now,
    ).distinct()[:BATCH]
    return sum(publish_dispatch(send_request) for send_request in due)
