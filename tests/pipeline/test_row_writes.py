"""How many times the pipeline writes a message's row on the happy path (issue 17).

Every write of a row is a new row version in PostgreSQL: its WAL, its index entries, its
vacuum later. A broadcast's message that goes out is written twice: inserted by the API
already in its chunk, and updated once, to `accepted`. Where it stands in between (credit
held, being sent) is its chunk's state (messaging/models.py, UNSENT_STATUSES), not the row's.
A small send's message is written once more: its dispatch puts it into a chunk shared with
its neighbours' (messaging/pipeline/express.py).

The writes are counted by a trigger, row by row, whatever statement made them (a set-based
UPDATE of a thousand rows is a thousand row writes).
"""

from collections import Counter
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

from harness.academies import make_academy
from messaging.models import Message, MessageStatus
from messaging.pipeline import delivery, express, one_hop
from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db

# Insert + the update to `accepted`.
MAX_WRITES_PER_MESSAGE = 2
# A small send's rows are put into their chunk by the dispatch that groups them with their
# neighbours (messaging/pipeline/express.py): one write more.
MAX_WRITES_PER_SMALL_SEND_MESSAGE = 3

_LOG = "test_message_row_writes"
_TRIGGERS = {
    "sqlite": [
        f"CREATE TABLE {_LOG} (message_id integer)",
        f"CREATE TRIGGER {_LOG}_insert AFTER INSERT ON messaging_message "
        f"BEGIN INSERT INTO {_LOG} VALUES (NEW.id); END",
        f"CREATE TRIGGER {_LOG}_update AFTER UPDATE ON messaging_message "
        f"BEGIN INSERT INTO {_LOG} VALUES (NEW.id); END",
    ],
    "postgresql": [
        f"CREATE TABLE {_LOG} (message_id bigint)",
        f"CREATE FUNCTION {_LOG}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN INSERT INTO {_LOG} VALUES (NEW.id); RETURN NEW; END $$",
        f"CREATE TRIGGER {_LOG} AFTER INSERT OR UPDATE ON messaging_message "
        f"FOR EACH ROW EXECUTE FUNCTION {_LOG}()",
    ],
}


@pytest.fixture
def row_writes(db, sandbox) -> Iterator[Counter]:
    """Writes per message id, filled in as they happen (read it after the pipeline ran).
    The table and its triggers go with the test's rollback."""
    with connection.cursor() as cursor:
        for statement in _TRIGGERS[connection.vendor]:
            cursor.execute(statement)
    writes: Counter = Counter()
    yield writes


def _count(writes: Counter) -> Counter:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT message_id, count(*) FROM {_LOG} GROUP BY message_id")
        writes.update(dict(cursor.fetchall()))
    return writes


@override_settings(MESSAGING_INTERACTIVE_MAX_RECIPIENTS=0, MESSAGING_CHUNK_SIZE=2)
def test_a_broadcast_message_is_written_twice(row_writes):
    academy = make_academy(students=5)
    send_request = send(academy, publish=False)
    assert send_request.queue == BULK_QUEUE
    messages = Message.objects.filter(send_request=send_request)
    assert not messages.filter(chunk__isnull=True).exists(), "written into their chunks by the API"

    chunk_ids = delivery.split_into_chunks(send_request.id)
    assert len(chunk_ids) == 3
    for chunk_id in chunk_ids:
        assert one_hop.carry([chunk_id], task_id="t").handed_over == ()

    assert set(messages.values_list("status", flat=True)) == {MessageStatus.ACCEPTED}
    writes = _count(row_writes)
    assert {m.id: writes[m.id] for m in messages} == {m.id: MAX_WRITES_PER_MESSAGE for m in messages}


@override_settings(MESSAGING_SHARED_GROUP_WINDOW_MS=0)
def test_a_small_send_message_is_written_three_times(row_writes):
    academy = make_academy(students=3)
    send_request = send(academy, publish=False)
    assert send_request.queue == INTERACTIVE_QUEUE

    assert express.deliver(send_request.id, task_id="t").handed_over == ()

    messages = Message.objects.filter(send_request=send_request)
    assert set(messages.values_list("status", flat=True)) == {MessageStatus.ACCEPTED}
    writes = _count(row_writes)
    assert {m.id: writes[m.id] for m in messages} == {m.id: MAX_WRITES_PER_SMALL_SEND_MESSAGE for m in messages}
