"""Celery events to a separate Redis, so Flower works while tasks stay on SQS.

SQS has no fanout, so events a worker publishes there are dropped in-process, and
Celery has no setting for a separate events broker (docs/celery-on-sqs.md, "No remote
control or events on SQS"). Design: docs/flower.md, "How the bridge works"; the
measurements behind it: docs/flower.md, "When Redis is down, hung or killed". Three
small pieces, wired up by celeryconfig.py when CELERY_EVENTS_BROKER_URL is set:

1. EventsBridgeConsumer (the `worker_consumer` setting) hands the Events bootstep a
   lazy Redis connection instead of an SQS one.
2. EventsConnection fails fast: short socket timeouts, one connect attempt, no AMQP
   heartbeats.
3. BridgeEventDispatcher (`Celery(events=...)`) publishes once, then stops trying for
   PAUSE_SECONDS and keeps a bounded backlog.

Without 2 and 3 a down or hung Redis freezes the SQS event loop for the whole outage,
and a Redis that is down at start makes the worker exit.

Private Celery API relied on, re-checked against celery 5.7.0 and covered by
tests/foundation/test_events_bridge.py (re-check on every upgrade):
- Consumer.connection_for_write() has one caller, Events.start
  (celery/worker/consumer/events.py:38);
- EventDispatcher._publish() and its _outbound_buffer (celery/events/dispatcher.py).
"""

import logging
import time
from collections import deque

from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher
from celery.worker.consumer import Consumer
from kombu import Connection

logger = logging.getLogger(__name__)

# A healthy Redis on the same network answers in milliseconds; waiting longer only
# stalls the worker's event loop, which also consumes SQS.
TIMEOUT_SECONDS = 1.0
# After a failed publish, events are kept, not sent, for this long: at most one
# TIMEOUT_SECONDS stall per period while Redis is out.
PAUSE_SECONDS = 10.0
# Publishes kept for later (single events or task batches). The oldest are dropped
# beyond this: events are best-effort, django-celery-results is the durable history.
BACKLOG_SIZE = 1000


class EventsConnection(Connection):
    """A kombu connection to the events broker; the marker the dispatcher looks for."""

    def get_heartbeat_interval(self) -> int:
        # The worker's event loop asks every dispatcher connection for its negotiated
        # AMQP heartbeat (celery/worker/loops.py:83-85); kombu's answer *connects*, and a
        # Redis error there ends the worker with "Unrecoverable error".
        # Redis has no AMQP heartbeats anyway.
        return 0


def events_connection(url: str) -> EventsConnection:
    """A lazy connection to `url`: nothing connects until the first publish.

    Built directly rather than with app.connection_for_write(url=...), which would mix
    in the SQS broker_transport_options and retry in a loop.
    """
    return EventsConnection(
        url,
        connect_timeout=TIMEOUT_SECONDS,
        transport_options={
            # kombu's redis defaults are None: a hung Redis would block forever.
            "socket_connect_timeout": TIMEOUT_SECONDS,
            "socket_timeout": TIMEOUT_SECONDS,
            # One connect attempt per publish, not retries for connect_timeout.
            "max_retries": 0,
        },
    )


class EventsBridgeConsumer(Consumer):
    """The worker's consumer, with the events dispatcher's connection on the events broker."""

    def connection_for_write(self, url: str | None = None, heartbeat: float | None = None) -> Connection:
        # Only the Events bootstep calls this (events.py:38); the consumer's SQS
        # connection comes from connection_for_read. No ensure_connected(): it would
        # block start-up until Redis answers, then exit.
        events_url = self.app.conf.get("events_broker_url")
        if url is None and events_url:
            return events_connection(events_url)
        return super().connection_for_write(url=url, heartbeat=heartbeat)


class BridgeEventDispatcher(EventDispatcher):
    """On an EventsConnection: one publish attempt, a circuit breaker and a bounded backlog.

    On any other connection (producers' dispatchers on SQS, tests) it is the stock
    EventDispatcher, unchanged.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bridged = isinstance(self.connection, EventsConnection)
        if self.bridged:
            # Stock _publish then raises instead of buffering, so failures reach us.
            self.buffer_while_offline = False
            # The stock buffer is unbounded, and flush() re-sends all of it on every
            # task event.
            self._outbound_buffer = deque(maxlen=BACKLOG_SIZE)
            self.paused_until = 0.0

    def _publish(self, event, producer, routing_key, retry=False, retry_policy=None, **kwargs):
        if not self.bridged:
            return super()._publish(event, producer, routing_key, retry=retry, retry_policy=retry_policy, **kwargs)
        if producer is None:
            return None
        if not self._try_publish(event, producer, routing_key):
            self._keep(event, routing_key)
            return None
        # Redis answers again: send what was kept meanwhile, oldest first.
        while self._outbound_buffer:
            kept = self._outbound_buffer.popleft()
            if not self._try_publish(kept[0], producer, kept[1]):
                self._outbound_buffer.appendleft(kept)
                break
        return None

    def _try_publish(self, event, producer, routing_key) -> bool:
        if time.monotonic() < self.paused_until:
            return False
        started = time.monotonic()
        try:
            # retry=False always: Heart asks for retry=True, which kombu turns into
            # retrying forever inside the worker's event loop.
            super()._publish(event, producer, routing_key, retry=False)
        except Exception as exc:
            self.paused_until = time.monotonic() + PAUSE_SECONDS
            logger.warning(
                "events broker publish failed after %.2fs (%r); pausing event publishing for %.0fs",
                time.monotonic() - started, exc, PAUSE_SECONDS,
            )
            return False
        return True

    def _keep(self, event, routing_key) -> None:
        # A stale heartbeat is worthless once the next one arrives 2 s later.
        if isinstance(event, dict) and event.get("type") == "worker-heartbeat":
            return
        self._outbound_buffer.append((event, routing_key))


class BridgeAwareEvents(Events):
    """app.events with the bridge's dispatcher: `Celery(events="project.events_bridge:BridgeAwareEvents")`."""

    dispatcher_cls = "project.events_bridge:BridgeEventDispatcher"
