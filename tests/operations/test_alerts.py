"""Alerts: one ERROR line at a condition's onset, none while it merely lasts, one more every
ALERT_REPEAT_SECONDS, and an INFO line when it clears. Read from the tables only."""

import logging
from datetime import timedelta

import pytest

from harness.academies import make_academy
from messaging.failures import FailureClass
from messaging.models import (
    AlertState,
    Chunk,
    ChunkStatus,
    MessageOutcome,
    OutcomeEvent,
    ReceivedReportBatch,
    WorkerHeartbeat,
)
from messaging.operations import alerts
from messaging.pipeline import breaker
from messaging.pipeline.queues import INTERACTIVE_QUEUE, WorkerQueues
from messaging.solapi.errors import SolapiAuthError
from tests.pipeline.conftest import send

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_worker(clock):
    now = clock.now()
    return WorkerHeartbeat.objects.create(hostname="w@test", pid=1, started=now, last_seen=now)


def _lines(caplog, level=logging.ERROR) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == alerts.logger.name and r.levelno == level]


def test_the_breaker_alert_is_raised_once_repeated_after_the_interval_and_resolved(caplog, clock, settings,
                                                                                    live_worker):
    settings.ALERT_REPEAT_SECONDS = 600
    caplog.set_level(logging.INFO, logger=alerts.logger.name)
    clock.freeze(clock.now())
    assert alerts.check_alerts() == {}

    breaker.trip(SolapiAuthError("유효하지 않은 API Key 입니다.", http_status=403, error_code="InvalidApiKey"))
    assert alerts.check_alerts() == {"breaker_open": "raised"}
    assert alerts.check_alerts() == {}  # the next beat tick: still open, nothing new
    [line] = _lines(caplog)
    assert line.startswith("alert=breaker_open state=raised") and "auth_failed InvalidApiKey" in line

    clock.freeze(clock.now() + timedelta(seconds=600))
    live_worker.last_seen = clock.now()
    live_worker.save()
    assert alerts.check_alerts() == {"breaker_open": "ongoing"}
    assert _lines(caplog)[-1].startswith("alert=breaker_open state=ongoing")

    breaker.close("fixed")
    assert alerts.check_alerts() == {"breaker_open": "resolved"}
    assert _lines(caplog, logging.INFO)[-1].startswith("alert=breaker_open state=resolved")
    assert len(_lines(caplog)) == 2
    assert not AlertState.objects.get(name="breaker_open").active


def test_no_live_worker_is_an_alert_and_degrades_health(clock):
    now = clock.now()
    WorkerHeartbeat.objects.create(hostname="old@test", pid=1, started=now - timedelta(hours=1),
                                   last_seen=now - timedelta(minutes=10))

    assert alerts.check_alerts() == {"no_worker_heartbeat": "raised"}
    assert "no_worker_heartbeat" in alerts.active_conditions(health_only=True)


def test_a_queue_without_a_live_worker_is_the_same_alert_naming_the_queue(clock):
    now = clock.now()
    WorkerHeartbeat.objects.create(hostname="bulk@test", pid=1, started=now, last_seen=now, queues=WorkerQueues.BULK)

    expected = {"no_worker_heartbeat": f"no live worker consumes {INTERACTIVE_QUEUE}"}
    assert alerts.active_conditions(health_only=True) == expected
    WorkerHeartbeat.objects.create(hostname="interactive@test", pid=2, started=now, last_seen=now,
                                   queues=WorkerQueues.INTERACTIVE)
    assert alerts.active_conditions(health_only=True) == {}


def test_a_chunk_older_than_the_threshold_is_stuck(clock, settings, live_worker, sandbox):
    settings.ALERT_OLDEST_CHUNK_SECONDS = 1800
    send_request = send(make_academy(), publish=False)
    Chunk.objects.create(send_request=send_request, index=0, status=ChunkStatus.HELD)

    assert "stuck_chunk" not in alerts.active_conditions()
    clock.freeze(clock.now() + timedelta(seconds=1801))
    WorkerHeartbeat.objects.update(last_seen=clock.now())
    assert alerts.check_alerts() == {"stuck_chunk": "raised"}


def test_messages_reconciliation_failed_for_want_of_a_report_are_an_alert_but_not_a_health_problem(
        clock, live_worker, sandbox):
    send_request = send(make_academy(), publish=False)
    message = send_request.messages.first()
    MessageOutcome.objects.create(tenant_id=message.tenant_id, message=message, event=OutcomeEvent.FAILED,
                                  success=False, recipient_summary="010****5678",
                                  failure_class=FailureClass.REPORT_TIMEOUT)

    assert alerts.check_alerts() == {"unreported_messages": "raised"}
    assert alerts.active_conditions(health_only=True) == {}


def test_reports_waiting_longer_than_the_threshold_are_an_alert_but_not_a_health_problem(clock, settings,
                                                                                        live_worker):
    settings.ALERT_REPORT_BACKLOG_SECONDS = 300
    clock.freeze(clock.now())
    ReceivedReportBatch.objects.create(body="[]", reports=40)
    ReceivedReportBatch.objects.create(body="[]", reports=2, applied=clock.now())  # applied: not waiting

    clock.freeze(clock.now() + timedelta(seconds=300))
    assert "report_backlog" not in alerts.active_conditions()  # a burst's seconds, even minutes: fine
    clock.freeze(clock.now() + timedelta(seconds=1))
    WorkerHeartbeat.objects.update(last_seen=clock.now())
    assert alerts.check_alerts() == {"report_backlog": "raised"}
    assert alerts.active_conditions()["report_backlog"].startswith(
        "the oldest delivery-report POST waiting to be applied is 301 s old (waiting: POSTs 1, reports 40;")
    assert alerts.active_conditions(health_only=True) == {}

    ReceivedReportBatch.objects.update(applied=clock.now())
    assert alerts.check_alerts() == {"report_backlog": "resolved"}
