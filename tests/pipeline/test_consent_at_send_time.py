"""Consent, opt-outs and the night window are checked again when a message is sent, not only
when it was written (정보통신망법 §50; docs/security.md section 2).

The ad is written at 22:30 (the test process's clock frozen there) the evening before a
morning on which a worker of the test's own reads noon: it sees the ad due when the beat
task releases it at 08:00, whatever the hour the suite runs at.
"""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from billing.ledger import account_for, movements_for_message
from billing.models import EntryKind
from harness.academies import make_academy
from messaging.models import Message, MessageStatus, SkipReason
from messaging.pipeline.queues import BULK_QUEUE
from messaging.pipeline.tasks import release_deferred
from tenants.models import RecipientKind
from tenants.services import consent_record
from tests.api.conftest import client_for
from tests.pipeline.conftest import assert_books_balance, send, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True), pytest.mark.clock]

OPT_OUT_NUMBER = "0801234567"


# A queue of these tests' own, for a worker whose clock reads daytime in Korea.
QUEUE = f"{BULK_QUEUE}-daytime"


@pytest.fixture
def morning(start_worker, clock) -> datetime:
    """08:00 in Korea on the day a worker of this test's own is at 12:00: it re-checks the
    night window when it sends, and finds it closed whatever the hour the suite runs at
    (its clock is moved through CLOCK_OFFSET_SECONDS, as for a whole session)."""
    noon = clock.next_kst(12)
    offset = settings.CLOCK_OFFSET_SECONDS + (noon - clock.now()).total_seconds()
    start_worker("daytime", env={"CLOCK_OFFSET_SECONDS": str(offset)}, extra_args=("-Q", QUEUE))
    return noon.replace(hour=8)


@pytest.fixture
def ad_academy(transactional_db, sandbox):
    return make_academy(students=1, ad_opt_out_number=OPT_OUT_NUMBER)


def ad_text(academy) -> str:
    return f"(광고) {academy.tenant.name} 겨울방학 특강 모집!\n무료수신거부 080-123-4567"


@pytest.mark.parametrize(("opts_out", "reason"), [
    (True, SkipReason.OPTED_OUT),
    (False, SkipReason.NO_MARKETING_CONSENT),
])
def test_an_ad_deferred_at_night_is_not_sent_once_the_parent_withdraws(morning, ad_academy, clock, sandbox,
                                                                      opts_out, reason):
    clock.freeze(morning - timedelta(hours=9, minutes=30))  # 22:30
    parent = ad_academy.students[0]
    consent_record(student=parent, recipient=RecipientKind.PARENT, marketing=True, night=False)
    send_request = send(ad_academy, purpose="ad", body=ad_text(ad_academy), publish=False, queue=QUEUE)
    message = Message.objects.get(send_request=send_request)
    assert (message.status, message.not_before) == (MessageStatus.PENDING, morning)
    assert account_for(ad_academy.tenant).held == Decimal("13")  # a 202 is paid for

    # That evening the parent calls the 080 line and withdraws consent.
    staff = client_for(ad_academy.user)
    if opts_out:
        assert staff.post("/api/v1/opt-outs", {"phone": parent.parent_phone}, format="json").status_code == 201
    withdrawn = staff.post("/api/v1/consents", {"student_id": parent.id, "recipient": "parent", "marketing": False},
                           format="json")
    assert withdrawn.status_code == 200

    # 08:00: beat releases the deferred ad, and the real worker dispatches and reserves it.
    clock.freeze(morning)
    assert release_deferred() == 1
    (message,) = wait_settled(send_request)

    assert (message.status, message.skip_reason) == (MessageStatus.SKIPPED, reason)
    assert sandbox.accepted_total == 0 and sandbox.sends_per_recipient() == {}
    assert [e.kind for e in movements_for_message(message.id)] == [EntryKind.HOLD, EntryKind.RELEASE]
    assert_books_balance(ad_academy, spent=Decimal("0"))
    send_request.refresh_from_db()
    assert send_request.completed is not None


def test_an_ad_still_consented_at_8am_goes_out_once_and_is_held_once(morning, ad_academy, clock, sandbox):
    clock.freeze(morning - timedelta(hours=9, minutes=30))
    consent_record(student=ad_academy.students[0], recipient=RecipientKind.PARENT, marketing=True, night=False)
    send_request = send(ad_academy, purpose="ad", body=ad_text(ad_academy), publish=False, queue=QUEUE)

    clock.freeze(morning)
    assert release_deferred() == 1
    (message,) = wait_settled(send_request)

    assert message.status == MessageStatus.ACCEPTED
    assert sandbox.sends_per_message_id() == {str(message.id): 1}
    # Held when the request was accepted; the reserve step found the hold and did not hold again.
    assert [e.kind for e in movements_for_message(message.id)] == [EntryKind.HOLD, EntryKind.CAPTURE]
    assert_books_balance(ad_academy, spent=Decimal("13"))
