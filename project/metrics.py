"""/metrics in the Prometheus text format, for staff or a caller with the health token.

Two sources, added up at each scrape:
- the counters and histograms processes record as things happen (messaging/metrics.py). With
  PROMETHEUS_MULTIPROC_DIR set, every process (each gunicorn worker, each pool child of the
  Celery worker on this host) writes its values to files there and the scrape reads them all;
  without it, only this process's own values are seen (enough for a single-process dev server).
- gauges read from our tables (messaging/operations/gauges.py).

The directory must be emptied when the processes sharing it start (stale files of dead processes
would be added forever): `make run` does it (project/devstack.py), the tests use a fresh one, and
docs/metrics.md says how a deployment does it.
"""

import os
import shutil
from pathlib import Path

from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from messaging.compose.refusals import Refusal, RefusalCode
from messaging.operations.gauges import TableGauges
from project.operator_access import may_read_operator_details

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_view(request) -> HttpResponse:
    if not may_read_operator_details(request):
        refusal = Refusal(RefusalCode.NOT_AUTHENTICATED if not request.user.is_authenticated
                          else RefusalCode.PERMISSION_DENIED)
        return JsonResponse(refusal.as_body(), status=refusal.status)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def exposition() -> bytes:
    """The text a scrape gets: the processes' metrics, then the tables' gauges."""
    if os.environ.get(MULTIPROC_ENV):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY  # this process's own
    tables = CollectorRegistry(auto_describe=False)
    tables.register(TableGauges())
    return generate_latest(processes) + generate_latest(tables)


def reset_multiproc_dir(path: str | os.PathLike | None = None) -> Path | None:
    """Empty (or create) the directory before the processes that share it start."""
    path = path or os.environ.get(MULTIPROC_ENV)
    if not path:
        return None
    directory = Path(path)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory
