"""Alerts an operator can wire: conditions read from our own tables, raised once at their onset.

Each condition is a function of the tables (no SQS or Solapi call). Beat's `check_alerts`
(messaging/operations/tasks.py) evaluates them every minute and compares with the AlertState
rows:
- onset: one ERROR line `alert=<name> state=raised …` (Sentry makes it an event when SENTRY_DSN
  is set: project/error_tracking.py), and the row turns active;
- still active: nothing, except once every ALERT_REPEAT_SECONDS (`state=ongoing`), so an alert
  that stays (the breaker staying open) is not forgotten;
- cleared: one INFO line `alert=<name> state=resolved`.
/healthz turns degraded while a health-affecting condition holds (project/health.py).
The names are stable: an operator's log search or Sentry rule keys on them (docs/alerts.md).
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import transaction

from messaging.failures import FailureClass
from messaging.models import (
    AlertState,
    BreakerState,
    Chunk,
    ChunkStatus,
    CircuitBreaker,
    MessageOutcome,
    OutcomeEvent,
    WorkerHeartbeat,
)
from messaging.operations.liveness import ALIVE_WITHIN_SECONDS, live_workers, queues_without_live_worker
from messaging.reports import inbox
from project import clock

logger = logging.getLogger(__name__)


class Alert(StrEnum):
    BREAKER_OPEN = "breaker_open"
    NO_WORKER_HEARTBEAT = "no_worker_heartbeat"
    STUCK_CHUNK = "stuck_chunk"
    UNREPORTED_MESSAGES = "unreported_messages"
    REPORT_BACKLOG = "report_backlog"


@dataclass(frozen=True)
class Condition:
    alert: Alert
    # None while the condition does not hold; otherwise what an operator reads first.
    check: Callable[[datetime], str | None]
    # Whether it makes /healthz degraded: the deployment cannot send while it holds.
    degrades_health: bool


def breaker_open(now: datetime) -> str | None:
    breaker = CircuitBreaker.objects.filter(state=BreakerState.OPEN).first()
    if breaker is None:
        return None
    return (f"Solapi sending paused since {clock.iso(breaker.opened_at)}: {breaker.failure_class} "
            f"{breaker.error_code}".strip())


def no_worker_heartbeat(now: datetime) -> str | None:
    if live_workers(now).exists():
        unconsumed = queues_without_live_worker(now)
        return f"no live worker consumes {', '.join(unconsumed)}" if unconsumed else None
    last = WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()
    if last is None:
        return "no worker has ever written a heartbeat"
    return f"no worker heartbeat within {ALIVE_WITHIN_SECONDS:.0f} s (last: {clock.iso(last)})"


def oldest_unfinished_chunk_age(now: datetime) -> float:
    oldest = Chunk.objects.exclude(status=ChunkStatus.FINALIZED).order_by("created").values_list(
        "created", flat=True).first()
    return (now - oldest).total_seconds() if oldest else 0.0


def stuck_chunk(now: datetime) -> str | None:
    age = oldest_unfinished_chunk_age(now)
    if age <= settings.ALERT_OLDEST_CHUNK_SECONDS:
        return None
    return f"the oldest unfinished chunk is {age:.0f} s old (threshold {settings.ALERT_OLDEST_CHUNK_SECONDS} s)"


def unreported_messages(now: datetime) -> str | None:
    """Messages reconciliation failed for want of a delivery report (report_timeout) within the
    window: Solapi neither reported nor answered a poll for them (messaging/reports/reconciliation.py)."""
    since = now - timedelta(seconds=settings.ALERT_UNREPORTED_WINDOW_SECONDS)
    count = MessageOutcome.objects.filter(created__gte=since, event=OutcomeEvent.FAILED,
                                          failure_class=FailureClass.REPORT_TIMEOUT).count()
    if not count:
        return None
    return f"{count} messages failed without a delivery report in the last {settings.ALERT_UNREPORTED_WINDOW_SECONDS} s"


def report_backlog(now: datetime) -> str | None:
    """Delivery reports stored by the webhook and not applied for longer than the threshold. Under
    a burst they wait by design while sends go first (messaging/reports/inbox.py), for seconds;
    minutes mean the apply is failing or not running, and final statuses and refunds lag."""
    waiting = inbox.backlog(now)
    if waiting.oldest_age_seconds <= settings.ALERT_REPORT_BACKLOG_SECONDS:
        return None
    return (f"the oldest delivery-report POST waiting to be applied is {waiting.oldest_age_seconds:.0f} s old "
            f"(waiting: POSTs {waiting.batches}, reports {waiting.reports}; "
            f"threshold {settings.ALERT_REPORT_BACKLOG_SECONDS} s)")


CONDITIONS: list[Condition] = [
    Condition(Alert.BREAKER_OPEN, breaker_open, degrades_health=True),
    Condition(Alert.NO_WORKER_HEARTBEAT, no_worker_heartbeat, degrades_health=True),
    Condition(Alert.STUCK_CHUNK, stuck_chunk, degrades_health=True),
    Condition(Alert.UNREPORTED_MESSAGES, unreported_messages, degrades_health=False),
    Condition(Alert.REPORT_BACKLOG, report_backlog, degrades_health=False),
]


def active_conditions(*, now: datetime | None = None, health_only: bool = False) -> dict[str, str]:
    """Alert name → detail, for every condition that holds now (read from the tables)."""
    now = now or clock.now()
    found = {}
    for condition in CONDITIONS:
        if health_only and not condition.degrades_health:
            continue
        detail = condition.check(now)
        if detail is not None:
            found[str(condition.alert)] = detail
    return found


def check_alerts(*, now: datetime | None = None) -> dict[str, str]:
    """Raise what began, repeat what lasts ALERT_REPEAT_SECONDS, resolve what ended.
    Returns what changed: alert name → "raised" | "ongoing" | "resolved"."""
    now = now or clock.now()
    holding = active_conditions(now=now)
    changes = {}
    for alert in Alert:
        AlertState.objects.get_or_create(name=alert)
        # Locked while it changes: two checks at once (a slow tick overlapping the next) raise it once.
        with transaction.atomic():
            state = AlertState.objects.select_for_update().get(name=alert)
            change = _transition(state, holding.get(alert), now)
        if change:
            changes[str(alert)] = change
            _announce(alert, change, state)
    return changes


def _transition(state: AlertState, detail: str | None, now: datetime) -> str | None:
    repeat = timedelta(seconds=settings.ALERT_REPEAT_SECONDS)
    state.checked_at = now
    change = None
    if detail is None:
        if state.active:
            state.active, state.resolved_at, change = False, now, "resolved"
    elif not state.active:
        state.active, state.since, state.raised_at, change = True, now, now, "raised"
    elif repeat and now - state.raised_at >= repeat:
        state.raised_at, change = now, "ongoing"
    if detail is not None:
        state.detail = detail[:300]
    state.save()
    return change


def _announce(alert: Alert, change: str, state: AlertState) -> None:
    if change == "resolved":
        logger.info("alert=%s state=resolved since=%s", alert, clock.iso(state.since))
        return
    # One ERROR line: the operator's log alert, and (with SENTRY_DSN) one Sentry event, grouped
    # by the alert's name rather than by this shared format string.
    with _sentry_fingerprint(["alert", str(alert)]):
        logger.error("alert=%s state=%s since=%s detail=%s", alert, change, clock.iso(state.since), state.detail)


@contextmanager
def _sentry_fingerprint(fingerprint: list[str]) -> Iterator[None]:
    """Group the Sentry event of the log line inside by `fingerprint` (nothing without Sentry)."""
    if not settings.SENTRY_DSN:
        yield
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = fingerprint
        yield
