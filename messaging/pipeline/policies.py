"""What happens after each kind of failure: two tables, one for the send step's Solapi
errors, one for every exception any step can raise.

The send step (send_to_solapi), by failure:

| failure                                   | policy                                                        |
|-------------------------------------------|---------------------------------------------------------------|
| another execution is sending the chunk    | wait for its lease, then look again (never counted)           |
| bad key, clock skew, our Solapi balance   | open the breaker; defer without charging, probe once per      |
|                                           | interval; the messages show as paused, with the reason;       |
|                                           | past MESSAGING_PLATFORM_PAUSE_MAX_AGE fail, release           |
| 429 (Solapi, or our own account-wide      | wait Retry-After when given, else back off; not counted       |
| request rate: messaging/solapi/rate_limit)| against the transient budget; past                            |
|                                           | MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS since the first 429     |
|                                           | fail transient_exhausted, release                             |
| connection, timeout, 5xx                  | retry with exponential backoff and jitter through SQS         |
|                                           | DelaySeconds; after MESSAGING_TRANSIENT_MAX_ATTEMPTS fail     |
|                                           | transient_exhausted, release                                  |
| any other refusal of the request          | fail now, release                                             |

A shared group of small requests (messaging/pipeline/express.py) that fails is handed to
each chunk's chain from the send step: after_shared_send_failure counts the failure on
every chunk as the table above would and says how long the chains wait; the chains' send
step then applies the table.

Per-message verdicts (sender unregistered, recipient invalid, content …) are not
errors of the request: delivery._record_registrations applies them message by message.

Every step (dispatch, reserve, send, finalize), by exception (PipelineTask applies it):

| exception                                         | is                   | policy                                |
|---------------------------------------------------|----------------------|---------------------------------------|
| django.db OperationalError: connection closed or  | infrastructure       | close the broken connection; retry    |
| terminated, server restart, serialization failure,|                      | the step with backoff through SQS,    |
| deadlock, lock or statement timeout, SQLite       |                      | as often as it takes; never fails a   |
| "database is locked"                              |                      | message                               |
| django.db InterfaceError (connection already gone)| infrastructure       | the same                              |
| kombu OperationalError, botocore errors (SQS)     | infrastructure       | the same; if even the retry cannot be |
|                                                   |                      | published, SQS hands the message out  |
|                                                   |                      | again, and beat resumes stale chunks  |
| SolapiError, PlatformPaused, ChunkBusy, LeaseLost | Solapi / concurrency | the send step's table above           |
| anything else: IntegrityError, DataError,         | a defect in our code | the chain's errback (tasks.rollback): |
| ProgrammingError, a bug, a time limit             |                      | fail and release what provably did    |
|                                                   |                      | not reach Solapi; never a message     |
|                                                   |                      | that may have (delivery.roll_back_chunk)|
"""

import logging
import math
from contextlib import suppress
from datetime import timedelta

import botocore.exceptions
import kombu.exceptions
from celery import Task
from celery.exceptions import Reject
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections

from messaging.failures import FailureClass
from messaging.pipeline import breaker, delivery
from messaging.pipeline.backoff import backoff_seconds, retry_later
from messaging.solapi.errors import (
    SolapiError,
    SolapiPlatformError,
    SolapiRateLimited,
    SolapiRejectedError,
    SolapiTransientError,
)

logger = logging.getLogger(__name__)

DATABASE_FAULTS = (OperationalError, InterfaceError)
BROKER_FAULTS = (kombu.exceptions.OperationalError, botocore.exceptions.BotoCoreError,
                 botocore.exceptions.ClientError)
INFRASTRUCTURE_FAULTS = DATABASE_FAULTS + BROKER_FAULTS


def infrastructure_fault(error: BaseException) -> BaseException | None:
    """The infrastructure fault behind `error`, or None if it is none. Looks through the
    Reject that Task.retry raises when it could not publish the retry, and through an
    explicit `raise … from fault`; never through an implicit context, which would let a
    defect raised while handling a dropped connection pass for the connection's fault."""
    while error is not None:
        if isinstance(error, INFRASTRUCTURE_FAULTS):
            return error
        if isinstance(error, Reject):
            error = error.reason if isinstance(error.reason, BaseException) else None
        else:
            error = error.__cause__
    return None


def retry_after_infrastructure_fault(task: Task, error: BaseException):
    """Close what broke and re-publish the step with backoff. Use as `raise …`."""
    if isinstance(error, DATABASE_FAULTS):
        # Django reconnects on the next query; a connection left half-dead would fail it.
        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                with suppress(DatabaseError):
                    connection.close()
    delay = backoff_seconds(min(task.request.retries, 10))
    logger.warning("infrastructure_retry task=%s args=%s retries=%s delay=%s error=%s: %s", task.name,
                   task.request.args, task.request.retries, delay, type(error).__name__, str(error)[:200])
    return retry_later(task, delay=delay, exc=error)


# --- the send step ---------------------------------------------------------------------------


