"""Which chunks a small-send task carries (messaging/pipeline/express.py, _take_waiting)."""

import pytest

from harness.academies import make_academy
from messaging.models import Chunk, MessageStatus
from messaging.pipeline import delivery, express
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_task_carries_the_chunks_it_made_not_those_another_task_made_a_moment_before(monkeypatch):
    academy = make_academy(students=2)
    other, own = send(academy, publish=False), send(academy, publish=False)
    # Another task took `other` and committed: its chunk exists, its lock is gone. This task
    # read the waiting messages a moment earlier, so it still counts `other` as waiting.
    (others_chunk,) = delivery.chunk_due_messages([other.id])
    monkeypatch.setattr(express, "_waiting", lambda messages: messages.filter(status=MessageStatus.PENDING))

    carried, left_waiting = express._take_waiting(own.id)

    (own_chunk,) = Chunk.objects.filter(send_request=own).values_list("id", flat=True)
    assert carried == [own_chunk]
    assert others_chunk not in carried and left_waiting is None


def test_a_task_carries_its_own_requests_unfinished_chunks_left_by_a_crashed_try():
    academy = make_academy(students=2)
    own = send(academy, publish=False)
    (left_behind,) = delivery.chunk_due_messages([own.id])

    carried, _ = express._take_waiting(own.id)

    assert carried == [left_behind]
