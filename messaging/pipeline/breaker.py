"""The platform circuit breaker: one switch that stops every worker calling Solapi.

A bad API key, a skewed clock or an empty Solapi balance makes every call fail the
same way, so retrying per message only multiplies the failures (docs/solapi.md,
"HTTP errors").
The first such error opens the breaker; while it is open, workers defer their chunks
without calling Solapi, except one probe per interval, claimed atomically in the
database, which closes the breaker when it succeeds.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from messaging.models import BreakerState, CircuitBreaker
from messaging.solapi.errors import SolapiPlatformError
from project import clock

logger = logging.getLogger(__name__)

SOLAPI = "solapi"


class PlatformPaused(Exception):
    """Sending is paused platform-wide; the caller should defer without calling Solapi."""

    def __init__(self, breaker: CircuitBreaker):
        self.failure_class = breaker.failure_class
        super().__init__(f"Solapi paused since {clock.shown(breaker.opened_at)}: {breaker.detail}")


def current() -> CircuitBreaker:
    breaker, _ = CircuitBreaker.objects.get_or_create(name=SOLAPI)
    return breaker


def ensure_closed_or_claim_probe() -> None:
    """Return if Solapi may be called now; raise PlatformPaused otherwise.

    While open, exactly one caller per probe interval gets through: the UPDATE below
    succeeds for one of them only.
    """
    breaker = current()
    if breaker.state == BreakerState.CLOSED:
        return
    now = clock.now()
    claimed = CircuitBreaker.objects.filter(
        Q(next_probe_at__isnull=True) | Q(next_probe_at__lte=now), pk=breaker.pk, state=BreakerState.OPEN
    ).update(next_probe_at=now + timedelta(seconds=settings.MESSAGING_BREAKER_PROBE_SECONDS))
    if not claimed:
        raise PlatformPaused(breaker)
    logger.warning("solapi_breaker_probe failure_class=%s", breaker.failure_class)


def trip(error: SolapiPlatformError) -> None:
    """Open the breaker (or keep it open, pushing the next probe back)."""
    now = clock.now()
    with transaction.atomic():
        breaker = CircuitBreaker.objects.select_for_update().get(pk=current().pk)
        newly_opened = breaker.state == BreakerState.CLOSED
        if newly_opened:
            breaker.opened_at = now
        breaker.state = BreakerState.OPEN
        breaker.failure_class = error.failure_class
        breaker.error_code = error.error_code
        breaker.detail = error.detail
        breaker.next_probe_at = now + timedelta(seconds=settings.MESSAGING_BREAKER_PROBE_SECONDS)
        breaker.save()
    if newly_opened:
        # ERROR: an operator must act (fix the key or the clock, top up Solapi).
        logger.error(
            "solapi_breaker_opened failure_class=%s error_code=%s http_status=%s detail=%s",
            error.failure_class, error.error_code, error.http_status, error.detail,
        )


def close(reason: str) -> bool:
    """Close the breaker; returns whether it was open."""
    closed = CircuitBreaker.objects.filter(name=SOLAPI, state=BreakerState.OPEN).update(
        state=BreakerState.CLOSED, closed_at=clock.now(), next_probe_at=None
    )
    if closed:
        logger.warning("solapi_breaker_closed reason=%s", reason)
    return bool(closed)
