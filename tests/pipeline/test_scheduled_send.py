"""`send_at` on POST messages/send: a scheduled send. Validated when written (in the future,
at most 90 days ahead, an ad not in the night window), held at once, cancellable until it
starts, and released by beat exactly once when the project clock reaches it, through a real
worker whose clock reads the same time."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from billing.ledger import account_for
from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.models import Chunk, Message, MessageStatus, SendRequest
from messaging.pipeline import delivery
from messaging.pipeline.queues import BULK_QUEUE
from messaging.pipeline.tasks import release_deferred
from tenants.models import RecipientKind
from tenants.services import consent_record
from tests.api.conftest import assert_refusal, client_for, send_body
from tests.pipeline.conftest import assert_books_balance, wait_settled

pytestmark = pytest.mark.clock

SEND_URL = "/api/v1/messages/send"
AD_NAME = "scheduled 학원"
AD = f"(광고) {AD_NAME} 겨울방학 특강 모집!\n무료수신거부 080-123-4567"


def schedule(api, academy, send_at, **fields):
    return api.post(SEND_URL, send_body(academy.student_ids, send_at=send_at.isoformat(), **fields), format="json")


@pytest.mark.django_db
def test_a_scheduled_send_is_held_now_and_released_once_when_due(clock, broker):
    clock.freeze(clock.next_kst(10))
    academy = make_academy()
    send_at = clock.now() + timedelta(hours=3)

    response = schedule(client_for(academy.user), academy, send_at)

    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["accepted"], body["deferred"], datetime.fromisoformat(body["send_at"])) == (3, 0, send_at)
    messages = Message.objects.filter(send_request_id=body["id"])
    assert {(m.status, m.not_before) for m in messages} == {(MessageStatus.PENDING, send_at)}
    assert account_for(academy.tenant).held == 3 * Decimal("13")  # a 202 is paid for
    # Until it is due, dispatch (published at acceptance) chunks nothing and beat releases nothing.
    assert delivery.split_into_chunks(body["id"]) == []
    clock.freeze(send_at - timedelta(seconds=1))
    assert release_deferred() == 0

    clock.freeze(send_at)
    assert release_deferred() == 1
    assert release_deferred() == 0  # the second beat run: already released
    assert len(delivery.split_into_chunks(body["id"])) == 1
    assert len(delivery.split_into_chunks(body["id"])) == 1  # the same chunk, not a second one
    assert Chunk.objects.filter(send_request_id=body["id"]).count() == 1


@pytest.mark.django_db
def test_a_scheduled_send_is_cancelled_whole_before_it_starts(clock, broker):
    clock.freeze(clock.next_kst(10))
    academy = make_academy()
    api = client_for(academy.user)
    send_at = clock.now() + timedelta(hours=1)
    send_request_id = schedule(api, academy, send_at).json()["id"]

    answer = api.post(f"/api/v1/messages/send-requests/{send_request_id}/cancel").json()

    assert (answer["cancelled"], answer["released"]) == (3, "39.00")
    assert account_for(academy.tenant).held == 0
    clock.freeze(send_at)
    assert release_deferred() == 0
    assert set(Message.objects.filter(send_request_id=send_request_id).values_list("failure_class", flat=True)) == {
        FailureClass.CANCELLED}


@pytest.mark.django_db
def test_send_at_in_the_past_too_far_ahead_or_an_ad_at_night_is_refused(clock):
    clock.freeze(clock.next_kst(10))
    academy = make_academy("scheduled", ad_opt_out_number="0801234567", name=AD_NAME)
    for student in academy.students:
        consent_record(student=student, recipient=RecipientKind.PARENT, marketing=True, night=False)
    api = client_for(academy.user)

    assert_refusal(schedule(api, academy, clock.now() - timedelta(minutes=1)), 400, "send_at_in_past")
    assert_refusal(schedule(api, academy, clock.now() + timedelta(days=91)), 400, "send_at_too_far")
    tonight = clock.next_kst(22)
    assert_refusal(schedule(api, academy, tonight, purpose="ad", body=AD), 400, "send_at_in_night_window")
    assert_refusal(schedule(api, academy, clock.next_kst(7, 59), purpose="ad", body=AD), 400,
                   "send_at_in_night_window")
    # Information may go at night; an ad in the daytime may be scheduled.
    assert schedule(api, academy, tonight).status_code == 202
    assert schedule(api, academy, clock.next_kst(8), purpose="ad", body=AD).status_code == 202
    assert not Message.objects.filter(send_request__purpose="ad").exclude(not_before=clock.next_kst(8)).exists()


def test_the_preview_shows_when_a_scheduled_send_goes(clock, db):
    clock.freeze(clock.next_kst(10))
    academy = make_academy()
    send_at = clock.now() + timedelta(hours=2)

    response = client_for(academy.user).post("/api/v1/messages/preview", send_body(
        academy.student_ids, send_at=send_at.isoformat()), format="json")

    assert response.status_code == 200, response.json()
    assert {datetime.fromisoformat(r["not_before"]) for r in response.json()["recipients"]} == {send_at}


QUEUE = f"{BULK_QUEUE}-scheduled"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_beat_releases_a_scheduled_send_once_through_a_real_worker(clock, sandbox, broker, start_worker):
    """Written at 10:00 for 14:00; a worker of the test's own reads 14:00 already (its clock
    moved through CLOCK_OFFSET_SECONDS). Beat runs twice at 14:00: every message goes out
    once, charged once."""
    running = clock.now()
    send_at = clock.next_kst(10) + timedelta(hours=4)
    offset = settings.CLOCK_OFFSET_SECONDS + (send_at - running).total_seconds() + 60
    clock.freeze(send_at - timedelta(hours=4))
    academy = make_academy()
    send_request_id = schedule(client_for(academy.user), academy, send_at).json()["id"]
    SendRequest.objects.filter(id=send_request_id).update(queue=QUEUE)
    start_worker("scheduled", env={"CLOCK_OFFSET_SECONDS": str(offset)}, extra_args=("-Q", QUEUE))

    clock.freeze(send_at)
    assert release_deferred() == 1
    assert release_deferred() == 0
    messages = wait_settled(SendRequest.objects.get(id=send_request_id))

    assert {m.status for m in messages} == {MessageStatus.ACCEPTED}
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for m in messages}
    assert Chunk.objects.filter(send_request_id=send_request_id).count() == 1
    assert_books_balance(academy, spent=3 * Decimal("13"))
