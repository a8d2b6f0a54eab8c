"""Fair shares of the workers between academies' broadcasts (messaging/pipeline/pacing.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from harness.academies import make_academy
from harness.sqs import task_of
from messaging.models import (
    Chunk,
    ChunkStatus,
    Message,
    MessageStatus,
    QueueProgress,
    SendRequest,
    WorkerHeartbeat,
)
from messaging.pipeline import delivery, outbox, pacing
from messaging.pipeline.queues import BULK_QUEUE, WorkerQueues
from messaging.pipeline.tasks import resume_stale_chunks
from project import clock
from tests.pipeline.conftest import assert_books_balance, send, wait_settled

QUEUE = f"{BULK_QUEUE}-pacing"


def _broadcast(academy, chunks: int) -> SendRequest:
    send_request = SendRequest.objects.create(tenant=academy.tenant, mode="sms", send_to="student", body="안내",
                                              queue=BULK_QUEUE, estimated_cost=0)
    for index in range(chunks):
        Chunk.objects.create(send_request=send_request, index=index)
    return send_request


def _workers(*concurrencies: int) -> None:
    for number, concurrency in enumerate(concurrencies):
        WorkerHeartbeat.objects.create(hostname=f"w{number}", pid=number + 1, started=clock.now(),
                                       last_seen=clock.now(), concurrency=concurrency)


@pytest.mark.django_db
def test_the_capacity_counts_only_the_slots_that_take_chunks():
    _workers(2)
    WorkerHeartbeat.objects.create(hostname="interactive@test", pid=9, started=clock.now(), last_seen=clock.now(),
                                   concurrency=4, queues=WorkerQueues.INTERACTIVE)
    WorkerHeartbeat.objects.create(hostname="bulk@test", pid=10, started=clock.now(), last_seen=clock.now(),
                                   concurrency=3, queues=WorkerQueues.BULK)

    assert pacing.worker_capacity() == 5  # 2 (both queues) + 3 (bulk); the interactive worker's 4 take none


@pytest.mark.django_db
@override_settings(MESSAGING_PACING_DEPTH=2)
def test_one_academy_gets_every_slot_and_two_share_them():
    _workers(2, 2)
    first = _broadcast(make_academy(), chunks=20)

    assert len(pacing.claim_chunks_to_publish(first.id)) == 8  # 2 workers × 2 slots × depth 2
    assert pacing.claim_chunks_to_publish(first.id) == []  # its share is on the queue

    second = _broadcast(make_academy(), chunks=20)
    # Two academies sending: 4 each. The first has 8 out, so it publishes nothing more
    # until 5 of them have finished; the second gets its 4 at once.
    assert len(pacing.claim_chunks_to_publish(second.id)) == 4
    Chunk.objects.filter(id__in=list(first.chunks.filter(published__isnull=False).values_list("id", flat=True)[:4])
                         ).update(status=ChunkStatus.FINALIZED)
    assert pacing.claim_chunks_to_publish(first.id) == []
    Chunk.objects.filter(id__in=list(first.chunks.filter(published__isnull=False, status=ChunkStatus.QUEUED)
                                     .values_list("id", flat=True)[:1])).update(status=ChunkStatus.FINALIZED)
    assert len(pacing.claim_chunks_to_publish(first.id)) == 1


@pytest.mark.django_db
def test_a_dead_worker_counts_for_nothing_and_a_chunk_waiting_its_turn_is_not_stale(settings):
    settings.MESSAGING_PACING_DEPTH = 2
    WorkerHeartbeat.objects.create(hostname="gone", pid=1, started=clock.now(), concurrency=8,
                                   last_seen=clock.now() - timedelta(hours=1))
    assert pacing.worker_capacity() == 1
    send_request = _broadcast(make_academy(), chunks=5)
    claimed = pacing.claim_chunks_to_publish(send_request.id)

    Chunk.objects.update(updated=clock.now() - timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS + 1))
    # Published but idle: stale (stuck or waiting in its queue). Never published (waiting for
    # the share): not stale at all, and beat's safety net publishes it when there is room.
    sweep = delivery.stale_chunks()
    assert len(sweep.stuck) + sum(sweep.waiting.values()) == len(claimed) == 2  # capacity 1 × depth 2
    assert pacing.requests_with_room() == [send_request.id]


@pytest.mark.integration
@pytest.mark.django_db
@override_settings(MESSAGING_INTERACTIVE_MAX_RECIPIENTS=0, MESSAGING_CHUNK_SIZE=2, MESSAGING_PACING_DEPTH=2)
def test_a_broadcast_whose_dispatch_is_lost_is_published_by_the_pacing_sweep(own_queues, broker, settings):
    bulk, interactive = own_queues("lost-dispatch")
    broadcast = send(make_academy(students=5))
    assert [task_of(m)[0] for m in broker.drain(interactive)] == ["messaging.dispatch"]  # lost with its queue
    # The API wrote its messages into their chunks: none is left outside one, none published yet.
    chunks = Chunk.objects.filter(send_request=broadcast)
    assert chunks.count() == 3 and not Message.objects.filter(send_request=broadcast, chunk__isnull=True).exists()
    assert not chunks.filter(published__isnull=False).exists()

    # So the outbox relay owes it nothing, however long ago and far behind its queues it was...
    SendRequest.objects.filter(id=broadcast.id).update(
        dispatched=clock.now() - timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS + 60))
    for queue in (bulk, interactive):
        QueueProgress.objects.create(queue=queue, head_published_at=clock.now(), updated=clock.now())
    assert outbox.relay_undispatched() == 0
    # ... and beat's pacing sweep publishes its chunks, as many as its share (no live worker: 1 × depth 2).
    resume_stale_chunks()

    published = sorted(chunks.filter(published__isnull=False).values_list("id", flat=True))
    assert len(published) == 2
    assert sorted(task_of(m) for m in broker.drain(bulk)) == [("messaging.deliver_chunk", [i]) for i in published]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_paced_broadcast_never_has_more_than_its_share_out_and_every_message_goes_once(sandbox, start_worker,
                                                                                          settings):
    settings.MESSAGING_PACING_DEPTH = 1  # as the worker's, so that fair_share() below is what it used
    start_worker("pacing", env={"MESSAGING_CHUNK_SIZE": "5", "MESSAGING_PACING_DEPTH": "1"},
                 extra_args=("-Q", QUEUE))
    academy = make_academy(students=60)

    messages = wait_settled(send(academy, queue=QUEUE))

    assert {m.status for m in messages} == {MessageStatus.ACCEPTED}
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    chunks = list(Chunk.objects.filter(send_request=messages[0].send_request))
    assert len(chunks) == 12 and all(c.status == ChunkStatus.FINALIZED and c.published for c in chunks)
    # Out at once: published, not yet finalized (a chunk's last write is its finalize).
    events = sorted([(c.published, 1) for c in chunks] + [(c.updated, -1) for c in chunks])
    out, most = 0, 0
    for _, change in events:
        out += change
        most = max(most, out)
    # Never more than the share: two finalizes at once take turns to claim (pacing.py). The share
    # is the session worker's slots if its heartbeat was alive during the run (this worker's -Q
    # is no bulk queue), else 1; read at the end, it is the largest the run can have used.
    assert 1 <= most <= pacing.fair_share()
    assert Message.objects.filter(send_request=messages[0].send_request).count() == 60
    assert_books_balance(academy, spent=60 * Decimal("13"))