def handle_send_failure(task: Task, lease: delivery.Lease, error: Exception) -> None:
    """Apply the send step's table: raises celery's Retry to defer, or returns after giving
    up (the chain then finalizes, releasing the credit of what was not sent). Anything the
    table does not cover is raised again, for PipelineTask (infrastructure) or the errback."""
    if isinstance(error, delivery.ChunkBusy):
        raise retry_later(task, delay=int(error.seconds_left) + 1, exc=error)
    if isinstance(error, delivery.LeaseLost):
        # The execution that took over carries the chunk on; look again later, as for ChunkBusy.
        raise retry_later(task, delay=backoff_seconds(0), exc=error)
    if isinstance(error, SolapiPlatformError):
        breaker.trip(error)
    if isinstance(error, SolapiPlatformError | breaker.PlatformPaused):
        _pause(task, lease, error)
    elif isinstance(error, SolapiRateLimited):
        _wait_out_rate_limit(task, lease, error)
    elif isinstance(error, SolapiTransientError):
        _retry_transient(task, lease, error)
    elif isinstance(error, SolapiRejectedError):
        logger.warning("send_rejected chunk=%s http_status=%s error_code=%s", lease.chunk_id, error.http_status,
                       error.error_code)
        delivery.give_up_sending(lease, FailureClass.REJECTED, f"Solapi: {error.error_code} {error.detail}")
    else:
        raise error


def after_shared_send_failure(leases: list[delivery.Lease], error: Exception) -> int:
    """Record a failed shared send on each of its chunks, as the send step's table does, and
    return how many seconds their chains should wait before sending again."""
    if isinstance(error, SolapiPlatformError):
        breaker.trip(error)
    if isinstance(error, SolapiPlatformError | breaker.PlatformPaused):
        return settings.MESSAGING_BREAKER_PROBE_SECONDS
    if not isinstance(error, SolapiRateLimited | SolapiTransientError):
        return 0  # the chain's send step meets it again and decides
    hits = 1
    for lease in leases:
        with suppress(delivery.LeaseLost):
            if isinstance(error, SolapiRateLimited):
                hits, _ = delivery.record_rate_limit(lease, error)
            else:
                hits = delivery.record_transient_failure(lease, error)
    if isinstance(error, SolapiRateLimited) and error.retry_after is not None:
        return max(1, math.ceil(error.retry_after))
    return backoff_seconds(hits - 1)


def _pause(task: Task, lease: delivery.Lease, error: SolapiPlatformError | breaker.PlatformPaused) -> None:
    failure_class = FailureClass(error.failure_class or FailureClass.AUTH_FAILED)
    waited = delivery.record_pause(lease, failure_class, str(error))
    if waited > timedelta(seconds=settings.MESSAGING_PLATFORM_PAUSE_MAX_AGE):
        logger.error("pause_expired chunk=%s waited=%s failure_class=%s", lease.chunk_id, waited, failure_class)
        delivery.give_up_sending(lease, failure_class, f"Solapi paused for {waited}: {error}")
        return
    # Look again about when the breaker allows its next probe.
    probe = settings.MESSAGING_BREAKER_PROBE_SECONDS
    raise retry_later(task, delay=probe + backoff_seconds(0), exc=error)


def _wait_out_rate_limit(task: Task, lease: delivery.Lease, error: SolapiRateLimited) -> None:
    """Being told to slow down is not a failure of the message: wait as long as Solapi asks
    (Retry-After), else back off, for up to MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS in all."""
    hits, waited = delivery.record_rate_limit(lease, error)
    if waited > timedelta(seconds=settings.MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS):
        logger.warning("rate_limit_exhausted chunk=%s hits=%s waited=%s", lease.chunk_id, hits, waited)
        delivery.give_up_sending(lease, FailureClass.TRANSIENT_EXHAUSTED,
                                 f"rate limited by Solapi for {waited} ({hits} times)")
        return
    asked = error.retry_after
    delay = max(1, math.ceil(asked)) if asked is not None else backoff_seconds(hits - 1)
    logger.info("rate_limited chunk=%s hits=%s waited=%s delay=%s retry_after=%s", lease.chunk_id, hits, waited,
                delay, error.retry_after)
    raise retry_later(task, delay=delay, exc=error)


def _retry_transient(task: Task, lease: delivery.Lease, error: SolapiError) -> None:
    failures = delivery.record_transient_failure(lease, error)
    if failures >= settings.MESSAGING_TRANSIENT_MAX_ATTEMPTS:
        logger.warning("transient_exhausted chunk=%s failures=%s last=%s", lease.chunk_id, failures, error.detail)
        delivery.give_up_sending(lease, FailureClass.TRANSIENT_EXHAUSTED,
                                 f"{failures} tries failed; last: {type(error).__name__} {error.detail}")
        return
    delay = backoff_seconds(failures - 1)
    logger.info("send_retry chunk=%s failures=%s delay=%s error=%s ambiguous=%s", lease.chunk_id, failures, delay,
                type(error).__name__, error.ambiguous)
    raise retry_later(task, delay=delay, exc=error)
