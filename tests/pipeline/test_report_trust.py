"""The delivery-report webhook under attack (issue 13, findings 3 and 7), over HTTP.

Real messages are sent through the worker to the sandbox with no webhook, so they stay
accepted, with their credit captured; then reports are POSTed to the webhook as a forger
with the secret, or a broken sender, would: a report that is not tied to what we sent
changes nothing, and a bad report in a batch costs only itself."""

import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from harness.academies import make_academy
from harness.waiting import wait_until
from messaging.models import (
    Chunk,
    DeliveryReport,
    Message,
    MessageOutcome,
    MessageStatus,
    OutcomeEvent,
    ReceivedReportBatch,
)
from messaging.solapi.reports import MAX_REPORTS_PER_WEBHOOK
from tests.pipeline.conftest import applied_summary, assert_books_balance, send, statuses, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WEBHOOK = f"/api/v1/solapi/reports/{settings.SOLAPI_WEBHOOK_SECRET}/"


def accepted(academy) -> list[Message]:
    """The academy's three messages, accepted by Solapi and charged, their reports not yet in."""
    messages = wait_settled(send(academy))
    assert statuses(messages) == [MessageStatus.ACCEPTED] * 3
    assert_books_balance(academy, spent=Decimal("39"))
    return messages


def group_of(message: Message) -> str:
    return Chunk.objects.get(messages=message).solapi_group_id


def report(message_id: object, *, group_id: str, status: str = "3010", event_id: str | None = None,
           solapi_message_id: str | None = None, **data) -> dict:
    """One event of Solapi's single-report webhook, as Solapi words it."""
    return {
        "eventDataId": event_id or f"E{uuid.uuid4().hex}",
        "data": {
            "messageId": solapi_message_id or f"M4V{uuid.uuid4().hex[:20].upper()}",
            "groupId": group_id,
            "type": "SMS",
            "to": "01000000000",
            "from": "0212345678",
            "statusCode": status,
            "statusMessage": "전화번호 오류",
            "customFields": {"message_id": str(message_id)},
            **data,
        },
        "retryCount": 0,
    }


def post(client, body: object):
    return client.post(WEBHOOK, data=body, content_type="application/json")


def logged_lines(worker, event: str, *, since: int) -> list[str]:
    """The worker's log lines of `event` since offset `since` (the apply runs in the worker,
    and applied_summary has waited for it: its lines are written before the batch commits)."""
    return [line for line in worker.log()[since:].splitlines() if f"{event} " in line]


def test_a_forged_report_for_another_academys_message_changes_nothing(worker, sandbox, academy, client):
    victim = accepted(academy)
    attacker = accepted(make_academy())
    target = victim[0]
    forged = [
        # Made-up Solapi ids: all a forger with the webhook secret has besides our sequential id.
        report(target.id, group_id="G4V20261130000000FORGEDGROUP"),
        # A real group id, but of the attacker's own chunk, not of the victim's message.
        report(target.id, group_id=group_of(attacker[0])),
    ]

    logged_before = len(worker.log())
    response = post(client, forged)

    assert response.status_code == 200
    assert response.json()["received"] == 2
    assert applied_summary(response) == {"applied": 0, "duplicates": 0, "unmatched": 2, "invalid": 0}
    target.refresh_from_db()
    assert (target.status, target.failure_class, target.solapi_message_id) == (MessageStatus.ACCEPTED, "", "")
    assert not MessageOutcome.objects.filter(message=target, event=OutcomeEvent.FAILED).exists()
    assert_books_balance(academy, spent=Decimal("39"))  # no refund
    stored = DeliveryReport.objects.filter(event_data_id__in=[r["eventDataId"] for r in forged])
    assert [r.message_id for r in stored] == [None, None]  # kept, as unmatched
    # Applied by the worker: its log says why.
    mismatched = logged_lines(worker, "report_mismatched", since=logged_before)
    assert len(mismatched) == 2 and all("WARNING" in line for line in mismatched)


def test_a_report_naming_the_messages_group_is_applied_and_its_id_then_binds(worker, sandbox, academy, client):
    messages = accepted(academy)
    target = messages[0]
    genuine = report(target.id, group_id=group_of(target), status="3010")

    assert applied_summary(post(client, [genuine])) == {"applied": 1, "duplicates": 0, "unmatched": 0, "invalid": 0}

    target.refresh_from_db()
    assert target.status == MessageStatus.FAILED
    assert target.solapi_message_id == genuine["data"]["messageId"]
    assert_books_balance(academy, spent=Decimal("26"))  # refunded
    # From now on the recorded Solapi id decides: the right group with another id is not it.
    other = report(target.id, group_id=group_of(target), status="4000")
    assert applied_summary(post(client, [other]))["unmatched"] == 1
    assert DeliveryReport.objects.get(event_data_id=other["eventDataId"]).message_id is None


