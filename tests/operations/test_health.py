"""/healthz answers what an operator asks first: can we send, and if not, why."""

import pytest

from harness.waiting import DEFAULT_TIMEOUT, wait_until
from messaging.models import WorkerHeartbeat
from messaging.pipeline import breaker
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from messaging.solapi.errors import SolapiAuthError
from project.celery import ping

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


HEALTH_TOKEN = "health-token-for-the-monitoring-system"


@pytest.fixture(autouse=True)
def health_token(settings):
    settings.HEALTH_TOKEN = HEALTH_TOKEN


def _health(client):
    """The details, as the monitoring system (holding the token) sees them."""
    response = client.get("/healthz", headers={"X-Health-Token": HEALTH_TOKEN})
    return response.status_code, response.json()


def test_anyone_else_gets_the_status_alone_and_no_details(client, admin_client, worker):
    ping.apply_async(queue=INTERACTIVE_QUEUE).get(timeout=30)
    breaker.trip(SolapiAuthError("유효하지 않은 API Key 입니다.", http_status=403, error_code="InvalidApiKey"))

    anonymous = client.get("/healthz")
    wrong_token = client.get("/healthz", headers={"X-Health-Token": "guess"})
    staff = admin_client.get("/healthz")

    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "degraded"})
    assert wrong_token.json() == {"status": "degraded"}
    assert staff.json()["breaker"]["error_code"] == "InvalidApiKey"


def test_a_down_broker_is_a_503_for_anyone_without_saying_why(client, local_sqs):
    local_sqs.down()
    try:
        response = client.get("/healthz")
    finally:
        local_sqs.up()

    assert (response.status_code, response.json()) == (503, {"status": "down"})


def test_healthy_with_a_live_worker_the_database_and_the_queues(client, worker):
    ping.apply_async(queue=INTERACTIVE_QUEUE).get(timeout=DEFAULT_TIMEOUT)  # both queues exist by now
    wait_until(lambda: WorkerHeartbeat.objects.filter(hostname__startswith="session@").exists(),
               what="the worker's heartbeat")
    # A heartbeat is a few seconds late now and then on a loaded machine: ask until it is fresh.
    status, report = wait_until(lambda: (h := _health(client))[1]["status"] == "ok" and h,
                                what="/healthz to see the live worker")

    assert (status, report["status"]) == (200, "ok")
    assert report["database"]["ok"] and report["broker"]["ok"]
    assert {"visible", "in_flight", "delayed"} <= set(report["broker"]["queues"][INTERACTIVE_QUEUE])
    assert [w["alive"] for w in report["workers"] if w["hostname"].startswith("session@")] == [True]
    assert report["breaker"]["state"] == "closed"


def test_an_open_breaker_is_reported_as_degraded_with_its_reason(client, worker):
    breaker.trip(SolapiAuthError("유효하지 않은 API Key 입니다.", http_status=403, error_code="InvalidApiKey"))

    status, report = _health(client)

    assert (status, report["status"]) == (200, "degraded")
    assert (report["breaker"]["state"], report["breaker"]["failure_class"], report["breaker"]["error_code"]) == (
        "open", "auth_failed", "InvalidApiKey")
    assert report["breaker"]["since"]


def test_an_unreachable_broker_is_a_503_that_names_it(client, local_sqs):
    local_sqs.down()
    try:
        status, report = _health(client)
    finally:
        local_sqs.up()

    assert (status, report["status"]) == (503, "down")
    assert report["database"]["ok"] and not report["broker"]["ok"]
    assert "EndpointConnectionError" in report["broker"]["error"] or "Connect" in report["broker"]["error"]
