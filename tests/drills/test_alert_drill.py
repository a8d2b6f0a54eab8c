"""The breaker drill an operator would run: a bad key at Solapi (the sandbox) opens the breaker,
and the three signals an operator wires fire: the ERROR line `alert=breaker_open`, one event at
the error tracker (a local capture server standing in for Sentry), and /healthz degraded. Fix
the key, and all three clear: a `resolved` INFO line, no new event, /healthz ok.

A real worker (with SENTRY_DSN) runs the pipeline and beat's check_alerts task, over the local SQS.
"""

import pytest
from django.conf import settings as django_settings
from django.db.models import Max

from harness.academies import make_academy
from harness.sentry_capture import SentryCapture, event_text
from harness.waiting import wait_until
from messaging.models import AlertState, BreakerState, CircuitBreaker, Message
from messaging.operations.tasks import check_alerts
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from project.health.monitor import monitor
from tests.pipeline.conftest import send, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

QUEUE = f"{INTERACTIVE_QUEUE}-alerts"
HEALTH_TOKEN = "drill-health-token"
RAISED = "alert=breaker_open state=raised"
RESOLVED = "alert=breaker_open state=resolved"


@pytest.fixture
def capture():
    server = SentryCapture().start()
    yield server
    server.stop()


def _alert_events(capture: SentryCapture) -> list[str]:
    return [t for t in map(event_text, capture.events()) if "alert=breaker_open" in t]


def _run_check_alerts() -> None:
    """One beat tick of check_alerts, in the worker; returns once it has run (every run stamps
    the alert rows' checked_at)."""
    before = _last_check()
    check_alerts.apply_async(queue=QUEUE)
    wait_until(lambda: _last_check() != before, what="check_alerts to run in the worker")


def _last_check():
    return AlertState.objects.aggregate(last=Max("checked_at"))["last"]


def test_a_bad_key_raises_the_alert_line_the_error_event_and_degraded_health_and_the_fix_clears_them(
        sandbox, start_worker, local_sqs, client, settings, capture):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    worker = start_worker("alerts", env={"SENTRY_DSN": capture.dsn}, extra_args=("-Q", QUEUE))
    academy = make_academy(students=2)
    sandbox.set_credentials(api_key="ROTATED-KEY")

    send_request = send(academy, queue=QUEUE)
    wait_until(lambda: CircuitBreaker.objects.filter(state=BreakerState.OPEN).exists(), what="the breaker to open")
    _run_check_alerts()

    # 1. One ERROR line with the stable event name.
    assert worker.log().count(RAISED) == 1
    assert any(RAISED in line and "level=ERROR" in line for line in worker.log().splitlines())
    # 2. One event at the error tracker.
    wait_until(lambda: _alert_events(capture), what="the alert's event at the capture server")
    # 3. /healthz degraded: 200 for the load balancer by default, 424 for a monitor, or as configured.
    monitor.refresh()  # the snapshot a web process's background thread keeps (project/health/monitor.py)
    health = client.get("/healthz", headers={"X-Health-Token": HEALTH_TOKEN})
    assert (health.status_code, health.json()["status"]) == (200, "degraded")
    assert "breaker_open" in health.json()["alerts"]
    assert client.get("/healthz?strict").status_code == 424
    settings.HEALTH_DEGRADED_STATUS = 429
    assert client.get("/healthz").status_code == 429

    # The next beat tick while it is still open: no second line, no second event.
    _run_check_alerts()
    assert worker.log().count(RAISED) == 1
    assert len(_alert_events(capture)) == 1

    sandbox.set_credentials(api_key=django_settings.SOLAPI_API_KEY)
    wait_settled(send_request, timeout=90)
    _run_check_alerts()

    assert RESOLVED in worker.log()
    assert any(RESOLVED in line and "level=INFO" in line for line in worker.log().splitlines())
    assert len(_alert_events(capture)) == 1
    health = wait_until(lambda: monitor.refresh() and (h := client.get("/healthz?strict")).json()["status"] == "ok"
                        and h, what="/healthz to be ok again")
    assert health.status_code == 200
    # Nothing personal reached the error tracker.
    raw = capture.raw()
    assert not [p for p in Message.objects.filter(send_request=send_request).values_list("phone", flat=True)
                if p in raw]
