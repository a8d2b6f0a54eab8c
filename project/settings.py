"""Django settings, read from the environment (12-factor).

MESSAGING_SQS_QUEUE_NAME, MESSAGING_SQS_WAIT_SECONDS, AWS_REGION and SOLAPI_API_* keep
the names an existing deployment already sets (docs/migration-from-the-old-worker.md,
"Names kept from the old system"). With DEBUG off every secret must be set: a missing
one stops start-up instead of falling back to a default that would quietly run in
production.
Celery's own settings live in celeryconfig.py.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from project.logging import log_format, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
DEBUG = env.bool("DEBUG", default=False)

# Values that are only acceptable on a developer's machine. make run and the test
# suite point the Solapi sandbox at the same pair.
DEV_SOLAPI_API_KEY = "SANDBOXKEY0000001"
DEV_SOLAPI_API_SECRET = "sandbox-secret-0000000000000000000001"
_DEV_SECRETS = {
    "DJANGO_SECRET_KEY": "dev-only-insecure-secret-key-never-use-in-production",
    "SOLAPI_API_KEY": DEV_SOLAPI_API_KEY,
    "SOLAPI_API_SECRET": DEV_SOLAPI_API_SECRET,
    "SOLAPI_WEBHOOK_SECRET": "dev-webhook-secret",
}


def _secret(name: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return _DEV_SECRETS[name]
    raise ImproperlyConfigured(
        f"{name} is not set. With DEBUG off every secret must come from the environment; "
        f"set {name}, or set DEBUG=1 on a development machine."
    )


SECRET_KEY = _secret("DJANGO_SECRET_KEY")

# Shifts project.clock for every process that reads it (tests at other dates and hours,
# with real worker subprocesses). A production clock must be the real one.
CLOCK_OFFSET_SECONDS = env.float("CLOCK_OFFSET_SECONDS", default=0.0)
if CLOCK_OFFSET_SECONDS and not DEBUG:
    raise ImproperlyConfigured(
        "CLOCK_OFFSET_SECONDS is for tests only: unset it, or set DEBUG=1 on a development machine."
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

# --- HTTPS (production is behind a TLS-terminating proxy) ---------------------------
# `manage.py check --deploy` is clean with these defaults and DEBUG off
# (tests/foundation/test_deploy_check.py). Each can be switched off from the environment.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# The load balancer probes /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# The proxy says which scheme the client used. Trusted only when the proxy sets (and
# overwrites) the header; with no proxy in front, switch it off.
if env.bool("SECURE_PROXY_SSL_HEADER", default=not DEBUG):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Django's admin with the operations console's site (project/admin_site.py).
    "project.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "tenants",
    "billing",
    "messaging",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body: an oversized one is answered 413 in JSON.
    "project.limits.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Empty counts as unset (`DATABASE_URL= make test`): django-environ would fail on "" with
# KeyError: 'ENGINE', which says nothing of the variable.
DATABASES = {"default": env.db_url_config(env.str("DATABASE_URL", default="")
                                          or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The dev stack runs web, worker and beat on one SQLite file. WAL lets readers and
    # one writer work at once; IMMEDIATE takes the write lock at BEGIN, so the ledger's
    # read-then-write transactions serialize instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
# Persistent connections: a web thread, or a worker process (project/worker_connections.py),
# reuses its connection for this many seconds instead of opening a PostgreSQL session per request
# or task (a session costs a backend process and a few milliseconds; the everyday load opened
# thousands, docs/benchmarks.md). 0: one per request or task.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# A reused connection is pinged before its first query in each request or task, so one the
# server dropped meanwhile (a restart, a failover, an idle timeout) is replaced, not failed on.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "ko"
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True
# The admin prints every time in TIME_ZONE with its zone ("2026-03-02 09:00:00 KST").
FORMAT_MODULE_PATH = ["project.formats"]
# Corrections to Django's Korean admin strings (project/locale/ko/LC_MESSAGES/django.po).
LOCALE_PATHS = [BASE_DIR / "project" / "locale"]
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# Bodies over this many bytes are refused with 413 {code, detail} (project/limits.py).
# The largest valid send (10,000 student ids, a 4,000-character body) is about 150 KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)

# Throttle counters live in the cache: with more than one web process, point CACHE_URL at
# a shared cache (e.g. redis://host:6379/4), or each process counts on its own.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "messaging.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "messaging.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "messaging.api.errors.exception_handler",
    # Per token and per academy (messaging/api/throttles.py); rates are read per request
    # from API_THROTTLE_RATES below, so they can be changed without touching DRF's cache.
    "DEFAULT_THROTTLE_CLASSES": ["messaging.api.throttles.TokenRateThrottle"],
}
# Requests per period ("<n>/second|minute|hour|day") for each caller and each academy.
API_THROTTLE_RATES = {
    "token": env.str("API_THROTTLE_TOKEN_RATE", default="120/minute"),
    "academy": env.str("API_THROTTLE_ACADEMY_RATE", default="600/minute"),
}
# Messages an academy may have accepted per day (KST), over all its send requests.
MESSAGING_DAILY_MESSAGE_LIMIT = env.int("MESSAGING_DAILY_MESSAGE_LIMIT", default=100_000)
# /api/schema/ and /api/docs/ for anyone; otherwise for staff only (admin login).
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=DEBUG)
# /healthz details (database errors, queues, workers) for callers with this token in the
# X-Health-Token header, or staff; everyone else gets {"status": …} only. Empty: staff only.
HEALTH_TOKEN = env.str("HEALTH_TOKEN", default="")
# /healthz answers from a snapshot the edge refreshes in the background this often
# (project/health/monitor.py): its checks make SQS calls, which a probe must not wait for.
HEALTH_REFRESH_SECONDS = env.float("HEALTH_REFRESH_SECONDS", default=5.0)
# Whether this process runs the checks (project/health/monitor.py). The Procfile's `web` says
# no: its processes answer /healthz from the snapshot the `edge` stores, so SQS is polled by one
# process rather than by every web process (issue 18: those calls competed with the sends).
HEALTH_MONITOR = env.bool("HEALTH_MONITOR", default=True)
# A snapshot older than this answers "down": its refresher is stuck (a hanging broker or
# database) or gone. Several refreshes long, so one slow round is not an outage.
HEALTH_MAX_AGE_SECONDS = env.float("HEALTH_MAX_AGE_SECONDS", default=30.0)
if HEALTH_MAX_AGE_SECONDS <= HEALTH_REFRESH_SECONDS:
    raise ImproperlyConfigured(
        f"HEALTH_MAX_AGE_SECONDS ({HEALTH_MAX_AGE_SECONDS}) must exceed HEALTH_REFRESH_SECONDS "
        f"({HEALTH_REFRESH_SECONDS}), or every snapshot would be stale before the next one."
    )
SPECTACULAR_SETTINGS = {
    "TITLE": "Academy messaging API",
    "DESCRIPTION": "Send SMS/LMS and KakaoTalk AlimTalk to students and parents.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page works offline: Swagger UI is served from the sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several choice sets are called `status`: each gets the name of what it is.
    "ENUM_NAME_OVERRIDES": {
        "SendRequestStatusEnum": "messaging.models.SendRequestStatus",
        "MessageStatusEnum": "messaging.models.MessageStatus",
        "TemplateStatusEnum": "tenants.models.TemplateStatus",
    },
}

# --- Broker (SQS) -----------------------------------------------------------------
AWS_REGION = env.str("AWS_REGION", default="ap-northeast-2")
MESSAGING_SQS_QUEUE_NAME = env.str("MESSAGING_SQS_QUEUE_NAME", default="academy-messaging-jobs")
# What this worker process consumes: `all` (one worker for everything: dev, tests), `bulk` or
# `interactive` (the Procfile's two workers, so small sends never wait for a broadcast's chunk:
# messaging/pipeline/queues.py, WorkerQueues).
# Checked when a worker starts (project/celery.py).
MESSAGING_WORKER_QUEUES = env.str("MESSAGING_WORKER_QUEUES", default="all")
# SQS long-poll length (0-20 s).
MESSAGING_SQS_WAIT_SECONDS = env.int("MESSAGING_SQS_WAIT_SECONDS", default=20)
# Production: "sqs://" with an IAM role. Dev and tests: the local moto server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="sqs://dev:dev@127.0.0.1:9324")
# Queue URLs created by infrastructure code. When set, kombu never lists or creates
# queues, and the VisibilityTimeout configured on the queue is authoritative.
SQS_QUEUE_URL = env.str("SQS_QUEUE_URL", default="")
SQS_INTERACTIVE_QUEUE_URL = env.str("SQS_INTERACTIVE_QUEUE_URL", default="")
# Where workers publish Celery events for Flower (a Redis URL). Empty: events off.
CELERY_EVENTS_BROKER_URL = env.str("CELERY_EVENTS_BROKER_URL", default="")

# --- Solapi -----------------------------------------------------------------------
SOLAPI_API_KEY = _secret("SOLAPI_API_KEY")
SOLAPI_API_SECRET = _secret("SOLAPI_API_SECRET")
SOLAPI_BASE_URL = env.str("SOLAPI_BASE_URL", default="https://api.solapi.com").rstrip("/")
SOLAPI_CONNECT_TIMEOUT = env.float("SOLAPI_CONNECT_TIMEOUT", default=3.0)
SOLAPI_READ_TIMEOUT = env.float("SOLAPI_READ_TIMEOUT", default=20.0)
# Solapi calls per second for the whole account, shared by every worker process (kept in the
# database: messaging/solapi/rate_limit.py). Solapi documents no limit; we stay well below
# anything that makes it answer 429. 0 turns the limiter off.
SOLAPI_MAX_REQUESTS_PER_SECOND = env.float("SOLAPI_MAX_REQUESTS_PER_SECOND", default=20.0)
# The unguessable part of the delivery-report webhook path. Solapi signs nothing,
# so knowing this path is what authenticates a report.
SOLAPI_WEBHOOK_SECRET = _secret("SOLAPI_WEBHOOK_SECRET")
MIN_WEBHOOK_SECRET_LENGTH = 32
if not DEBUG and len(SOLAPI_WEBHOOK_SECRET) < MIN_WEBHOOK_SECRET_LENGTH:
    raise ImproperlyConfigured(
        f"SOLAPI_WEBHOOK_SECRET is {len(SOLAPI_WEBHOOK_SECRET)} characters; it is the only credential of "
        f"the delivery-report webhook, so production needs at least {MIN_WEBHOOK_SECRET_LENGTH} "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
    )

# --- The delivery pipeline ----------------------------------------------------------
# Messages per chain (one Solapi group). Solapi takes at most 10,000 per request;
# the default comes from benchmarks/ (docs/benchmarks.md).
MESSAGING_CHUNK_SIZE = env.int("MESSAGING_CHUNK_SIZE", default=1000)
# Send requests up to this many recipients go to the interactive queue, so a parent's
# attendance alert is not stuck behind another academy's broadcast.
MESSAGING_INTERACTIVE_MAX_RECIPIENTS = env.int("MESSAGING_INTERACTIVE_MAX_RECIPIENTS", default=50)
# Small requests arriving within this window share one Solapi group, up to this many
# messages (messaging/pipeline/express.py). 0 sends each as soon as its task runs.
MESSAGING_SHARED_GROUP_WINDOW_MS = env.int("MESSAGING_SHARED_GROUP_WINDOW_MS", default=200)
MESSAGING_SHARED_GROUP_MAX_MESSAGES = env.int("MESSAGING_SHARED_GROUP_MAX_MESSAGES", default=1000)
# A small send publishes no dispatch of its own while one published for its queue is due to
# start: that one's sweep takes it (messaging/pipeline/outbox.py, request_dispatch). A dispatch
# not started within this many seconds (lost, or deep in a backlog) no longer counts: the next
# send publishes again. What a lost one leaves behind, the outbox relay publishes.
MESSAGING_DISPATCH_COALESCE_SECONDS = env.float("MESSAGING_DISPATCH_COALESCE_SECONDS", default=5.0)
# An academy's broadcasts keep at most their fair share of the workers' task slots times this
# many chunks on the queue (messaging/pipeline/pacing.py). 1: a neighbour's chunk waits behind
# no queued chunk of another academy; the next chunk is published as one finishes, so a
# process waits only the publish's round trip (docs/capacity.md).
MESSAGING_PACING_DEPTH = env.int("MESSAGING_PACING_DEPTH", default=1)
# The longest a pipeline task may run. The SQS visibility timeout must exceed it
# (celeryconfig.check_redelivery_safety); a chunk's Solapi calls take at most 3 read timeouts.
MESSAGING_TASK_TIME_LIMIT = env.int("MESSAGING_TASK_TIME_LIMIT", default=150)
MESSAGING_SQS_VISIBILITY_TIMEOUT = env.int("MESSAGING_SQS_VISIBILITY_TIMEOUT", default=900)
# Transient Solapi failures (connection, 5xx, timeout): tries, and the backoff.
MESSAGING_TRANSIENT_MAX_ATTEMPTS = env.int("MESSAGING_TRANSIENT_MAX_ATTEMPTS", default=6)
MESSAGING_RETRY_BASE_SECONDS = env.int("MESSAGING_RETRY_BASE_SECONDS", default=5)
MESSAGING_RETRY_MAX_SECONDS = env.int("MESSAGING_RETRY_MAX_SECONDS", default=900)
# 429s are not counted as tries: a chunk waits them out (Retry-After, else the backoff) for up
# to this long after the first, so a storm of an hour loses nothing.
MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS = env.int("MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS", default=3600)
# Platform faults (bad key, clock skew, our Solapi balance): how long messages wait for
# a fix before they fail, and how often a paused worker probes Solapi again.
MESSAGING_PLATFORM_PAUSE_MAX_AGE = env.int("MESSAGING_PLATFORM_PAUSE_MAX_AGE", default=6 * 3600)
MESSAGING_BREAKER_PROBE_SECONDS = env.int("MESSAGING_BREAKER_PROBE_SECONDS", default=60)
# A send request not dispatched this long after creation is published again by beat.
MESSAGING_REDISPATCH_AFTER_SECONDS = env.int("MESSAGING_REDISPATCH_AFTER_SECONDS", default=60)
# A chunk that has not moved for this long is driven again by beat (its tasks are idempotent).
MESSAGING_STALE_CHUNK_SECONDS = env.int("MESSAGING_STALE_CHUNK_SECONDS", default=1200)
# Back-pressure (messaging/operations/backlog.py): a send whose estimated start is further
# away than this is still accepted, and its answer says so (`delayed`); /healthz turns
# "degraded". The drain rate behind the estimate is measured over the last window.
MESSAGING_BACKLOG_WARN_SECONDS = env.int("MESSAGING_BACKLOG_WARN_SECONDS", default=60)
MESSAGING_BACKLOG_RATE_WINDOW_SECONDS = env.int("MESSAGING_BACKLOG_RATE_WINDOW_SECONDS", default=60)
# A send's answer reuses its queue's estimate for this long, per process: under the everyday
# load every send computed one (four queries that grow with the backlog); a second-old estimate
# guides staff as well. Past it, a background thread estimates again while sends answer the
# one they have (messaging/operations/backlog.py). 0 computes one in every send.
MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS = env.float("MESSAGING_BACKLOG_ANSWER_CACHE_SECONDS", default=1.0)
# How often each worker writes its heartbeat row (/healthz reads them).
MESSAGING_WORKER_HEARTBEAT_SECONDS = env.float("MESSAGING_WORKER_HEARTBEAT_SECONDS", default=15.0)
# Accepted messages without a delivery report: poll Solapi after this long, and give
# up (fail and refund) after the longest carrier timeout (LMS/MMS: 80 hours).
MESSAGING_REPORT_POLL_AFTER_SECONDS = env.int("MESSAGING_REPORT_POLL_AFTER_SECONDS", default=3600)
MESSAGING_REPORT_TIMEOUT_SECONDS = env.int("MESSAGING_REPORT_TIMEOUT_SECONDS", default=80 * 3600)
# The webhook stores a POST's reports and answers; a task applies them (messaging/reports/inbox.py).
# A batch still waiting this long (its publish failed, its task was lost, its apply failed) is
# published again by beat's sweep. Well above a busy queue's wait, so the sweep does not publish
# beside a task that is merely queued (a second one would find nothing to do, and cost nothing else).
MESSAGING_REPORT_REAPPLY_AFTER_SECONDS = env.int("MESSAGING_REPORT_REAPPLY_AFTER_SECONDS", default=60)

# Retention (messaging/operations/retention.py, docs/retention.md): rows older than these many
# days are deleted by beat once no step needs them any more; 0 keeps a table's rows for ever.
RETENTION_MESSAGE_OUTCOME_DAYS = env.int("RETENTION_MESSAGE_OUTCOME_DAYS", default=365)
RETENTION_DELIVERY_ATTEMPT_DAYS = env.int("RETENTION_DELIVERY_ATTEMPT_DAYS", default=90)
RETENTION_DELIVERY_REPORT_DAYS = env.int("RETENTION_DELIVERY_REPORT_DAYS", default=90)
RETENTION_TASK_RESULT_DAYS = env.int("RETENTION_TASK_RESULT_DAYS", default=7)
# Applied webhook batches: their reports are in DeliveryReport; the raw POST only helps to look
# into what Solapi sent lately. Waiting batches are never pruned.
RETENTION_REPORT_BATCH_DAYS = env.int("RETENTION_REPORT_BATCH_DAYS", default=7)
# Rows (ids) per DELETE statement, each in its own transaction, and how long one run may take.
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=5000)
RETENTION_TIME_BUDGET_SECONDS = env.float("RETENTION_TIME_BUDGET_SECONDS", default=30.0)

# One console handler, key=value lines, secrets and phone numbers masked (project/logging.py).
# LOG_FORMAT: kv (key=value lines, the default) or json (one object per line); project/logging.py.
LOGGING = logging_config(env.str("LOG_LEVEL", default="INFO"), log_format())

# --- Operator signals (docs/metrics.md, docs/alerts.md) -------------------------------
# Error tracking: Sentry (or a compatible server) when set; events are scrubbed of phone numbers,
# tokens and secrets before they leave (project/error_tracking.py).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from project import error_tracking

    error_tracking.init(SENTRY_DSN, environment=env.str("SENTRY_ENVIRONMENT", default=""),
                        release=env.str("SENTRY_RELEASE", default=""))
# /healthz's HTTP status when the deployment is degraded (it can take requests, but cannot send:
# the breaker is open, no worker is alive, or a chunk is stuck). 200 keeps a load balancer from
# taking web processes out for a fault that is not theirs; /healthz?strict answers 424 instead
# (a monitor's URL), or set this to any 2xx-5xx code (docs/alerts.md, "Health").
HEALTH_DEGRADED_STATUS = env.int("HEALTH_DEGRADED_STATUS", default=200)
# Alerts (messaging/operations/alerts.py): the oldest unfinished chunk may be this old before
# the stuck_chunk alert; report_timeout failures within this window raise unreported_messages;
# an alert still active is raised again after this long (0: only at its onset).
ALERT_OLDEST_CHUNK_SECONDS = env.int("ALERT_OLDEST_CHUNK_SECONDS", default=1800)
ALERT_UNREPORTED_WINDOW_SECONDS = env.int("ALERT_UNREPORTED_WINDOW_SECONDS", default=24 * 3600)
ALERT_REPEAT_SECONDS = env.int("ALERT_REPEAT_SECONDS", default=3600)
# Reports wait seconds under a burst (sends go first); five times beat's 60-s re-apply sweep means stuck.
ALERT_REPORT_BACKLOG_SECONDS = env.int("ALERT_REPORT_BACKLOG_SECONDS", default=300)
# The prometheus_client directories /metrics adds up (comma-separated, globs allowed); empty: this
# process's own PROMETHEUS_MULTIPROC_DIR. make run: var/prometheus/* (web's and worker's).
METRICS_SCRAPE_DIRS = env.list("METRICS_SCRAPE_DIRS", default=[])
# A worker on a host of its own serves its pool's metrics here (0: off); bind it to an address only
# the scraper reaches: no token is asked there (docs/metrics.md).
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)
METRICS_WORKER_BIND = env.str("METRICS_WORKER_BIND", default="127.0.0.1")
# /metrics counts messages of the send requests created within this window (docs/metrics.md).
METRICS_MESSAGES_WINDOW_SECONDS = env.int("METRICS_MESSAGES_WINDOW_SECONDS", default=24 * 3600)
