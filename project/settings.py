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
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The dev stack runs web, worker and beat on one SQLite file. WAL lets readers and
    # one writer work at once; IMMEDIATE takes the write lock at BEGIN, so the ledger's
    # read-then-write transactions serialize instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "ko"
TIME_ZONE = "Asia/Seoul"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "messaging.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Academy messaging API",
    "DESCRIPTION": "Send SMS/LMS and KakaoTalk AlimTalk to students and parents.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page works offline: Swagger UI is served from the sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Broker (SQS) -----------------------------------------------------------------
AWS_REGION = env.str("AWS_REGION", default="ap-northeast-2")
MESSAGING_SQS_QUEUE_NAME = env.str("MESSAGING_SQS_QUEUE_NAME", default="academy-messaging-jobs")
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
# The unguessable part of the delivery-report webhook path. Solapi signs nothing,
# so knowing this path is what authenticates a report.
SOLAPI_WEBHOOK_SECRET = _secret("SOLAPI_WEBHOOK_SECRET")

# --- The delivery pipeline ----------------------------------------------------------
# Messages per chain (one Solapi group). Solapi takes at most 10,000 per request;
# the default comes from benchmarks/ (docs/benchmarks.md).
MESSAGING_CHUNK_SIZE = env.int("MESSAGING_CHUNK_SIZE", default=1000)
# Send requests up to this many recipients go to the interactive queue, so a parent's
# attendance alert is not stuck behind another academy's broadcast.
MESSAGING_INTERACTIVE_MAX_RECIPIENTS = env.int("MESSAGING_INTERACTIVE_MAX_RECIPIENTS", default=50)
# The longest a pipeline task may run. The SQS visibility timeout must exceed it
# (celeryconfig.check_redelivery_safety); a chunk's Solapi calls take at most 3 read timeouts.
MESSAGING_TASK_TIME_LIMIT = env.int("MESSAGING_TASK_TIME_LIMIT", default=150)
MESSAGING_SQS_VISIBILITY_TIMEOUT = env.int("MESSAGING_SQS_VISIBILITY_TIMEOUT", default=900)
# Transient Solapi failures (connection, 429, 5xx, timeout): tries, and the backoff.
MESSAGING_TRANSIENT_MAX_ATTEMPTS = env.int("MESSAGING_TRANSIENT_MAX_ATTEMPTS", default=6)
MESSAGING_RETRY_BASE_SECONDS = env.int("MESSAGING_RETRY_BASE_SECONDS", default=5)
MESSAGING_RETRY_MAX_SECONDS = env.int("MESSAGING_RETRY_MAX_SECONDS", default=900)
# Platform faults (bad key, clock skew, our Solapi balance): how long messages wait for
# a fix before they fail, and how often a paused worker probes Solapi again.
MESSAGING_PLATFORM_PAUSE_MAX_AGE = env.int("MESSAGING_PLATFORM_PAUSE_MAX_AGE", default=6 * 3600)
MESSAGING_BREAKER_PROBE_SECONDS = env.int("MESSAGING_BREAKER_PROBE_SECONDS", default=60)
# A send request not dispatched this long after creation is published again by beat.
MESSAGING_REDISPATCH_AFTER_SECONDS = env.int("MESSAGING_REDISPATCH_AFTER_SECONDS", default=60)
# A chunk that has not moved for this long is driven again by beat (its tasks are idempotent).
MESSAGING_STALE_CHUNK_SECONDS = env.int("MESSAGING_STALE_CHUNK_SECONDS", default=1200)
# How often each worker writes its heartbeat row (/healthz reads them).
MESSAGING_WORKER_HEARTBEAT_SECONDS = env.float("MESSAGING_WORKER_HEARTBEAT_SECONDS", default=15.0)
# Accepted messages without a delivery report: poll Solapi after this long, and give
# up (fail and refund) after the longest carrier timeout (LMS/MMS: 80 hours).
MESSAGING_REPORT_POLL_AFTER_SECONDS = env.int("MESSAGING_REPORT_POLL_AFTER_SECONDS", default=3600)
MESSAGING_REPORT_TIMEOUT_SECONDS = env.int("MESSAGING_REPORT_TIMEOUT_SECONDS", default=80 * 3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phones": {"()": "project.logging.PhoneMaskingFilter"}},
    "formatters": {"kv": {"()": "project.logging.KeyValueFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "kv", "filters": ["mask_phones"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # httpx logs every request at INFO; our DeliveryAttempt rows already record each Solapi call.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}
