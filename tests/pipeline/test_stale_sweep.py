"""The stale-chunk sweep tells a stuck chunk (its step lost) from a waiting one (its step
still in a long queue) by how far each queue's consumers have got, and never publishes a
waiting chunk's chain again (messaging/pipeline/queue_progress.py)."""

from datetime import timedelta

import pytest

from harness.waiting import wait_until
from messaging.models import Chunk, MessageStatus, QueueProgress
from messaging.pipeline import delivery, pacing, queue_progress
from messaging.pipeline.queue_progress import ORDER_SLACK, longest_delay, publish_probes
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from messaging.pipeline.tasks import chunk_pipeline, resume_stale_chunks
from tests.pipeline.conftest import send, statuses, wait_settled

# A queue of these tests' own: no worker consumes it until a test starts one.
QUEUE = f"{INTERACTIVE_QUEUE}-stale-sweep"


def _idle_chunk(academy, settings, clock, **fields) -> Chunk:
    """A chunk of a 3-message send on QUEUE that last moved at the clock's now, and the clock
    moved on past the stale threshold."""
    send_request = send(academy, publish=False, queue=QUEUE)
    [chunk_id] = delivery.split_into_chunks(send_request.id)
    # Published, as a dispatch publishes it (messaging/pipeline/pacing.py): a chunk never published
    # is waiting for its academy's share, not stale.
    Chunk.objects.filter(id=chunk_id).update(updated=clock.now(), published=clock.now(), **fields)
    clock.freeze(clock.now() + timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS + 1))
    return Chunk.objects.get(id=chunk_id)


def _head(queue: str, moment) -> None:
    QueueProgress.objects.update_or_create(queue=queue, defaults={"head_published_at": moment, "updated": moment})


@pytest.mark.django_db(transaction=True)
def test_a_chunk_is_waiting_until_its_queue_has_passed_the_moment_it_last_moved(academy, settings, clock):
    chunk = _idle_chunk(academy, settings, clock)
    idle_since = chunk.updated

    no_head = delivery.stale_chunks()
    _head(QUEUE, idle_since + ORDER_SLACK - timedelta(seconds=1))
    within_the_slack = delivery.stale_chunks()
    _head(QUEUE, idle_since + ORDER_SLACK + timedelta(seconds=1))
    passed = delivery.stale_chunks()

    assert (no_head.stuck, no_head.waiting) == ([], {QUEUE: 1})
    assert (within_the_slack.stuck, within_the_slack.waiting) == ([], {QUEUE: 1})
    assert ([c.id for c in passed.stuck], passed.waiting) == ([chunk.id], {})
    assert passed.stuck[0].first_step == "reserve"


@pytest.mark.django_db(transaction=True)
def test_a_chunk_that_backed_off_waits_out_the_longest_sqs_delay_too(academy, settings, clock):
    chunk = _idle_chunk(academy, settings, clock, transient_failures=1)
    idle_since = chunk.updated

    _head(QUEUE, idle_since + ORDER_SLACK + timedelta(seconds=1))
    its_retry_may_still_be_delayed = delivery.stale_chunks()
    _head(QUEUE, idle_since + longest_delay() + ORDER_SLACK + timedelta(seconds=1))
    passed = delivery.stale_chunks()

    assert its_retry_may_still_be_delayed.waiting == {QUEUE: 1}
    assert [c.id for c in passed.stuck] == [chunk.id]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_moves_the_head_of_the_queue_it_starts_tasks_from(worker, clock):
    published = clock.now()
    publish_probes([INTERACTIVE_QUEUE])

    head = wait_until(lambda: QueueProgress.objects.filter(queue=INTERACTIVE_QUEUE).first(),
                      what="the worker to record the queue's head")

    assert head.head_published_at >= published - timedelta(seconds=1)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_chain_waiting_in_its_queue_is_left_alone_and_runs_once(academy, sandbox, settings, clock,
                                                                  worker, start_worker, local_sqs):
    send_request = send(academy, publish=False, queue=QUEUE)
    [chunk_id] = delivery.split_into_chunks(send_request.id)
    # Published, as the pacing publishes it (it starts the chunk's idle time): else beat's pacing
    # sweep would publish it once more, as a chunk still waiting for its academy's share.
    Chunk.objects.filter(id=chunk_id).update(published=clock.now(), updated=clock.now())
    chunk_pipeline(chunk_id, queue=QUEUE).apply_async()  # its chain waits: nobody consumes QUEUE yet
    # The queue's consumers got as far as tasks published a while before the chunk last moved.
    _head(QUEUE, clock.now() - timedelta(minutes=5))
    clock.set(clock.now() + timedelta(seconds=settings.MESSAGING_STALE_CHUNK_SECONDS + 1))

    resumed = [resume_stale_chunks(), resume_stale_chunks()]
    client = local_sqs.client()
    queued = client.get_queue_attributes(QueueUrl=client.get_queue_url(QueueName=QUEUE)["QueueUrl"],
                                         AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    start_worker("late", extra_args=("-Q", QUEUE))
    messages = wait_settled(send_request)

    assert resumed == [0, 0]
    # Its one reserve step and the two sweeps' probes; a resumed chain would be one more.
    assert int(queued["ApproximateNumberOfMessages"]) == 3
    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}


def test_the_sweep_probes_the_queues_of_the_chunks_it_leaves_waiting(monkeypatch):
    probed = []
    monkeypatch.setattr(delivery, "stale_chunks", lambda: delivery.StaleChunks(stuck=[], waiting={QUEUE: 2}))
    monkeypatch.setattr(queue_progress, "publish_probes", lambda queues: probed.extend(queues))
    monkeypatch.setattr(pacing, "requests_with_room", list)

    assert resume_stale_chunks() == 0
    assert QUEUE in probed and INTERACTIVE_QUEUE in probed
