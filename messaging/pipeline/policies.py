"""The typed retry policy of the send step: what happens after each kind of failure.

| failure                                   | policy                                                        |
|-------------------------------------------|---------------------------------------------------------------|
| another task is sending the chunk         | wait for its lease, then look again                           |
| bad key, clock skew, our Solapi balance   | open the breaker; defer without charging, probe once per      |
|                                           | interval; past MESSAGING_PLATFORM_PAUSE_MAX_AGE fail, release |
| connection, timeout, 429, 5xx             | retry with exponential backoff and jitter through SQS         |
|                                           | DelaySeconds; after MESSAGING_TRANSIENT_MAX_ATTEMPTS fail     |
|                                           | transient_exhausted, release                                  |
| any other refusal of the request          | fail now, release                                             |

Per-message verdicts (sender unregistered, recipient invalid, content …) are not
errors of the request: delivery._record_registrations applies them message by message.
"""

import logging
from datetime import timedelta

from celery import Task
from django.conf import settings

from messaging.failures import FailureClass
from messaging.pipeline import breaker, delivery
from messaging.pipeline.backoff import backoff_seconds, retry_later
from messaging.solapi.errors import SolapiError, SolapiPlatformError, SolapiRejectedError, SolapiTransientError

logger = logging.getLogger(__name__)


def handle_send_failure(task: Task, chunk_id: int, error: Exception) -> None:
    """Apply the policy: raises celery's Retry to defer, or returns after giving up
    (the chain then finalizes, releasing the credit of what was not sent)."""
    if isinstance(error, delivery.ChunkBusy):
        raise retry_later(task, delay=int(error.seconds_left) + 1, exc=error)
    if isinstance(error, SolapiPlatformError):
        breaker.trip(error)
    if isinstance(error, SolapiPlatformError | breaker.PlatformPaused):
        _pause(task, chunk_id, error)
    elif isinstance(error, SolapiTransientError):
        _retry_transient(task, chunk_id, error)
    elif isinstance(error, SolapiRejectedError):
        logger.warning("send_rejected chunk=%s http_status=%s error_code=%s", chunk_id, error.http_status,
                       error.error_code)
        delivery.give_up_sending(chunk_id, FailureClass.REJECTED, f"Solapi: {error.error_code} {error.detail}")
    else:
        raise error


def _pause(task: Task, chunk_id: int, error: SolapiPlatformError | breaker.PlatformPaused) -> None:
    waited = delivery.record_pause(chunk_id, str(error))
    failure_class = FailureClass(error.failure_class or FailureClass.AUTH_FAILED)
    if waited > timedelta(seconds=settings.MESSAGING_PLATFORM_PAUSE_MAX_AGE):
        logger.error("pause_expired chunk=%s waited=%s failure_class=%s", chunk_id, waited, failure_class)
        delivery.give_up_sending(chunk_id, failure_class, f"Solapi paused for {waited}: {error}")
        return
    # Look again about when the breaker allows its next probe.
    probe = settings.MESSAGING_BREAKER_PROBE_SECONDS
    raise retry_later(task, delay=probe + backoff_seconds(0), exc=error)


def _retry_transient(task: Task, chunk_id: int, error: SolapiError) -> None:
    failures = delivery.record_transient_failure(chunk_id, error)
    if failures >= settings.MESSAGING_TRANSIENT_MAX_ATTEMPTS:
        logger.warning("transient_exhausted chunk=%s failures=%s last=%s", chunk_id, failures, error.detail)
        delivery.give_up_sending(chunk_id, FailureClass.TRANSIENT_EXHAUSTED,
                                 f"{failures} tries failed; last: {type(error).__name__} {error.detail}")
        return
    delay = backoff_seconds(failures - 1)
    logger.info("send_retry chunk=%s failures=%s delay=%s error=%s ambiguous=%s", chunk_id, failures, delay,
                type(error).__name__, error.ambiguous)
    raise retry_later(task, delay=delay, exc=error)
