"""A broadcast's progress: counts, percent final, pace and estimated finish, in the status API
and on the admin's send-request page (which reloads itself while the request runs)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from harness.academies import make_academy
from messaging.models import Message, MessageStatus, SendRequest
from tests.api.conftest import client_for
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db


@pytest.fixture
def broadcast(clock, sandbox) -> SendRequest:
    """10 messages dispatched 100 s ago: 4 handed over (2 delivered, 1 failed, 1 accepted), 6 to go."""
    clock.freeze(clock.now())
    academy = make_academy(students=10)
    send_request = send(academy, publish=False)
    SendRequest.objects.filter(id=send_request.id).update(dispatched=clock.now() - timedelta(seconds=100))
    ids = list(send_request.messages.order_by("id").values_list("id", flat=True))
    for message_id, status in zip(ids, [MessageStatus.DELIVERED, MessageStatus.DELIVERED, MessageStatus.FAILED,
                                        MessageStatus.ACCEPTED], strict=False):
        Message.objects.filter(id=message_id).update(status=status, accepted_at=clock.now())
    send_request.refresh_from_db()
    send_request.academy = academy
    return send_request


def test_the_status_api_gives_percent_final_pace_and_an_estimated_finish_in_kst(broadcast, clock):
    detail = client_for(broadcast.academy.user).get(f"/api/v1/messages/send-requests/{broadcast.id}").json()

    assert (detail["counts"]["delivered"], detail["counts"]["failed"], detail["counts"]["pending"]) == (2, 1, 6)
    progress = detail["progress"]
    assert progress["percent_final"] == 30.0
    assert progress["percent_sent"] == 40.0
    assert progress["throughput_per_second"] == 0.04  # 4 messages in 100 s
    # 6 left at 0.04 per second: 150 s from now, in Korea's time.
    expected = timezone.localtime(clock.now() + timedelta(seconds=150)).isoformat(timespec="seconds")
    assert progress["estimated_finish"] == expected and expected.endswith("+09:00")
    assert progress["running"] is True


def test_once_everything_is_handed_over_there_is_no_estimate_and_the_pace_stops_at_the_last(broadcast, clock):
    broadcast.messages.filter(status=MessageStatus.PENDING).update(status=MessageStatus.ACCEPTED,
                                                                   accepted_at=clock.now() - timedelta(seconds=50))
    clock.freeze(clock.now() + timedelta(hours=1))

    progress = client_for(broadcast.academy.user).get(
        f"/api/v1/messages/send-requests/{broadcast.id}").json()["progress"]

    assert progress["percent_sent"] == 100.0
    assert progress["estimated_finish"] is None
    assert progress["throughput_per_second"] == 0.1  # 10 messages between the dispatch and the last hand-over


def test_the_admin_page_shows_the_same_and_reloads_itself_only_while_running(broadcast, admin_client, clock):
    url = reverse("admin:messaging_sendrequest_change", args=[broadcast.id])

    page = admin_client.get(url).content.decode()
    assert "최종 30.0% · 발송 40.0% · 0.04 msg/s" in page
    assert f"예상 완료 (estimated finish) {clock.shown(clock.now() + timedelta(seconds=150))}" in page
    assert "location.reload()" in page

    broadcast.messages.exclude(status__in=[MessageStatus.DELIVERED, MessageStatus.FAILED]).update(
        status=MessageStatus.DELIVERED)
    SendRequest.objects.filter(id=broadcast.id).update(completed=broadcast.created)
    page = admin_client.get(url).content.decode()
    assert "최종 100.0%" in page
    assert "location.reload()" not in page
