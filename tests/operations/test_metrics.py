"""/metrics: what moved after a send through the real worker, and who may read it.

The counters of every process (this one's send API, the worker's pool children calling the
sandbox) are added up from PROMETHEUS_MULTIPROC_DIR (tests/settings.py); the gauges are read
from the tables at the scrape.
"""

import os
import subprocess
import sys
import textwrap

import httpx
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from harness.academies import make_academy
from harness.ports import free_port
from harness.waiting import wait_until
from messaging.models import BreakerState, CircuitBreaker
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from tests.api.conftest import client_for
from tests.pipeline.conftest import send, wait_settled

HEALTH_TOKEN = "metrics-token-for-prometheus"
EXPORTER_QUEUE = f"{INTERACTIVE_QUEUE}-exporter"
SEND = {"purpose": "info", "send_to": "parent", "message_mode": "sms", "body": "#{이름} 학생 안내입니다."}


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers={"X-Health-Token": HEALTH_TOKEN})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and wanted <= sample_labels)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_send_through_the_worker_moves_the_counts_the_solapi_histogram_and_the_breaker(
        client, settings, sandbox, worker):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    academy = make_academy()
    api = client_for(academy.user)
    before = scrape(client)

    answer = api.post("/api/v1/messages/send", {**SEND, "student_ids": [s.id for s in academy.students]},
                      format="json")
    assert answer.status_code == 202
    refused = api.post("/api/v1/messages/send", {**SEND, "student_ids": []}, format="json")
    assert refused.status_code == 400
    wait_settled(academy.tenant.send_requests.get(id=answer.json()["id"]))
    after = scrape(client)

    # The tables: three messages accepted by Solapi, nothing held any more.
    assert total(after, "messaging_messages", status="accepted") == 3
    assert total(after, "billing_credit_held") == 0
    assert total(after, "messaging_table_gauges_up") == 1
    # The send API's answers, by outcome and code.
    accepted = "messaging_send_requests_total"
    assert total(after, accepted, outcome="accepted") - total(before, accepted, outcome="accepted") == 1
    code = refused.json()["code"]
    assert total(after, accepted, outcome="refused", code=code) - total(before, accepted, outcome="refused",
                                                                         code=code) == 1
    # The worker's Solapi calls: counted by operation and status, timed in the histogram.
    calls = "messaging_solapi_requests_total"
    assert total(after, calls, operation="send_group", http_status="200") > total(
        before, calls, operation="send_group", http_status="200")
    histogram = "messaging_solapi_request_duration_seconds_count"
    assert total(after, histogram, operation="send_group") > total(before, histogram, operation="send_group")
    assert total(after, "messaging_solapi_request_duration_seconds_bucket", operation="send_group", le="+Inf") == \
        total(after, histogram, operation="send_group")
    assert total(after, "messaging_breaker_open") == 0

    # A bad key at the sandbox opens the breaker: the gauge and the refused calls say so.
    sandbox.set_credentials(api_key="ROTATED-KEY")
    second = api.post("/api/v1/messages/send", {**SEND, "student_ids": [academy.students[0].id]}, format="json")
    assert second.status_code == 202
    wait_until(lambda: CircuitBreaker.objects.filter(state=BreakerState.OPEN).exists(), what="the breaker to open")
    opened = scrape(client)
    assert total(opened, "messaging_breaker_open", failure_class="auth_failed") == 1
    assert total(opened, calls, http_status="403", failure_class="auth_failed") >= 1
    assert total(opened, "messaging_chunks_paused") + total(opened, "messaging_messages_unfinished") >= 1

    sandbox.set_credentials(api_key=settings.SOLAPI_API_KEY)
    wait_settled(academy.tenant.send_requests.get(id=second.json()["id"]), timeout=60)
    assert total(scrape(client), "messaging_breaker_open") == 0


@pytest.mark.django_db
def test_staff_may_read_the_metrics(admin_client):
    assert admin_client.get("/metrics").status_code == 200


def test_production_settings_refuse_anonymous_and_wrong_token_callers():
    """A fresh process with DEBUG off: only the token (or staff) reads /metrics."""
    script = textwrap.dedent("""
        import django
        django.setup()
        from django.test import Client
        client = Client()
        print(client.get("/metrics", secure=True).status_code)
        print(client.get("/metrics", secure=True, headers={"X-Health-Token": "guess"}).status_code)
        response = client.get("/metrics", secure=True, headers={"X-Health-Token": "the-prometheus-token"})
        print(response.status_code, b"messaging_table_gauges_up" in response.content)
    """)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "CLOCK"))},
           "DJANGO_SETTINGS_MODULE": "project.settings", "DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 50,
           "SOLAPI_API_KEY": "k", "SOLAPI_API_SECRET": "s", "SOLAPI_WEBHOOK_SECRET": "w" * 32,
           "HEALTH_TOKEN": "the-prometheus-token", "DATABASE_URL": "sqlite:///:memory:"}
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=settings.BASE_DIR, capture_output=True,
                            text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["401", "401", "200 True"], result.stdout + result.stderr


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_a_host_of_its_own_serves_its_pools_metrics(sandbox, start_worker):
    port = free_port()
    start_worker("exporter", env={"METRICS_WORKER_PORT": str(port)}, extra_args=("-Q", EXPORTER_QUEUE))
    wait_settled(send(make_academy(), queue=EXPORTER_QUEUE))

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}

    assert total(samples, "messaging_solapi_requests_total", operation="send_group", http_status="200") >= 1
    assert total(samples, "messaging_solapi_request_duration_seconds_count", operation="add_messages") >= 1
