"""`manage.py check --deploy` is clean with production settings (DEBUG off, secrets and
hosts from the environment, nothing else): HTTPS, HSTS and secure cookies are the defaults."""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings


def _check_deploy(tmp_path, **overrides: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO", "SOLAPI", "DEBUG", "SECURE", "SESSION", "CSRF", "API_", "DATABASE"))}
    env = {**clean, "DEBUG": "0", "DJANGO_SETTINGS_MODULE": "project.settings",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "SOLAPI_API_KEY": "NCSPRODUCTIONKEY",
           "SOLAPI_API_SECRET": secrets.token_urlsafe(32), "SOLAPI_WEBHOOK_SECRET": secrets.token_urlsafe(32),
           "ALLOWED_HOSTS": "api.academy.example", "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
           **overrides}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)


def test_the_deploy_check_is_clean_with_production_settings(tmp_path):
    result = _check_deploy(tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(("override", "warning"), [
    ({"SECURE_SSL_REDIRECT": "0"}, "security.W008"),
    ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
    ({"SESSION_COOKIE_SECURE": "0"}, "security.W012"),
])
def test_switching_a_protection_off_makes_the_check_complain(tmp_path, override, warning):
    """The clean result above comes from the settings, not from a check that never looks."""
    result = _check_deploy(tmp_path, **override)

    assert result.returncode != 0 and warning in result.stdout + result.stderr


@pytest.mark.django_db
def test_with_the_ssl_redirect_on_only_healthz_answers_plain_http(client, settings):
    """The load balancer probes /healthz over HTTP inside the network; everything else moves to HTTPS."""
    settings.SECURE_SSL_REDIRECT = True

    api = client.get("/api/v1/credits")
    health = client.get("/healthz")

    assert (api.status_code, api["Location"]) == (301, "https://testserver/api/v1/credits")
    assert health.status_code in (200, 503) and "status" in health.json()
