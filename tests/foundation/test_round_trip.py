"""The foundation, end to end: a task crosses the local SQS into a real worker and its
result lands in the django-db backend."""

import pytest
from django_celery_results.models import TaskResult

from project.celery import ping

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_published_task_runs_in_the_worker_and_its_result_is_stored(worker, local_sqs):
    local_sqs.reset_counts()

    result = ping.delay()

    assert result.get(timeout=30) == "pong"
    row = TaskResult.objects.get(task_id=result.id)
    assert row.status == "SUCCESS"
    assert row.task_name == "project.ping"
    assert row.worker.startswith("session@")
    # It really went through SQS: one publish, one delete (the late ack).
    counts = local_sqs.request_counts()
    assert counts["SendMessage"] >= 1
    assert counts["DeleteMessage"] >= 1
