"""/metrics in the Prometheus text format, for staff or a caller with the health token.

Two sources, added up at each scrape:
- the counters and histograms processes record as things happen (messaging/metrics.py). With
  PROMETHEUS_MULTIPROC_DIR set, every process (each gunicorn worker, each pool child of a Celery
  worker) writes its values to files in its directory, and the scrape adds up the files of every
  directory in METRICS_SCRAPE_DIRS (default: its own PROMETHEUS_MULTIPROC_DIR). Without it, only
  this process's own values are seen (enough for a single-process dev server).
- gauges read from our tables (messaging/operations/gauges.py).

Each kind of process has a directory of its own, cleared of dead processes' files when it starts
(project/metrics_files.py:
gunicorn's on_starting hook, the Celery worker's worker_init signal): files of dead processes
would otherwise be added up for ever. docs/metrics.md, "Processes and directories".
"""

import glob
import logging
import os

from celery import bootsteps
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from messaging.compose.refusals import Refusal, RefusalCode
from messaging.operations.gauges import TableGauges
from project.metrics_files import MULTIPROC_ENV
from project.operator_access import may_read_operator_details

logger = logging.getLogger(__name__)


def metrics_view(request) -> HttpResponse:
    if not may_read_operator_details(request):
        refusal = Refusal(RefusalCode.NOT_AUTHENTICATED if not request.user.is_authenticated
                          else RefusalCode.PERMISSION_DENIED)
        return JsonResponse(refusal.as_body(), status=refusal.status)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def exposition() -> bytes:
    """The text a scrape gets: the processes' metrics, then the tables' gauges."""
    directories = scrape_dirs()
    if directories:
        processes = CollectorRegistry()
        processes.register(ProcessFiles(directories))
    else:
        processes = REGISTRY  # this process's own
    tables = CollectorRegistry()
    tables.register(TableGauges())
    return generate_latest(processes) + generate_latest(tables)


def scrape_dirs() -> list[str]:
    """The multiprocess directories to add up: METRICS_SCRAPE_DIRS (comma-separated, globs
    allowed), else this process's own; none outside multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return []
    patterns = settings.METRICS_SCRAPE_DIRS or [os.environ[MULTIPROC_ENV]]
    return sorted({d for pattern in patterns for d in glob.glob(pattern) if os.path.isdir(d)})


class ProcessFiles(Collector):
    """prometheus_client's MultiProcessCollector over several directories (one per kind of
    process), merged into one family per metric as a scrape needs."""

    def __init__(self, directories: list[str]):
        self.directories = directories

    def collect(self):
        files = [f for d in self.directories for f in glob.glob(os.path.join(d, "*.db"))]
        return MultiProcessCollector.merge(files, accumulate=True)


class WorkerMetricsServer(bootsteps.StartStopStep):
    """A worker on a host of its own has no web process to add up its files: with
    METRICS_WORKER_PORT set, its main process serves its pool's metrics (no table gauges: the web
    serves those) on METRICS_WORKER_BIND:METRICS_WORKER_PORT, for a Prometheus on the private
    network. No token there: bind it to an address only the scraper reaches (docs/metrics.md)."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.server = None

    def start(self, worker):
        port = settings.METRICS_WORKER_PORT
        directory = os.environ.get(MULTIPROC_ENV)
        if not port or not directory:
            return
        registry = CollectorRegistry()
        registry.register(ProcessFiles([directory]))
        self.server, _thread = start_http_server(port, addr=settings.METRICS_WORKER_BIND, registry=registry)
        logger.info("worker_metrics_serving bind=%s port=%s", settings.METRICS_WORKER_BIND, port)

    def stop(self, worker):
        if self.server is not None:
            self.server.shutdown()
