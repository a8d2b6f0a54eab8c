"""Gauges read from our tables when /metrics is scraped: what the tables already know is truer
there than in counters each process keeps (a restart loses nothing, every process agrees).

Every query is bounded and uses an index; no SQS or Solapi call (docs/metrics.md lists them and
their cost). Labels come from fixed sets: statuses, message types, failure classes, queue names,
alert names. No academy, message or phone number.
"""

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from billing import ledger
from messaging.models import (
    AlertState,
    BreakerState,
    Chunk,
    ChunkStatus,
    CircuitBreaker,
    Message,
    MessageStatus,
    SendRequest,
    shown_message_status,
)
from messaging.operations.alerts import oldest_unfinished_chunk_age
from messaging.operations.liveness import live_workers
from messaging.reports import inbox
from project import clock

logger = logging.getLogger(__name__)

UNFINISHED_MESSAGE_STATUSES = [MessageStatus.PENDING, MessageStatus.HELD, MessageStatus.SENDING,
                               MessageStatus.ACCEPTED]


class TableGauges(Collector):
    """A prometheus_client collector: registered on the scrape's registry (project/metrics.py)."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("messaging_table_gauges_up", "1 when the gauges below could be read from the database.")
        try:
            metrics = list(_gauges())
        except Exception:  # a scrape reports a broken database as a 0 here, never as a 500
            logger.warning("metrics_tables_unreadable", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def describe(self) -> list[Metric]:
        return []  # not collected at registration: that would query the database at start-up


def _gauges() -> Iterator[Metric]:
    now = clock.now()
    yield from _messages(now)
    yield from _chunks(now)
    yield from _credit()
    yield from _breaker()
    yield from _workers(now)
    yield from _alerts()
    yield from _report_batches()


def _messages(now) -> Iterator[Metric]:
    window = settings.METRICS_MESSAGES_WINDOW_SECONDS
    recent = GaugeMetricFamily(
        "messaging_messages",
        f"Messages of the send requests created in the last {window} s, by status, type and failure class.",
        labels=["status", "message_type", "failure_class"])
    since = now - timedelta(seconds=window)
    rows = (Message.objects.filter(send_request__created__gte=since)
            .values("status", "message_type", "failure_class").annotate(n=Count("id")).order_by())
    for row in rows:
        recent.add_metric([row["status"], row["message_type"] or "none", row["failure_class"] or "none"], row["n"])
    yield recent

    unfinished = GaugeMetricFamily("messaging_messages_unfinished",
                                   "Messages not yet final, by status (whatever their age).", labels=["status"])
    # Pending, held and sending as the status API counts them (their chunks' steps).
    counts = dict(Message.objects.filter(status__in=UNFINISHED_MESSAGE_STATUSES)
                  .values_list(shown_message_status()).annotate(n=Count("id")).order_by())
    for status in UNFINISHED_MESSAGE_STATUSES:
        unfinished.add_metric([status], counts.get(status, 0))
    yield unfinished


def _chunks(now) -> Iterator[Metric]:
    """The queues' depth, estimated from the outbox's side: what SQS holds is the unfinished chunks'
    next steps and the undispatched requests (SQS's own numbers are on /healthz)."""
    chunks = GaugeMetricFamily("messaging_chunks_unfinished", "Chunks not yet finalized, by queue and status.",
                               labels=["queue", "status"])
    rows = (Chunk.objects.exclude(status=ChunkStatus.FINALIZED).values("send_request__queue", "status")
            .annotate(n=Count("id")).order_by())
    for row in rows:
        chunks.add_metric([row["send_request__queue"], row["status"]], row["n"])
    yield chunks
    yield _gauge("messaging_chunks_paused", "Unfinished chunks held back by the breaker (a platform pause).",
                 Chunk.objects.filter(paused_since__isnull=False).exclude(status=ChunkStatus.FINALIZED).count())
    yield _gauge("messaging_send_requests_undispatched", "Send requests whose dispatch task was not published yet.",
                 SendRequest.objects.filter(dispatched__isnull=True).count())
    yield _gauge("messaging_oldest_unfinished_chunk_age_seconds",
                 "Age of the oldest chunk not yet finalized (0: none).", oldest_unfinished_chunk_age(now))


def _credit() -> Iterator[Metric]:
    totals = ledger.credit_totals()
    yield _gauge("billing_credit_held", "Credit held for accepted messages, summed over every academy (KRW).",
                 float(totals["held"]))
    yield _gauge("billing_credit_balance", "Credit balance, summed over every academy (KRW).", float(totals["balance"]))


def _breaker() -> Iterator[Metric]:
    breaker = CircuitBreaker.objects.filter(state=BreakerState.OPEN).first()
    state = GaugeMetricFamily("messaging_breaker_open",
                              "1 while the Solapi breaker pauses sending platform-wide, with the failure class.",
                              labels=["failure_class"])
    state.add_metric([breaker.failure_class if breaker else "none"], 1 if breaker else 0)
    yield state
    yield _gauge("messaging_breaker_opened_timestamp_seconds", "When the open breaker opened (0: closed).",
                 breaker.opened_at.timestamp() if breaker and breaker.opened_at else 0)


def _workers(now) -> Iterator[Metric]:
    yield _gauge("messaging_workers_alive", "Workers whose heartbeat is fresh.", live_workers(now).count())


def _alerts() -> Iterator[Metric]:
    active = GaugeMetricFamily("messaging_alert_active",
                               "1 while an alert condition holds, as check_alerts last saw it.", labels=["alert"])
    for name, is_active in AlertState.objects.values_list("name", "active"):
        active.add_metric([name], 1 if is_active else 0)
    yield active


def _report_batches() -> Iterator[Metric]:
    """The webhook's POSTs stored and not yet applied (messaging/reports/inbox.py): the partial
    index of waiting batches, so as cheap as the backlog is short."""
    waiting = inbox.backlog()
    yield _gauge("messaging_report_batches_waiting", "Webhook POSTs stored and not yet applied.", waiting.batches)
    yield _gauge("messaging_reports_waiting", "Reports in those POSTs.", waiting.reports)
    yield _gauge("messaging_oldest_waiting_report_batch_age_seconds",
                 "How long the oldest of them has waited (0: none).", waiting.oldest_age_seconds)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge
