"""Every send's dispatch goes on the interactive queue, a broadcast's too; a broadcast's chunks
go on the bulk queue (messaging/pipeline/queues.py, dispatch_queue; issue 17).

On the bulk queue a broadcast's dispatch waited for a slot behind another academy's chunks, and
the chunk that freed the slot published that academy's next chunk ahead of this broadcast's first.
"""

import pytest
from django.test import override_settings

from harness.academies import make_academy
from harness.sqs import task_of
from messaging.models import Chunk
from messaging.pipeline.tasks import dispatch
from tests.pipeline.conftest import send

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@override_settings(MESSAGING_INTERACTIVE_MAX_RECIPIENTS=1, MESSAGING_CHUNK_SIZE=2, MESSAGING_PACING_DEPTH=2)
def test_a_broadcasts_dispatch_goes_on_the_interactive_queue_and_its_chunks_on_the_bulk_queue(own_queues, broker):
    bulk, interactive = own_queues("routes")
    broadcast = send(make_academy(students=5))
    assert broadcast.queue == bulk  # the lane of its messages
    assert broker.drain(bulk) == []
    assert [task_of(m) for m in broker.drain(interactive)] == [("messaging.dispatch", [broadcast.id])]

    dispatch(broadcast.id)  # as the interactive worker runs it

    chunks = Chunk.objects.filter(send_request=broadcast)
    assert chunks.count() == 3
    out = sorted(chunks.filter(published__isnull=False).values_list("id", flat=True))
    assert len(out) == 2  # no live worker: a capacity of 1 × MESSAGING_PACING_DEPTH
    assert broker.drain(interactive) == []
    assert sorted(task_of(m) for m in broker.drain(bulk)) == [("messaging.deliver_chunk", [i]) for i in out]

    small = send(make_academy(students=1))
    assert small.queue == interactive
    assert broker.drain(bulk) == []
    assert [task_of(m) for m in broker.drain(interactive)] == [("messaging.dispatch", [small.id])]
