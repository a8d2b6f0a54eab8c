"""Guarded fixes for kombu 5.7.0's SQS transport, which ends workers on everyday SQS faults.

1. A failed receive kills the worker. kombu turns a ReceiveMessage answered with 408/5xx (or a
   connection that failed) into an empty *list* (kombu/asynchronous/aws/connection.py,
   ``_on_list_ready``), and 5.7.0's ``Channel._on_messages_ready`` calls ``messages.get(...)``
   on it: the AttributeError ends the worker ("Unrecoverable error") after one SQS hiccup. A
   4xx is worse: ``_on_list_ready`` raises it, nothing catches it, and the worker dies the same
   way. The everyday 4xx is ``QueueDoesNotExist``: the queue was deleted, or the SQS endpoint
   came back empty, while the worker still holds the queue's URL in kombu's cache.
2. A publish to a queue that is gone fails for good. kombu's ``_put`` sends to the cached URL
   and never looks again, so every task published by a long-lived process (web, beat, the
   worker's next chain step) fails with QueueDoesNotExist until the process restarts.

What the fix does instead:

- A failed receive (5xx, timeout, unreachable, any 4xx) is logged as ``sqs_receive_failed``
  once per RECEIVE_FAILURE_LOG_SECONDS per queue and reason (with how many failures it stands
  for), the queue is polled again after RECEIVE_RETRY_SECONDS instead of polling_interval (no
  hot loop against a broken endpoint), and ``sqs_receive_resumed`` is logged when a receive
  works again.
- On QueueDoesNotExist the queue's entry in kombu's URL cache is dropped, so the next poll
  looks the queue up and creates it again as kombu does at start-up. With predefined queue
  URLs (SQS_QUEUE_URL) kombu may not create queues: the worker keeps polling the same URL
  until infrastructure brings the queue back.
- A publish (or the declaration of a queue before a connection's first publish to it) that
  meets QueueDoesNotExist drops the cache entry and tries once more, which creates the queue.
  With predefined URLs it raises kombu's OperationalError, so the caller treats it as the
  broker being unreachable (the outbox relay publishes again later; a chain step's errback
  skips the rollback).

Earlier kombu releases checked ``'Messages' in messages`` (safe for the list); whether a later
one handles the 4xx and the stale cache has to be checked, so the fix applies to 5.7.0 only and
an upgrade is a conscious decision (check these behaviours, then add the version or drop the fix).
tests/foundation/test_kombu_fix.py proves each part over the wire and shows the worker dying
without it. docs/celery-on-sqs.md ("The kombu 5.7.0 receive crash") explains the kombu side,
docs/exactly-once.md ("Lost queue") the whole story with the drill that proves it.
"""

import json
import logging
import re
import time
from dataclasses import dataclass

import kombu
import kombu.exceptions

logger = logging.getLogger(__name__)

AFFECTED_KOMBU_VERSIONS = {"5.7.0"}

