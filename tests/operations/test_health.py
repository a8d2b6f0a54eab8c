"""/healthz answers what an operator asks first: can we send, and if not, why. It answers from
a snapshot that a background thread refreshes (project/health/monitor.py): the tests below take
that snapshot themselves (`monitor.refresh()`), then ask."""

import gc
import runpy
from datetime import timedelta

import httpx
import pytest
from django.conf import settings

from harness.waiting import DEFAULT_TIMEOUT, wait_until
from messaging.models import WorkerHeartbeat
from messaging.pipeline import breaker
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from messaging.solapi.errors import SolapiAuthError
from project.celery import ping
from project.health.monitor import monitor
from project.health.views import answer
from tests.operations.conftest import PROJECT_DIR, procfile_command

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


HEALTH_TOKEN = "health-token-for-the-monitoring-system"


@pytest.fixture(autouse=True)
def health_token(settings):
    settings.HEALTH_TOKEN = HEALTH_TOKEN


def _health(client):
    """The details, as the monitoring system (holding the token) sees them, from a snapshot
    taken now (the background thread's job in a web process)."""
    monitor.refresh()
    return _answer(client)


def _answer(client):
    response = client.get("/healthz", headers={"X-Health-Token": HEALTH_TOKEN})
    return response.status_code, response.json()


def test_anyone_else_gets_the_status_alone_and_no_details(client, admin_client, worker):
    ping.apply_async(queue=INTERACTIVE_QUEUE).get(timeout=30)
    breaker.trip(SolapiAuthError("유효하지 않은 API Key 입니다.", http_status=403, error_code="InvalidApiKey"))
    monitor.refresh()

    anonymous = client.get("/healthz")
    wrong_token = client.get("/healthz", headers={"X-Health-Token": "guess"})
    staff = admin_client.get("/healthz")

    assert (anonymous.status_code, anonymous.json()) == (200, {"status": "degraded"})
    assert wrong_token.json() == {"status": "degraded"}
    assert staff.json()["breaker"]["error_code"] == "InvalidApiKey"


def test_a_down_broker_is_a_503_for_anyone_without_saying_why(client, local_sqs):
    local_sqs.down()
    try:
        monitor.refresh()
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


# --- the snapshot ------------------------------------------------------------------------------


def test_healthz_answers_from_the_snapshot_without_asking_the_broker_and_says_its_age(client, local_sqs, clock):
    taken_at = clock.freeze(clock.now().replace(microsecond=0))  # as the JSON writes it
    monitor.refresh()
    local_sqs.down()  # a request that asked SQS now would fail
    try:
        clock.freeze(taken_at + timedelta(seconds=10))
        status, report = _answer(client)
    finally:
        local_sqs.up()

    assert (status, report["status"]) in ((200, "ok"), (200, "degraded"))
    assert report["broker"]["ok"] and INTERACTIVE_QUEUE in report["broker"]["queues"]
    assert (report["checked_at"], report["age_seconds"], report["stale"]) == (
        taken_at.isoformat().replace("+00:00", "Z"), 10.0, False)


def test_a_snapshot_older_than_the_limit_is_down_so_a_dead_refresher_is_noticed(client, local_sqs, clock):
    taken_at = clock.freeze(clock.now())
    monitor.refresh()
    fresh = client.get("/healthz")
    clock.freeze(taken_at + timedelta(seconds=settings.HEALTH_MAX_AGE_SECONDS + 1))

    anonymous = client.get("/healthz")
    status, report = _answer(client)

    assert fresh.status_code == 200
    assert (anonymous.status_code, anonymous.json()) == (503, {"status": "down"})
    assert (status, report["status"], report["stale"]) == (503, "down", True)
    assert report["last_status"] in ("ok", "degraded")
    assert report["age_seconds"] == settings.HEALTH_MAX_AGE_SECONDS + 1
    assert "refresher" in report["error"]


def test_before_the_first_snapshot_a_process_answers_down(clock):
    """The first seconds of a web process, before its refresher finished once: not an "ok"
    nobody checked."""
    report = answer(None, now=clock.now())

    assert (report["status"], report["stale"], report["checked_at"]) == ("down", True, None)


def test_the_edge_process_refreshes_its_snapshot_in_the_background(procfile_gunicorn, local_sqs):
    """The Procfile's edge process, a real gunicorn: its worker starts the refresher after the
    fork (gunicorn.conf.py), and /healthz turns from "no snapshot yet" to a fresh one by itself."""
    url, _written = procfile_gunicorn("edge", "EDGE_BIND", {"HEALTH_TOKEN": HEALTH_TOKEN,
                                                            "HEALTH_REFRESH_SECONDS": "1"})

    def fresh_snapshot():
        report = httpx.get(f"{url}/healthz", headers={"X-Health-Token": HEALTH_TOKEN}, timeout=10).json()
        return not report["stale"] and report

    first = wait_until(fresh_snapshot, what="the edge's first health snapshot")
    later = wait_until(lambda: (r := fresh_snapshot()) and r["checked_at"] != first["checked_at"] and r,
                       what="a second snapshot, taken by the refresher on its own")

    assert first["database"]["ok"] and first["broker"]["ok"]
    assert later["checked_at"] > first["checked_at"]


def test_only_the_edge_runs_a_refresher(monkeypatch, settings):
    """SQS is polled by the edge alone: the Procfile's web turns the refresher off, and
    gunicorn's hook starts none where it is off."""
    hooks = runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))
    started, frozen = [], []
    monkeypatch.setattr(monitor, "start", lambda: started.append(True))
    # The hook also freezes what startup made (out of later garbage collections): not this test process's.
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))

    settings.HEALTH_MONITOR = False
    hooks["post_worker_init"](worker=None)
    settings.HEALTH_MONITOR = True
    hooks["post_worker_init"](worker=None)

    assert started == [True]
    assert frozen == [True, True]
    assert "--env HEALTH_MONITOR=0" in procfile_command("web")
    assert "HEALTH_MONITOR" not in procfile_command("edge")


def test_a_web_process_answers_from_the_snapshot_the_edge_stored(procfile_gunicorn, local_sqs, clock):
    url, _written = procfile_gunicorn("web", "WEB_BIND", {"HEALTH_TOKEN": HEALTH_TOKEN})
    clock.freeze(clock.now().replace(microsecond=0))  # as the JSON writes it
    stored = monitor.refresh()  # as the edge's refresher does, storing it

    report = httpx.get(f"{url}/healthz", headers={"X-Health-Token": HEALTH_TOKEN}, timeout=10).json()

    assert report["checked_at"] == stored.checked_at.isoformat().replace("+00:00", "Z")
    assert (report["stale"], report["broker"]["ok"]) == (False, True)
