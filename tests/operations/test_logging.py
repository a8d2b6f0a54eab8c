"""Phone numbers never reach a log line or a task result; secrets never reach a log."""

import io
import logging
import re
import sys

import pytest
from django.conf import settings
from django_celery_results.models import TaskResult

from harness.academies import make_academy
from tests.pipeline.conftest import send, wait_settled

RAW_MOBILE = re.compile(r"(?<!\d)01[016789]-?\d{3,4}-?\d{4}(?!\d)")


@pytest.fixture
def log_output():
    """What the configured console handler writes (format and filters as in production)."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console" or h.filters)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def test_phone_numbers_are_masked_in_messages_arguments_and_extra_fields(log_output):
    logger = logging.getLogger("messaging.test")

    logger.warning("send failed to %s", "010-1234-5678", extra={"recipient": "+82 10 9876 5432"})
    logger.warning("sent to 01055556666 and 02-123-4567")

    line = log_output.getvalue()
    assert RAW_MOBILE.search(line) is None, line
    assert "010****5678" in line and "010****6666" in line
    assert "9876" not in line and "****5432" in line  # the +82 form too
    assert line.startswith("ts=") and " level=WARNING logger=messaging.test " in line


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_whole_send_leaves_no_phone_number_or_secret_in_worker_logs_or_task_results(worker, sandbox, academy):
    worker_log_start = len(worker.log())
    # An error path too: the shared send fails, then the chain it hands over to retries once.
    sandbox.fail_next("send_group", times=2, action="5xx")

    wait_settled(send(academy))

    logged = worker.log()[worker_log_start:]
    stored = " ".join(str(v) for row in TaskResult.objects.values("task_args", "task_kwargs", "result", "traceback")
                      for v in row.values())
    for phone in academy.parent_phones():
        assert phone not in logged and phone not in stored
    assert settings.SOLAPI_API_SECRET not in logged
    assert "task_retry" in logged  # the error path really ran


@pytest.fixture
def academy(transactional_db, sandbox):
    return make_academy()


def test_exceptions_and_dicts_in_arguments_are_masked_too(log_output):
    """A duplicate-key error quotes the row's key, phone number included."""
    logger = logging.getLogger("messaging.test")
    error = ValueError('duplicate key value violates unique constraint "suppress_once" '
                       "DETAIL: Key (tenant_id, phone)=(1, 01012345678) already exists.")

    logger.warning("suppress failed: %s (%r)", error, error)
    logger.warning("task failed: %(exc)s %(kwargs)s", {"exc": error, "kwargs": {"phone": "01023456789"}})
    logger.warning("as a list: %s, count %d, cost %.2f", ["01034567890"], 3, 13.0)
    try:
        raise error
    except ValueError:
        logger.exception("with a traceback")

    text = log_output.getvalue()
    assert RAW_MOBILE.search(text) is None, text
    assert text.count("010****5678") == 4 and "010****6789" in text and "010****7890" in text
    assert "count 3, cost 13.00" in text


def test_a_traceback_is_masked_for_any_formatter():
    """Celery's and gunicorn's own formatters print record.exc_text when it is set."""
    from project.logging import PhoneMaskingFilter

    try:
        raise ValueError("Key (tenant_id, phone)=(1, 01012345678) already exists.")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    PhoneMaskingFilter().filter(record)

    assert "01012345678" not in logging.Formatter().format(record)
