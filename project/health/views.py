"""/healthz, answered from this process's snapshot (project/health/monitor.py), or in a process
without a refresher (the `web`) from the one the `edge` stored (one query by key): no SQS call
on the request's path, so the answer comes at once however busy the broker is.

200 with status "ok"; "degraded" answers HEALTH_DEGRADED_STATUS (default 200, for the load
balancer), or 424 with ?strict (a monitor's URL: docs/alerts.md); 503 with "down"
(project/health/checks.py says which).
The snapshot carries its time (`checked_at`, `age_seconds`); one older than
HEALTH_MAX_AGE_SECONDS, or none at all yet, answers "down": whatever it said is no longer
known, and a refresher that hangs or died must not keep answering an old "ok".

Anyone gets the status alone ({"status": "ok"}, and the same HTTP status): enough for a
load balancer. The details name hosts, queues and error texts, so they are for staff
(an admin session) or a caller with HEALTH_TOKEN in the X-Health-Token header.
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import JsonResponse

from project import clock
from project.health.checks import HealthStatus
from project.health.monitor import Snapshot, monitor
from project.operator_access import may_read_operator_details


def healthz(request) -> JsonResponse:
    report = answer(monitor.current(), now=clock.now())
    status = http_status(report["status"], strict="strict" in request.GET)
    if not may_read_operator_details(request):
        report = {"status": report["status"]}
    return JsonResponse(report, status=status)


# A dependency of sending failed (Solapi, the worker), the web itself did not: 424 Failed Dependency.
STRICT_DEGRADED_STATUS = 424


def http_status(status: str, *, strict: bool = False) -> int:
    """503 when down; HEALTH_DEGRADED_STATUS when degraded (424 with ?strict, when that is 200,
    so a plain HTTP monitor notices while the load balancer's probe keeps its 200); else 200."""
    if status == HealthStatus.DOWN:
        return 503
    if status == HealthStatus.DEGRADED:
        configured = settings.HEALTH_DEGRADED_STATUS
        return STRICT_DEGRADED_STATUS if strict and configured == 200 else configured
    return 200


def answer(snapshot: Snapshot | None, *, now: datetime) -> dict[str, Any]:
    """The report to give at `now`: the snapshot's, with its age, or "down" when it is too old."""
    if snapshot is None:
        return {"status": HealthStatus.DOWN, "stale": True, "checked_at": None, "age_seconds": None,
                "error": "no health snapshot yet: the checks have not finished once in this process"}
    age = (now - snapshot.checked_at).total_seconds()
    report = {**snapshot.report, "checked_at": snapshot.checked_at, "age_seconds": round(age, 1), "stale": False}
    if age > settings.HEALTH_MAX_AGE_SECONDS:
        report |= {"status": HealthStatus.DOWN, "stale": True, "last_status": snapshot.report["status"],
                   "error": f"the last health check is {age:.0f} s old (limit {settings.HEALTH_MAX_AGE_SECONDS} s): "
                            "its refresher is stuck or gone"}
    return report

