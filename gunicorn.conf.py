"""gunicorn's settings: the Procfile's `web` and `edge` processes read this file.

Its access and error logs go through the project's logging (project/logging.py): key=value
lines with phone numbers and the delivery-report webhook's secret masked. gunicorn's own
handlers would print each request line as it came, the secret path segment included
(docs/security.md, section 4).

The number of processes is the Procfile's (`--workers`); the threads in each come from here
(docs/operations.md, "The web tier").
"""

import os
import threading

from project.logging import gunicorn_logging_config
from project.metrics_files import reset_multiproc_dir

# The access log on standard output, one masked line per request.
accesslog = "-"
# gunicorn's default line plus the time the request took in ms (%(M)s): a slow answer tells
# "waited for a thread" (the client's time minus this) from "slow to handle" (this) at a glance.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
logconfig_dict = gunicorn_logging_config()

# A request spends most of its time waiting: on PostgreSQL, on the SQS publish. A sync worker
# holds its process for all of it, so two of them queued every other request (docs/benchmarks.md,
# "Everyday load"). Threads overlap the waits within one process.
worker_class = "gthread"
# Threads per process, sized by `make bench-load --quick` (docs/benchmarks.md, "The web tier's
# threads"): past this, latency no longer falls on two cores. Every thread may hold one persistent
# database connection (CONN_MAX_AGE), so processes x threads is the web tier's share of
# PostgreSQL's max_connections; and a thread publishing a task takes one of Celery's broker
# connections, of which each process pools 10 (broker_pool_limit): more threads would wait there.
threads = int(os.environ.get("WEB_THREADS", "8"))
# Seconds an idle keep-alive connection stays open. gunicorn's default, 2 s, is shorter than a
# client's pause between requests (a staff member's browser, a load balancer's pooled
# connection): the server then closes a connection the client is just reusing, and that request
# fails without an answer (the everyday load saw it: docs/benchmarks.md, "Everyday load"). Keep
# it above the load balancer's idle timeout (60 s on AWS's ALB), so the balancer, not gunicorn,
# ends idle connections. gthread waits on idle connections without holding a thread.
keepalive = int(os.environ.get("WEB_KEEPALIVE_SECONDS", "75"))
# gunicorn 25+ opens a control socket for `gunicornc` at one path per user ($HOME/.gunicorn/
# gunicorn.ctl): the web and edge processes of one host would take it from each other. Nothing
# here uses gunicornc; processes are managed by the Procfile's runner.
control_socket_disable = True


def post_worker_init(worker) -> None:
    """An `edge` process answers /healthz from its own snapshot, refreshed in the background
    (project/health/monitor.py); started here, after the fork, so the thread runs in the worker.
    The `web` runs with HEALTH_MONITOR=0 (the Procfile) and reads the snapshot the edge stores.
    Both set up their broker connections in the background too."""
    from django.conf import settings

    from project.celery import app, warm_up_publishing
    from project.health.monitor import monitor

    if settings.HEALTH_MONITOR:
        monitor.start()
    _freeze_what_startup_made()
    # The broker connections this process's threads publish on (the webhook's apply, a send's
    # dispatch), set up before the first request needs one (project/celery.py).
    threading.Thread(target=warm_up_publishing, args=(min(threads, app.conf.broker_pool_limit or threads),),
                     name="publish-warm-up", daemon=True).start()


def _freeze_what_startup_made() -> None:
    """The views are imported first (they would be on the first request), then what startup
    made is left out of later collections (project/startup_objects.py)."""
    from django.urls import get_resolver

    from project.startup_objects import freeze_startup_objects

    get_resolver().url_patterns  # noqa: B018 (imports every view, serializer and service)
    freeze_startup_objects()


def on_starting(server) -> None:
    """In the master, before any worker: the web's metrics directory starts without the files of
    processes that are gone (project/metrics_files.py)."""
    reset_multiproc_dir()
