"""The send lease and its fence, step by step in one process; the account-wide request rate.

The same task can run twice at once (SQS hands one message to two consumers, or brings it
back while it still runs): the lease belongs to an execution, not a task id, and whatever
an execution that lost its lease tries to write is refused. tests/drills/ prove the same
with real workers, publishing every step twice."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from harness.academies import make_academy
from messaging.models import Chunk, ChunkStatus, DeliveryAttempt, MessageStatus, RequestRate, SolapiOperation
from messaging.pipeline import delivery
from messaging.solapi.errors import SolapiRateLimited, SolapiServerError
from messaging.solapi.rate_limit import JITTER_ALLOWANCE, AccountRateLimiter
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db


@pytest.fixture
def chunk_id(db) -> int:
    academy = make_academy()
    send_request = send(academy, publish=False)
    (chunk_id,) = delivery.split_into_chunks(send_request.id)
    delivery.reserve_chunk(chunk_id)
    return chunk_id


def test_a_second_copy_of_the_same_task_waits_for_the_lease(chunk_id):
    first = delivery.Lease(chunk_id, task_id="same-task-id")
    assert delivery._claim(first) is not None

    with pytest.raises(delivery.ChunkBusy):
        delivery._claim(delivery.Lease(chunk_id, task_id="same-task-id"))

    delivery.release_lease(first)
    assert delivery._claim(delivery.Lease(chunk_id, task_id="same-task-id")) is not None


def test_an_execution_that_lost_its_lease_changes_nothing(chunk_id):
    slow = delivery.Lease(chunk_id, task_id="t")
    delivery._claim(slow)
    # Its lease runs out (it was stuck), and another execution takes the chunk over.
    Chunk.objects.filter(id=chunk_id).update(lease_until=timezone.now() - timedelta(seconds=1))
    successor = delivery.Lease(chunk_id, task_id="t")
    delivery._claim(successor)

    for late_write in (
        lambda: delivery._fenced_all([slow], solapi_group_id="G4V-late"),
        lambda: delivery.record_transient_failure(slow, SolapiServerError("503")),
        lambda: delivery.give_up_sending(slow, "transient_exhausted", "late"),
        lambda: delivery._mark_sent([slow]),
    ):
        with pytest.raises(delivery.LeaseLost):
            late_write()
    with pytest.raises(delivery.LeaseLost), delivery._attempt([slow], SolapiOperation.SEND_GROUP):
        pytest.fail("an execution without the lease must not call Solapi")

    chunk = Chunk.objects.get(id=chunk_id)
    assert (chunk.status, chunk.solapi_group_id, chunk.transient_failures, chunk.lease_token) == (
        ChunkStatus.SENDING, "", 0, successor.token)
    assert {m.shown_status for m in chunk.messages.all()} == {MessageStatus.SENDING}
    assert not DeliveryAttempt.objects.exists()
    # Releasing a lost lease leaves the successor's alone.
    delivery.release_lease(slow)
    assert Chunk.objects.get(id=chunk_id).lease_token == successor.token


class FakeClock:
    def __init__(self):
        self.now = 1_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_the_account_rate_spaces_calls_and_hands_long_waits_back(db):
    clock = FakeClock()
    limiter = AccountRateLimiter(5, clock=clock.time, sleep=clock.sleep)
    interval = JITTER_ALLOWANCE / 5

    for _ in range(3):
        limiter.acquire()
    # Three calls at one moment: the first goes now, the others one interval apart.
    assert clock.slept == pytest.approx([interval, 2 * interval])

    # Another process (same row) sees the same pace.
    other = AccountRateLimiter(5, clock=clock.time, sleep=clock.sleep)
    while RequestRate.objects.get().next_slot - clock.now <= 2.0:
        other.acquire()
    with pytest.raises(SolapiRateLimited) as raised:
        other.acquire()
    assert 2.0 < raised.value.retry_after <= 2.0 + interval

    # Once time has moved on, calls go at once again.
    clock.now += 10
    clock.slept.clear()
    limiter.acquire()
    assert clock.slept == []


@override_settings(SOLAPI_MAX_REQUESTS_PER_SECOND=0)
def test_a_rate_of_zero_turns_the_limiter_off():
    from messaging.solapi.client import _account_limiter

    assert _account_limiter() is None
