"""Error tracking with Sentry: on when SENTRY_DSN is set, off (and never imported) otherwise.

Django and Celery integrations: a request's or a task's unhandled exception is an event; the
logging integration makes every ERROR log line an event too (the alerts of
messaging/operations/alerts.py are ERROR lines) and keeps INFO lines as breadcrumbs.

Nothing leaves unscrubbed. Events and breadcrumbs pass through `scrub`, which masks, in every
string anywhere in them (messages, exception values, stack locals, request data, extras):
phone numbers (tenants/phones.py, as in the logs), the webhook secret (project/logging.py),
every configured secret's value, and API tokens. send_default_pii stays off, so Sentry's own
scrubber also drops cookies, Authorization headers and locals named like secrets.
docs/alerts.md, "Error tracking".
"""

import re
from typing import Any

from django.conf import settings

from project.logging import MASKED_SECRET, mask_secrets
from tenants.phones import mask_phones_in_text

# DRF's tokens (rest_framework.authtoken) are 40 hex characters; so is a SHA-1, which an
# event has no reason to carry either.
_API_TOKEN = re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{40}(?![0-9a-fA-F])")
MASKED_TOKEN = "[token]"
# Settings whose values are secrets wherever they turn up in an event.
SECRET_SETTINGS = ("SECRET_KEY", "SOLAPI_API_KEY", "SOLAPI_API_SECRET", "SOLAPI_WEBHOOK_SECRET", "HEALTH_TOKEN")
# Shorter values are not worth masking (and would mask ordinary words).
_MIN_SECRET_LENGTH = 8


def init(dsn: str, *, environment: str = "", release: str = "") -> None:
    """Start the SDK in this process (project/settings.py calls it when SENTRY_DSN is set)."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # Errors only: tracing would send every request's and task's spans.
        traces_sample_rate=0.0,
        send_default_pii=False,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
    )


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return scrub(event)


def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return scrub(crumb)


def scrub(value: Any) -> Any:
    """The same structure with every string masked (dict keys too: a phone number can be one)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def scrub_text(text: str) -> str:
    text = mask_secrets(text)
    for name in SECRET_SETTINGS:
        secret = getattr(settings, name, "")
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, MASKED_SECRET)
    text = _API_TOKEN.sub(MASKED_TOKEN, text)
    return mask_phones_in_text(text)
