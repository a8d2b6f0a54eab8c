"""Error tracking sends what an operator needs and nothing personal or secret.

A process started with SENTRY_DSN pointing at a local capture server (harness/sentry_capture.py)
raises an error whose message and locals hold a whole phone number, an API token and the Solapi
secret, and logs one at ERROR; the envelopes that arrive carry the errors, masked.
"""

import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings

from harness.sentry_capture import SentryCapture, event_text
from harness.waiting import wait_until

PHONE = "01098765432"
TOKEN = "0123456789abcdef0123456789abcdef01234567"  # a DRF token's shape
SOLAPI_SECRET = "solapi-secret-that-must-not-leave-0001"

SCRIPT = textwrap.dedent(f"""
    import logging
    import django
    django.setup()
    import sentry_sdk

    def send_to_parent():
        recipient = "{PHONE}"
        auth_header = "Token {TOKEN}"
        parent = {{"phone": "010-9876-5432", "note": "call " + recipient}}
        raise RuntimeError(f"Solapi refused {{recipient}} ({{auth_header}}, secret {SOLAPI_SECRET})")

    try:
        send_to_parent()
    except RuntimeError:
        sentry_sdk.capture_exception()
    logging.getLogger("messaging.test").error("send failed for %s with token %s", "{PHONE}", "{TOKEN}")
    sentry_sdk.flush(timeout=10)
""")


@pytest.fixture
def capture():
    server = SentryCapture().start()
    yield server
    server.stop()


def test_an_error_reaches_the_capture_server_without_phone_numbers_tokens_or_secrets(capture):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "SENTRY_DSN": capture.dsn,
           "SOLAPI_API_SECRET": SOLAPI_SECRET, "DATABASE_URL": "sqlite:///:memory:"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=settings.BASE_DIR, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    events = wait_until(lambda: len(capture.events()) >= 2 and capture.events(), what="both events to arrive")
    texts = [event_text(e) for e in events]
    raw = capture.raw()

    assert any("RuntimeError: Solapi refused 010****5432" in t for t in texts), texts
    assert any("send failed for 010****5432" in t for t in texts), texts
    # The locals were sent (the frame is there), masked.
    frames = [f for e in events for v in (e.get("exception") or {}).get("values", [])
              for f in v["stacktrace"]["frames"] if f.get("function") == "send_to_parent"]
    assert frames and frames[0]["vars"]["recipient"].strip("'") == "010****5432"
    for leaked in (PHONE, "010-9876-5432", TOKEN, SOLAPI_SECRET):
        assert leaked not in raw
