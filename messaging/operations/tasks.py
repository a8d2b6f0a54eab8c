"""Beat's housekeeping tasks for what operators read (the pipeline's own are in
messaging/pipeline/tasks.py)."""

from celery import current_app, shared_task
from django.conf import settings

from messaging.operations import alerts, retention


@shared_task(name="messaging.prune_old_records", ignore_result=True)
def prune_old_records() -> None:
    """Delete rows past their retention age that no step needs (messaging/operations/retention.py).

    Stores no result: a result row per run would be one more row for the next run to prune.
    Its time budget stays well inside the soft time limit, so a long backlog is worked off
    over several runs instead of being cut off mid-statement."""
    soft_limit = current_app.conf.task_soft_time_limit or settings.RETENTION_TIME_BUDGET_SECONDS * 2
    retention.prune_old_records(time_budget=min(settings.RETENTION_TIME_BUDGET_SECONDS, soft_limit / 2))


@shared_task(name="messaging.check_alerts", ignore_result=True)
def check_alerts() -> None:
    """Raise, repeat or resolve the operator alerts (messaging/operations/alerts.py, docs/alerts.md)."""
    alerts.check_alerts()
