"""Platform faults pause everyone without charging anyone, and cost O(1) Solapi calls.

A bad key, a skewed clock or our empty Solapi balance would fail every message the
same way. The breaker opens on the first such error; while it is open the chunks wait
in SQS, and one probe per interval is all that reaches Solapi. Once the cause is fixed
the next probe succeeds and everything goes out, charged once.
"""

import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from billing.ledger import account_for
from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.models import BreakerState, Chunk, CircuitBreaker, Message, MessageStatus, shown_message_status
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from tests.api.conftest import client_for
from tests.pipeline.conftest import assert_books_balance, send, statuses, wait_settled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CHUNKS = 12
PROBES_WATCHED = 2
QUEUE = f"{INTERACTIVE_QUEUE}-breaker"


@pytest.fixture
def one_message_chunks(start_worker):
    """A worker of this test's own, sending each message as its own chunk (so N chunks
    would mean N failing calls without the breaker)."""
    # Every chunk on the queue at once (pacing would publish only a few): it is the breaker
    # that must keep the calls O(1).
    return start_worker("breaker", env={"MESSAGING_CHUNK_SIZE": "1", "MESSAGING_PACING_DEPTH": str(CHUNKS)},
                        extra_args=("-Q", QUEUE))


def _rejected_calls(sandbox, status: int) -> int:
    return sum(by_status.get(str(status), 0) for by_status in sandbox.request_counts().values())


def _breaker() -> CircuitBreaker:
    return CircuitBreaker.objects.get(name="solapi")


@pytest.mark.parametrize(
    ("break_it", "fix_it", "failure_class", "status"),
    [
        # The other platform faults take the same path through the breaker: make drill runs them.
        pytest.param(lambda sb: sb.set_credentials(api_key="ROTATED-KEY"),
                     lambda sb: sb.set_credentials(api_key=settings.SOLAPI_API_KEY), FailureClass.AUTH_FAILED, 403,
                     marks=pytest.mark.drill),
        (lambda sb: sb.set_credentials(api_key="ROTATED-KEY", auth_status=401),
         lambda sb: sb.set_credentials(api_key=settings.SOLAPI_API_KEY), FailureClass.AUTH_FAILED, 401),
        pytest.param(lambda sb: sb.set_clock_offset(20 * 60), lambda sb: sb.set_clock_offset(0),
                     FailureClass.CLOCK_SKEW, 403, marks=pytest.mark.drill),
        pytest.param(lambda sb: sb.set_platform_balance_exhausted(True),
                     lambda sb: sb.set_platform_balance_exhausted(False), FailureClass.PLATFORM_BALANCE, 402,
                     marks=pytest.mark.drill),
    ],
    ids=["bad-key-403", "bad-key-401", "clock-skew", "platform-balance"],
)
def test_a_platform_fault_pauses_sending_with_o1_calls_and_resumes_when_fixed(
        sandbox, transactional_db, one_message_chunks, break_it, fix_it, failure_class, status):
    academy = make_academy(students=CHUNKS)
    break_it(sandbox)

    send_request = send(academy, queue=QUEUE)
    wait_until(lambda: CircuitBreaker.objects.filter(state=BreakerState.OPEN).exists(), what="the breaker to open")
    opened = time.monotonic()
    # Paused, not failing: every chunk holds its credit and waits, none is charged.
    paused = Message.objects.filter(send_request=send_request).annotate(shown=shown_message_status())
    wait_until(lambda: paused.filter(shown__in=[MessageStatus.HELD, MessageStatus.SENDING]).count() == CHUNKS,
               what="every chunk to hold its credit and wait")
    # Watch it for a few probe intervals: each lets exactly one call through.
    first_calls = _rejected_calls(sandbox, status)
    wait_until(lambda: _rejected_calls(sandbox, status) >= first_calls + PROBES_WATCHED,
               what=f"{PROBES_WATCHED} probes of the open breaker")
    calls, watched = _rejected_calls(sandbox, status), time.monotonic() - opened

    assert set(paused.values_list("shown", flat=True)) <= {MessageStatus.HELD, MessageStatus.SENDING}
    assert sandbox.accepted_total == 0
    account = account_for(academy.tenant)
    assert (account.balance, account.held) == (Decimal("10000"), Decimal("13") * CHUNKS)
    assert _breaker().failure_class == failure_class
    # O(1): the first calls made before the breaker opened (one per pool process), then one
    # probe per interval of the time watched; not one call per chunk per retry.
    probes = int(watched // settings.MESSAGING_BREAKER_PROBE_SECONDS) + 1
    assert calls <= 2 + probes, (calls, watched)
    assert calls < CHUNKS

    fix_it(sandbox)
    messages = wait_settled(send_request, timeout=90)

    assert statuses(messages) == [MessageStatus.ACCEPTED] * CHUNKS
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    assert _breaker().state == BreakerState.CLOSED
    assert_books_balance(academy, spent=Decimal("13") * CHUNKS)


def test_past_the_maximum_pause_the_messages_fail_and_the_credit_is_released(sandbox, transactional_db,
                                                                            start_worker):
    start_worker("short-pause", env={"MESSAGING_PLATFORM_PAUSE_MAX_AGE": "4"}, extra_args=("-Q", QUEUE))
    academy = make_academy()
    sandbox.set_credentials(api_key="ROTATED-KEY")

    messages = wait_settled(send(academy, queue=QUEUE), timeout=90)

    assert statuses(messages) == [MessageStatus.FAILED] * 3
    assert {m.failure_class for m in messages} == {FailureClass.AUTH_FAILED}
    assert sandbox.accepted_total == 0
    assert_books_balance(academy, spent=Decimal("0"))


def test_messages_held_by_a_platform_pause_show_as_paused_with_the_reason(sandbox, transactional_db,
                                                                         one_message_chunks, admin_client):
    academy = make_academy(students=2)
    sandbox.set_credentials(api_key="ROTATED-KEY")

    send_request = send(academy, queue=QUEUE)
    wait_until(lambda: Chunk.objects.filter(send_request=send_request, paused_since__isnull=False).count() == 2,
               what="both chunks to be paused")

    # The status URL: paused, with the reason, not sending.
    detail = client_for(academy.user).get(f"/api/v1/messages/send-requests/{send_request.id}").json()
    assert {m["status"] for m in detail["messages"]} == {"paused"}
    assert {m["paused"]["reason_code"] for m in detail["messages"]} == {FailureClass.AUTH_FAILED}
    assert detail["paused"]["reason"] == str(FailureClass.AUTH_FAILED.label)
    assert (detail["counts"]["paused"], detail["counts"]["sending"], detail["counts"]["held"]) == (2, 0, 0)
    # The admin's message list says the same.
    page = admin_client.get(reverse("admin:messaging_message_changelist")).content.decode()
    assert page.count(f"paused: {FailureClass.AUTH_FAILED.label}") == 2

    sandbox.set_credentials(api_key=settings.SOLAPI_API_KEY)
    messages = wait_settled(send_request, timeout=60)
    assert statuses(messages) == [MessageStatus.ACCEPTED] * 2
    detail = client_for(academy.user).get(f"/api/v1/messages/send-requests/{send_request.id}").json()
    assert {m["status"] for m in detail["messages"]} == {"accepted"}
    assert (detail["paused"], detail["counts"]["paused"]) == (None, 0)
    assert_books_balance(academy, spent=Decimal("26"))
