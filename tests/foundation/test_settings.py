"""Start-up refuses what is unsafe: missing secrets or a shifted clock in production, and
Celery settings that would hand one SQS message to two workers."""

import os
import subprocess
import sys

import pytest
from celery import Celery
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

import celeryconfig


def _import_settings(env: dict[str, str], code: str = "import project.settings") -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "SOLAPI", "DEBUG", "CLOCK"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env}, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
    )


def test_production_without_secrets_refuses_to_start_and_names_the_missing_one():
    result = _import_settings({"DEBUG": "0"})

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


PRODUCTION_SECRETS = {"DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50, "SOLAPI_API_KEY": "k", "SOLAPI_API_SECRET": "s",
                      "SOLAPI_WEBHOOK_SECRET": "w" * 32}


def test_an_empty_database_url_means_the_embedded_sqlite():
    result = _import_settings({"DATABASE_URL": "", "DEBUG": "1"},
                              code="import project.settings as s; print(s.DATABASES['default']['ENGINE'])")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_production_with_every_secret_starts():
    result = _import_settings(PRODUCTION_SECRETS)

    assert result.returncode == 0, result.stderr


def test_production_refuses_a_webhook_secret_shorter_than_32_characters():
    result = _import_settings({**PRODUCTION_SECRETS, "SOLAPI_WEBHOOK_SECRET": "w" * 31})

    assert result.returncode != 0
    assert "SOLAPI_WEBHOOK_SECRET is 31 characters" in result.stderr


def test_production_refuses_a_shifted_clock_which_only_tests_may_use():
    refused = _import_settings({**PRODUCTION_SECRETS, "CLOCK_OFFSET_SECONDS": "3600"})
    allowed = _import_settings({"DEBUG": "1", "CLOCK_OFFSET_SECONDS": "3600"})

    assert refused.returncode != 0
    assert "CLOCK_OFFSET_SECONDS is for tests only" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr


def _conf(**overrides):
    app = Celery("check", set_as_current=False)
    app.config_from_object(celeryconfig)
    app.conf.update(overrides)
    return app.conf


def test_the_shipped_celery_settings_pass_the_safety_check():
    celeryconfig.check_redelivery_safety(_conf())


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"task_time_limit": 2000}, "below the SQS visibility timeout"),
        ({"task_time_limit": None}, "task_time_limit must be set"),
        ({"worker_prefetch_multiplier": 4}, "prefetch"),
        ({"task_acks_late": False}, "acks_late"),
        ({"broker_transport_options": {"visibility_timeout": 900, "polling_interval": 0}}, "polling_interval"),
    ],
)
def test_unsafe_celery_settings_refuse_to_start(overrides, complaint):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        celeryconfig.check_redelivery_safety(_conf(**overrides))


def test_every_setting_in_celeryconfig_is_one_celery_knows():
    """A misspelt setting is silently ignored by Celery."""
    from celery.app.defaults import SETTING_KEYS

    ours = {k for k in vars(celeryconfig) if k.islower() and not k.startswith("_")}
    ours -= {"settings", "urlsplit", "check_redelivery_safety", "BULK_QUEUE", "INTERACTIVE_QUEUE", "Queue"}
    custom = {"events_broker_url"}  # read by project/events_bridge.py
    assert ours - custom <= SETTING_KEYS, ours - custom - SETTING_KEYS
