"""Small send requests in one task, sharing Solapi groups.

A send request of at most MESSAGING_INTERACTIVE_MAX_RECIPIENTS recipients (the interactive
queue) is carried from start to finish by its dispatch task: reserve, send and finalize are
called in order, the same idempotent steps under the same guards as the chunk chain
(messaging/pipeline/delivery.py), without three more round trips through SQS, each to the
back of the queue. Big broadcasts keep the chain.

Small requests share Solapi groups. The task waits until its request is
MESSAGING_SHARED_GROUP_WINDOW_MS old, then takes every small request waiting to start (its
own first) up to MESSAGING_SHARED_GROUP_MAX_MESSAGES messages, and sends them in one group.
A request another task has taken is skipped (its row is locked: SKIP LOCKED). Under a backlog
the window has long passed when a task starts, so it waits for nothing and takes what queued up
behind it: the deeper the queue, the bigger the groups and the fewer the calls.

Requests arriving while a dispatch is due publish none of their own (outbox.request_dispatch):
so the task clears its queue's mark before it looks (due_marks.clear), and when it
leaves requests waiting (its group is full) it asks for the next dispatch.

The chunks are carried as every one-hop chunk is (messaging/pipeline/one_hop.py): what
cannot finish here goes on through the chain.
docs/exactly-once.md, "Small sends in one hop", says why this stays exactly once.
"""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from messaging.models import Chunk, ChunkStatus, Message, MessageStatus, SendRequest
from messaging.pipeline import delivery, due_marks, one_hop, outbox
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from project import clock

logger = logging.getLogger(__name__)

# The most small requests one task looks at; the message limit usually binds first.
MAX_REQUESTS_PER_GROUP = 500


def deliver(send_request_id: int, *, task_id: str) -> one_hop.HopOutcome:
    """Reserve, send and finalize the request's due messages, together with the small
    requests waiting beside it. Raises nothing a step raised: what could not finish is in
    `handed_over`."""
    _wait_for_window(send_request_id)
    due_marks.clear(INTERACTIVE_QUEUE)
    chunk_ids, left_waiting = _take_waiting(send_request_id)
    if left_waiting:
        outbox.request_dispatch(SendRequest.objects.only("id", "queue", "dispatched").get(id=left_waiting))
    return one_hop.carry(chunk_ids, task_id=task_id)


def _wait_for_window(send_request_id: int) -> None:
    """Let requests arriving just after this one join its group. Only a request still
    waiting to start waits, and only until it is as old as the window: under a backlog,
    not at all."""
    window = settings.MESSAGING_SHARED_GROUP_WINDOW_MS / 1000
    if window <= 0 or not _waiting(Message.objects.filter(send_request_id=send_request_id)).exists():
        return
    created = SendRequest.objects.values_list("created", flat=True).get(id=send_request_id)
    left = window - (clock.now() - created).total_seconds()
    if left > 0:
        time.sleep(min(left, window))


def _waiting(messages):
    """Messages due to start: pending, in no chunk yet, not deferred to a later time."""
    return messages.filter(status=MessageStatus.PENDING, chunk__isnull=True).exclude(not_before__gt=clock.now())


def _take_waiting(send_request_id: int) -> tuple[list[int], int | None]:
    """Chunk this request and the small requests waiting beside it, up to one group's worth
    of messages; return the chunks this task carries (the ones it made now, and this request's
    own unfinished chunks: a crashed earlier try of this task left them), and a request left
    waiting for want of room (None when none was), which needs a dispatch of its own."""
    budget = settings.MESSAGING_SHARED_GROUP_MAX_MESSAGES
    waiting = (_waiting(Message.objects.filter(send_request__queue=INTERACTIVE_QUEUE))
               .values("send_request_id").annotate(n=Count("id")).order_by("send_request_id"))
    sizes = {row["send_request_id"]: row["n"] for row in waiting[:MAX_REQUESTS_PER_GROUP]}
    with transaction.atomic():
        # Rows another task has locked are being taken by it.
        free = set(SendRequest.objects.select_for_update(skip_locked=True)
                   .filter(id__in=[send_request_id, *sizes]).values_list("id", flat=True))
        taken: list[int] = []
        for request_id in [send_request_id, *(i for i in sizes if i != send_request_id)]:
            if request_id not in free or (taken and budget < sizes.get(request_id, 0)):
                continue
            budget -= sizes.get(request_id, 0)
            taken.append(request_id)
        new = delivery.chunk_due_messages(taken)
    own = [send_request_id] if send_request_id in free else []
    if len(taken) > 1:
        logger.info("express_group send_request=%s requests=%s", send_request_id, len(taken))
    # Requests this task locked but had no room for; the ones another task locked are that
    # task's to take. More may wait beyond the requests looked at.
    left = [i for i in sizes if i in free and i not in taken]
    if not left and len(sizes) == MAX_REQUESTS_PER_GROUP:
        left = [send_request_id]
    return _carried(new, own), (left[0] if left else None)


def _carried(new: list[int], own: list[int]) -> list[int]:
    """The chunks this task made, and every unfinished chunk of its own request. Not the
    QUEUED chunks of the other requests it locked: a request whose lock another task had just
    released was chunked by that task, which carries them (taking them too only handed them
    to the chain once the other had sent them)."""
    mine = Chunk.objects.filter(send_request_id__in=own).exclude(status=ChunkStatus.FINALIZED)
    return sorted({*new, *mine.values_list("id", flat=True)})