# How long a queue waits before it is polled again after a failed receive. Short enough that
# consumption resumes within a second or two of the queue coming back; long enough that a
# worker does not hammer a broken endpoint (polling_interval is 0.02 s).
RECEIVE_RETRY_SECONDS = 1.0
# At most one sqs_receive_failed line per queue in this many seconds: an outage is one line
# every half-minute, not ten a second.
RECEIVE_FAILURE_LOG_SECONDS = 30.0
# The error codes SQS answers for a queue that does not exist (JSON and query protocols).
QUEUE_GONE_CODES = {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"}


@dataclass(frozen=True)
class ReceiveRefused:
    """A ReceiveMessage answered with a 4xx, handed to _on_messages_ready instead of raised."""

    status: int
    code: str

    @property
    def queue_gone(self) -> bool:
        return self.code in QUEUE_GONE_CODES


@dataclass
class _QueueTrouble:
    """The failures of one queue since its last good receive."""

    since: float
    failures: int = 0
    unlogged: int = 0
    logged_at: float = float("-inf")
    logged_reason: str = ""


def apply() -> bool:
    """Patch the SQS transport when the installed kombu has the bugs. Returns whether it did."""
    if kombu.__version__ not in AFFECTED_KOMBU_VERSIONS:
        return False
    from kombu.asynchronous.aws.connection import AsyncAWSQueryConnection
    from kombu.transport.SQS import Channel

    if getattr(Channel._on_messages_ready, "_academy_fix", False):
        return True
    _patch(Channel, "_on_messages_ready", _on_messages_ready)
    _patch(Channel, "_loop1", _loop1)
    _patch(Channel, "_schedule_queue", _schedule_queue)
    _patch(Channel, "_put", _put)
    _patch(Channel, "_size", _size)
    _patch(AsyncAWSQueryConnection, "_on_list_ready", _on_list_ready)
    return True


_originals: dict[str, object] = {}


def _patch(cls: type, name: str, replacement) -> None:
    _originals[f"{cls.__name__}.{name}"] = getattr(cls, name)
    replacement._academy_fix = True
    setattr(cls, name, replacement)


def _original(cls_name: str, name: str):
    return _originals[f"{cls_name}.{name}"]


# --- receive ---------------------------------------------------------------------------------


def _on_list_ready(self, parent, markers, operation, response):
    """Hand a 4xx answer to ReceiveMessage on as a value, instead of raising it through the
    worker's event loop."""
    if operation == "ReceiveMessage" and 400 <= response.status < 500 and response.status != 408:
        return ReceiveRefused(response.status, _error_code(response))
    return _original("AsyncAWSQueryConnection", "_on_list_ready")(self, parent, markers, operation, response)


def _on_messages_ready(self, queue, qname, messages):
    # kombu calls this with the queue's URL as `queue` and its kombu name as `qname`.
    if isinstance(messages, ReceiveRefused):
        _receive_failed(self, qname, f"http={messages.status} code={messages.code}")
        if messages.queue_gone:
            _forget_queue_url(self, qname)
        return 0
    if not isinstance(messages, dict):
        # An empty list here means SQS answered 408/5xx, or could not be reached.
        _receive_failed(self, qname, "http=5xx_or_unreachable")
        return 0
    _receive_worked(self, qname)
    return _original("Channel", "_on_messages_ready")(self, queue, qname, messages)


def _loop1(self, queue, messages_fetched=None):
    if queue in _troubles(self):
        # Poll a failing queue again after a pause, not after polling_interval.
        self.hub.call_later(RECEIVE_RETRY_SECONDS, self._schedule_queue, queue)
        return None
    return _original("Channel", "_loop1")(self, queue, messages_fetched)


def _schedule_queue(self, queue):
    """Start the next receive. Finding the queue's URL may call ListQueues/CreateQueue, which
    raise while SQS is unreachable; kombu runs this from a timer that would swallow the error
    and never poll the queue again, so the failure is counted and the poll rescheduled."""
    try:
        return _original("Channel", "_schedule_queue")(self, queue)
    except Exception as error:  # botocore raises many types for "unreachable"
        _receive_failed(self, queue, f"error={type(error).__name__}")
        self.hub.call_later(RECEIVE_RETRY_SECONDS, self._schedule_queue, queue)
        return None


def _troubles(channel) -> dict[str, _QueueTrouble]:
    troubles = channel.__dict__.get("_academy_receive_troubles")
    if troubles is None:
        troubles = channel.__dict__["_academy_receive_troubles"] = {}
    return troubles


def _receive_failed(channel, queue: str, reason: str) -> None:
    now = time.monotonic()
    trouble = _troubles(channel).setdefault(queue, _QueueTrouble(since=now))
    trouble.failures += 1
    trouble.unlogged += 1
    # A new reason is news (SQS unreachable, then reachable but without the queue): log it at once.
    if reason != trouble.logged_reason or now - trouble.logged_at >= RECEIVE_FAILURE_LOG_SECONDS:
        logger.warning("sqs_receive_failed queue=%s %s failures=%d since_s=%.0f action=poll_again_in_%gs",
                       queue, reason, trouble.unlogged, now - trouble.since, RECEIVE_RETRY_SECONDS)
        trouble.logged_at, trouble.logged_reason, trouble.unlogged = now, reason, 0


def _receive_worked(channel, queue: str) -> None:
    trouble = _troubles(channel).pop(queue, None)
    if trouble:
        logger.warning("sqs_receive_resumed queue=%s failures=%d after_s=%.0f",
                       queue, trouble.failures, time.monotonic() - trouble.since)


def _forget_queue_url(channel, queue: str) -> None:
    """Drop the queue's cached URL, so the next poll or publish finds it again (creating it,
    as at start-up). Predefined URLs are not kombu's to change: those are waited for."""
    if channel.predefined_queues:
        return
    if channel._queue_cache.pop(channel.canonical_queue_name(queue), None):
        logger.warning("sqs_queue_missing queue=%s action=create_again", queue)


def _error_code(response) -> str:
    """The SQS error code of an error answer: JSON `__type` or the query protocol's <Code>."""
    body = response.read() or b""
    try:
        return str(json.loads(body).get("__type", "")).rsplit("#", 1)[-1] or "unknown"
    except (ValueError, AttributeError):
        match = re.search(rb"<Code>([^<]+)</Code>", body)
        return match.group(1).decode() if match else "unknown"


# --- publish ----------------------------------------------------------------------------------


def _put(self, queue, message, **kwargs):
    # kombu's _put pops a property from the message; keep a copy to publish again.
    again = {**message, "properties": dict(message.get("properties") or {})} if "properties" in message else message
    original = _original("Channel", "_put")
    return _once_more_if_queue_gone(self, queue, lambda: original(self, queue, message, **kwargs),
                                    lambda: original(self, queue, again, **kwargs))


def _size(self, queue):
    # Declaring a queue (kombu's queue_declare, on a connection's first publish to it) asks its size.
    original = _original("Channel", "_size")
    return _once_more_if_queue_gone(self, queue, lambda: original(self, queue), lambda: original(self, queue))


def _once_more_if_queue_gone(channel, queue: str, call, call_again):
    """Make `call`; if SQS says the queue does not exist, forget its URL and `call_again` (which
    looks it up and creates it). With predefined queues, a missing queue is a broker fault."""
    try:
        return call()
    except Exception as error:
        if _client_error_code(error) not in QUEUE_GONE_CODES:
            raise
        if channel.predefined_queues:
            raise kombu.exceptions.OperationalError(
                f"SQS queue {channel.canonical_queue_name(queue)} does not exist (predefined URL)") from error
        _forget_queue_url(channel, queue)
    return call_again()


def _client_error_code(error: Exception) -> str:
    response = getattr(error, "response", None)  # botocore's ClientError
    return (response or {}).get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