def test_one_bad_report_costs_only_itself(worker, sandbox, academy, client):
    messages = accepted(academy)
    group = group_of(messages[0])
    good = report(messages[0].id, group_id=group, status="4000")
    batch = [
        good,
        report(messages[1].id, group_id=group, status="123456789"),  # longer than the column
        report(messages[2].id, group_id=group, statusMessage="실패\x00"),  # NUL: PostgreSQL stores none
        report(messages[2].id, group_id=group, customFields={"message_id": "²"}),  # a digit int() refuses
        "not a report",
        {"data": {"statusCode": "4000"}},  # no eventDataId
        good,  # Solapi's re-delivery
    ]

    logged_before = len(worker.log())
    response = post(client, batch)

    assert response.status_code == 200
    assert response.json()["received"] == 7
    assert applied_summary(response) == {"applied": 1, "duplicates": 1, "unmatched": 1, "invalid": 4}
    assert statuses(list(Message.objects.filter(id__in=[m.id for m in messages]).order_by("id"))) == [
        MessageStatus.DELIVERED, MessageStatus.ACCEPTED, MessageStatus.ACCEPTED]
    assert DeliveryReport.objects.get(event_data_id=good["eventDataId"]).message_id == messages[0].id
    assert DeliveryReport.objects.count() == 2  # the good one and the unmatched one
    assert len(logged_lines(worker, "report_invalid", since=logged_before)) == 4
    assert_books_balance(academy, spent=Decimal("39"))


def test_a_batch_over_the_limit_is_refused_before_its_reports_are_read(client, transactional_db):
    response = post(client, [{}] * (MAX_REPORTS_PER_WEBHOOK + 1))

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["field"], body["count"], body["limit"]) == (
        "too_many_items", "reports", MAX_REPORTS_PER_WEBHOOK + 1, MAX_REPORTS_PER_WEBHOOK)
    assert not DeliveryReport.objects.exists()
    assert not ReceivedReportBatch.objects.exists()


# --- fuzzing the webhook body ---------------------------------------------------------

ANY_CHARACTER = st.characters(exclude_categories=())
# Texts at the edges: digits int() refuses, NUL, a lone surrogate, longer than any column.
EDGE_TEXT = st.text(ANY_CHARACTER, max_size=12) | st.sampled_from(
    ["²", "٣", "\x00", "\ud800", "9" * 30, "x" * 200, ""])
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | EDGE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(EDGE_TEXT, inner, max_size=3),
    max_leaves=6,
)


def fuzzed_reports(message_ids: list[int], group_ids: list[str]) -> st.SearchStrategy:
    """Bodies that get far: mostly reports of Solapi's shape, with our message and group ids,
    known status codes and repeating event ids, in which any text may be an edge text; now
    and then a value of the wrong type, an item that is no report, or a body that is no list."""
    def text(*good: str) -> st.SearchStrategy:
        return st.sampled_from(good) | EDGE_TEXT

    data = st.fixed_dictionaries({
        "messageId": text("M4VFUZZ1", "M4VFUZZ2"),
        "groupId": text(*group_ids),
        "type": text("SMS", "LMS", "ATA", "BMS_WIDE_ITEM_LIST"),
        "statusCode": text("2000", "3000", "4000", "3010", "3041", "1062", "40000", "123456789"),
        "statusMessage": text("전화번호 오류"),
        "customFields": st.fixed_dictionaries({"message_id": text(*[str(i) for i in message_ids])}),
    }, optional={"replacement": st.booleans(), "kakaoOptions": ANY_JSON, "to": ANY_JSON})
    event = st.fixed_dictionaries({"eventDataId": text("E1", "E2", "E3"), "data": data},
                                  optional={"retryCount": ANY_JSON})
    item = event | event | event | ANY_JSON
    return st.lists(item, max_size=6) | ANY_JSON


def test_no_webhook_body_gets_a_500(worker, sandbox, academy, client):
    messages = accepted(academy)

    @hypothesis_settings(max_examples=300, derandomize=True, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=fuzzed_reports([m.id for m in messages], [group_of(messages[0]), "G4VFUZZ"]))
    def no_500(body):
        response = post(client, body)
        assert response.status_code in (200, 400), (response.status_code, body)
        answer = response.json()
        if response.status_code == 400:
            assert answer["code"] in ("invalid_request", "too_many_items")
        else:
            assert answer["received"] == len(body)

    no_500()
    # Each stored POST is applied by the worker, none of them fails (no apply raises), and
    # each report is counted once at most.
    stored = ReceivedReportBatch.objects.all()
    wait_until(lambda: not stored.filter(applied__isnull=True, failed_attempts=0).exists(),
               what="every stored POST to be applied or to fail")
    assert list(stored.filter(failed_attempts__gt=0).values_list("last_error", flat=True)) == []
    for batch in stored:
        assert set(batch.summary) == {"applied", "duplicates", "unmatched", "invalid"}
        assert sum(batch.summary.values()) <= batch.reports
