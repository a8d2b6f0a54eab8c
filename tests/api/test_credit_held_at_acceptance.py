"""A 202 means paid for: a send's credit is held in the request's own transaction, so what
cannot be paid is refused at once with insufficient_credit (docs/security.md section 11)."""

import threading
from decimal import Decimal

import pytest

from billing.audit import audit_accounts
from billing.ledger import account_for, movements_for_message
from billing.models import EntryKind, Hold, HoldStatus
from harness.academies import make_academy
from messaging.compose import send_requests
from messaging.models import Message, SendRequest
from tests.api.conftest import assert_refusal, client_for, send_body
from tests.billing.test_concurrency import run_at_once

SMS = Decimal("13")


def test_an_accepted_send_has_its_credit_held_before_the_202(broker, db):
    academy = make_academy(credit=SMS * 3)

    response = client_for(academy.user).post("/api/v1/messages/send", send_body(academy.student_ids),
                                             format="json")

    assert response.status_code == 202, response.json()
    account = account_for(academy.tenant)
    assert (account.balance, account.held) == (SMS * 3, SMS * 3)
    for message in Message.objects.filter(send_request_id=response.json()["id"]):
        assert [e.kind for e in movements_for_message(message.id)] == [EntryKind.HOLD]


def test_a_send_the_credit_no_longer_covers_is_refused_at_once_and_writes_nothing(broker, db):
    academy = make_academy(credit=SMS)
    api = client_for(academy.user)
    first = api.post("/api/v1/messages/send", send_body(academy.student_ids[:1]), format="json")

    second = api.post("/api/v1/messages/send", send_body(academy.student_ids[1:2]), format="json")

    assert first.status_code == 202
    body = assert_refusal(second, 402, "insufficient_credit")
    assert (body["estimated_cost"], body["available"]) == ("13.00", "0.00")
    assert SendRequest.objects.count() == 1
    assert Hold.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_racing_the_last_credit_get_202_only_as_far_as_it_goes(broker, monkeypatch):
    fits, senders = 2, 6
    academy = make_academy(students=senders, credit=SMS * fits)
    barrier = threading.Barrier(senders)
    # Every request reads the available credit before any of them holds it: the service's
    # own pre-check passes for all six, and only the hold under the account's lock decides.
    real_persist = send_requests._persist

    def persist_together(*args, **kwargs):
        barrier.wait(timeout=30)
        return real_persist(*args, **kwargs)

    monkeypatch.setattr(send_requests, "_persist", persist_together)
    results = run_at_once(senders, lambda i: client_for(academy.user).post(
        "/api/v1/messages/send", send_body([academy.student_ids[i]]), format="json"))

    codes = sorted((r.status_code, r.json().get("code", "")) for r in results)
    assert codes == [(202, "")] * fits + [(402, "insufficient_credit")] * (senders - fits)
    account = account_for(academy.tenant)
    assert (account.balance, account.held) == (SMS * fits, SMS * fits)
    assert SendRequest.objects.count() == fits
    assert Hold.objects.filter(status=HoldStatus.HELD).count() == fits
    assert audit_accounts() == []
