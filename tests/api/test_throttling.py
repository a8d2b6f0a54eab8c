"""Rates per token and per academy, and a daily message ceiling per academy: 429 in the
API's refusal format, and nothing stored for a refused send."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache
from django.test import override_settings

from harness.academies import make_staff
from messaging.models import Message, SendRequest
from tests.api.conftest import assert_refusal, client_for, send_body

SEND_URL = "/api/v1/messages/send"
CREDITS_URL = "/api/v1/credits"


@pytest.fixture(autouse=True)
def fresh_counters():
    """Counters of earlier tests (a reused user id on SQLite) must not count here."""
    cache.clear()
    yield
    cache.clear()


@override_settings(API_THROTTLE_RATES={"token": "3/minute", "academy": "1000/minute"})
def test_a_token_over_its_rate_gets_429_with_the_refusal_format(academy, api):
    answers = [api.get(CREDITS_URL) for _ in range(4)]

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert_refusal(answers[3], 429, "throttled")
    assert int(answers[3]["Retry-After"]) > 0


@override_settings(API_THROTTLE_RATES={"token": "1000/minute", "academy": "3/minute"})
def test_an_academy_over_its_rate_gets_429_whichever_staff_member_asks(academy, api, other_academy):
    colleague = client_for(make_staff(academy.tenant, "colleague"))
    outsider = client_for(other_academy.user)

    answers = [api.get(CREDITS_URL), colleague.get(CREDITS_URL), api.get(CREDITS_URL), colleague.get(CREDITS_URL)]

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert_refusal(answers[3], 429, "throttled")
    assert outsider.get(CREDITS_URL).status_code == 200  # another academy counts on its own


@pytest.mark.clock
@override_settings(MESSAGING_DAILY_MESSAGE_LIMIT=4)
def test_a_send_past_the_daily_message_limit_is_refused_and_stores_nothing(academy, api, broker, clock):
    clock.freeze(clock.now())  # one day in Korea throughout, even if the test runs across midnight
    first = api.post(SEND_URL, send_body(academy.student_ids), format="json")  # 3 messages
    assert first.status_code == 202, first.json()
    stored = (SendRequest.objects.count(), Message.objects.count())

    second = api.post(SEND_URL, send_body(academy.student_ids[:2]), format="json")

    body = assert_refusal(second, 429, "daily_message_limit")
    assert (body["limit"], body["sent_today"], body["requested"]) == (4, 3, 2)
    assert (SendRequest.objects.count(), Message.objects.count()) == stored
    assert api.post(SEND_URL, send_body(academy.student_ids[:1]), format="json").status_code == 202


@pytest.mark.clock
@override_settings(MESSAGING_DAILY_MESSAGE_LIMIT=4)
def test_the_daily_message_limit_starts_again_at_midnight_in_korea(academy, api, broker, clock):
    midnight = clock.next_kst(0, 0)
    clock.freeze(midnight - timedelta(seconds=30))
    assert api.post(SEND_URL, send_body(academy.student_ids), format="json").status_code == 202  # 3 messages

    clock.freeze(midnight)

    assert api.post(SEND_URL, send_body(academy.student_ids[:2]), format="json").status_code == 202


def test_the_limit_sums_the_days_requests_and_the_migration_counted_those_made_before_it(academy, api, broker):
    """The limit reads each request's `accepted_count`; migration messaging 0022 gave the
    requests of its last two days their count of messages not skipped, what was counted before."""
    sent = api.post(SEND_URL, send_body(academy.student_ids), format="json").json()  # 3 messages
    request = SendRequest.objects.get(id=sent["id"])
    assert request.accepted_count == sent["accepted"] == 3
    Message.objects.filter(id=Message.objects.filter(send_request=request).first().id).update(status="skipped")
    SendRequest.objects.filter(id=request.id).update(accepted_count=0)  # as before the migration

    migration = importlib.import_module("messaging.migrations.0022_send_request_accepted_count")
    migration.count_recent_requests(django_apps, None)

    assert SendRequest.objects.get(id=request.id).accepted_count == 2
