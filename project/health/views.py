"""/healthz, answered from this process's snapshot (project/health/monitor.py): no SQS call
and no query on the request's path, so the answer comes at once however busy the broker is.

200 with status "ok" or "degraded", 503 with "down" (project/health/checks.py says which).
The snapshot carries its time (`checked_at`, `age_seconds`); one older than
HEALTH_MAX_AGE_SECONDS, or none at all yet, answers "down": whatever it said is no longer
known, and a refresher that hangs or died must not keep answering an old "ok".

Anyone gets the status alone ({"status": "ok"}, and the same HTTP status): enough for a
load balancer. The details name hosts, queues and error texts, so they are for staff
(an admin session) or a caller with HEALTH_TOKEN in the X-Health-Token header.
"""

import hmac
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import JsonResponse

from project import clock
from project.health.checks import HealthStatus
from project.health.monitor import Snapshot, monitor

HEALTH_TOKEN_HEADER = "X-Health-Token"


def healthz(request) -> JsonResponse:
    report = answer(monitor.latest(), now=clock.now())
    status = 503 if report["status"] == HealthStatus.DOWN else 200
    if not _may_see_details(request):
        report = {"status": report["status"]}
    return JsonResponse(report, status=status)


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


def _may_see_details(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = request.headers.get(HEALTH_TOKEN_HEADER, "")
    return bool(settings.HEALTH_TOKEN and token) and hmac.compare_digest(token.encode(),
                                                                        settings.HEALTH_TOKEN.encode())
