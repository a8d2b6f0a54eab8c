"""Academies, sends and waiting, for tests that run the whole pipeline in a real worker."""

import contextlib
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.audit import audit_accounts
from billing.ledger import account_for
from billing.models import Hold, HoldStatus
from harness.academies import TEMPLATE_ID, Academy, make_academy
from harness.waiting import DEFAULT_TIMEOUT, wait_until
from messaging.compose.send_requests import SendInput, send_request_create
from messaging.models import Chunk, ChunkStatus, Message, MessageStatus, ReceivedReportBatch, SendRequest
from messaging.pipeline import outbox


@pytest.fixture
def academy(transactional_db, sandbox) -> Academy:
    return make_academy()


def send(academy: Academy, *, mode: str = "sms", body: str = "#{이름} 학생 안내입니다.", publish: bool = True,
         queue: str | None = None, **fields) -> SendRequest:
    """Accept a send through the service the API uses. With `queue`, its tasks go to that
    queue instead (a test's own worker consumes it). With publish=False nothing is published."""
    data = SendInput(student_ids=[s.id for s in academy.students], message_mode=mode, body=body,
                     template_id=TEMPLATE_ID if mode != "sms" else "", **fields)
    real_publish = outbox.publish_task
    outbox.publish_task = lambda send_request: "held back by the test"
    try:
        response = send_request_create(tenant=academy.tenant, user=academy.user, data=data, idempotency_key=None)
    finally:
        outbox.publish_task = real_publish
    send_request = SendRequest.objects.get(id=response["id"])
    if queue:
        SendRequest.objects.filter(id=send_request.id).update(queue=queue)
        send_request.refresh_from_db()
    if publish:
        assert outbox.publish_dispatch(send_request)
    return send_request


def finished(send_request: SendRequest) -> list[Message]:
    """Wait until every message of the request has its final status (its report arrived).
    Credit moves after the status commits: assert_books_balance waits for it."""
    wait_until(lambda: not Message.objects.filter(send_request=send_request, status=MessageStatus.ACCEPTED).exists()
               and not Message.objects.filter(send_request=send_request, status__in=["pending", "held", "sending"])
               .exists(), what="every report to arrive")
    return list(Message.objects.filter(send_request=send_request).order_by("id"))


def settled(send_request: SendRequest) -> bool:
    """Every chunk finalized and no message left in flight."""
    chunks = Chunk.objects.filter(send_request=send_request)
    in_flight = Message.objects.filter(
        send_request=send_request, status__in=[MessageStatus.PENDING, MessageStatus.HELD, MessageStatus.SENDING])
    return chunks.exists() and not chunks.exclude(status=ChunkStatus.FINALIZED).exists() and not in_flight.exists()


def wait_settled(send_request: SendRequest, timeout: float = DEFAULT_TIMEOUT) -> list[Message]:
    wait_until(lambda: settled(send_request), timeout=timeout, what=f"send request {send_request.id} to settle")
    return list(Message.objects.filter(send_request=send_request).order_by("id"))


def statuses(messages: list[Message]) -> list[str]:
    return [m.status for m in messages]


def captured(messages: list[Message]) -> Decimal:
    ids = [m.id for m in messages]
    return Hold.objects.filter(message_id__in=ids, status=HoldStatus.CAPTURED).aggregate(
        total=Sum("captured_amount"))["total"] or Decimal("0")


def assert_books_balance(academy: Academy, *, spent: Decimal, credit: Decimal = Decimal("10000")) -> None:
    """The academy paid exactly `spent`, nothing is left held, and the ledger agrees.

    Credit moves after the statuses commit (settlement.settle, in the worker, which applies the
    webhook's reports too): wait for the books to come to rest before reading them."""
    account = account_for(academy.tenant)

    def at_rest() -> bool:
        account.refresh_from_db()
        return account.held == 0 and account.balance == credit - spent

    with contextlib.suppress(TimeoutError):  # the assertions below say what the books show instead
        wait_until(at_rest, what=f"the books of {academy.tenant.slug} to show {spent} spent")
    assert account.balance == credit - spent
    assert account.held == 0
    assert audit_accounts() == []


def applied_summary(answer, timeout: float = DEFAULT_TIMEOUT) -> dict[str, int]:
    """The webhook answered once it stored the POST (`answer`: its response); wait for the
    worker to apply the batch, and return what became of its reports (apply.ReportSummary)."""
    batch_id = answer.json()["batch"]
    return wait_until(lambda: ReceivedReportBatch.objects.filter(id=batch_id, applied__isnull=False)
                      .values_list("summary", flat=True).first(), timeout=timeout,
                      what=f"report batch {batch_id} to be applied")
