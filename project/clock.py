"""The one clock every rule and step reads ("what time is it?"), so tests can move it.

Business time (the ad night window, deferrals, stale-chunk and report cutoffs, consent
age, the timestamps Django fills in) comes from `now()`, never from timezone.now().
Two ways to move it, both for tests only (docs/testing.md):
- in-process: `freeze(moment)` / `set(moment)` / `reset()` (the `clock` fixture);
- across processes: CLOCK_OFFSET_SECONDS in the environment shifts every process that
  reads it (worker subprocesses inherit it); project/settings.py refuses it with DEBUG off.
Wire time (Solapi's request signature, elapsed-time measurements) stays real.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.utils import timezone

KST = ZoneInfo("Asia/Seoul")

# Set by freeze()/set() in a test process; None means "the real time plus the offset".
_frozen: datetime | None = None
_shift = timedelta(0)


def now() -> datetime:
    """The current time (aware, UTC)."""
    if _frozen is not None:
        return _frozen
    return timezone.now() + timedelta(seconds=settings.CLOCK_OFFSET_SECONDS) + _shift


def kst_now() -> datetime:
    """The current time in Korea, where the sending rules are read."""
    return now().astimezone(KST)


def shown(moment: datetime | None) -> str:
    """A time as people read it (the admin, messages to staff): in Seoul, labelled KST, so it
    is never mistaken for UTC. Seconds included: a timeline's steps are seconds apart."""
    if moment is None:
        return "-"
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")


def iso(moment: datetime | None) -> str | None:
    """A time for machines (API answers, log fields): ISO 8601 in Seoul, with its offset."""
    return moment.astimezone(KST).isoformat(timespec="seconds") if moment else None


def freeze(moment: datetime) -> datetime:
    """Stop the clock at `moment` (aware) until reset()."""
    global _frozen
    if timezone.is_naive(moment):
        raise ValueError("freeze() needs an aware datetime")
    _frozen = moment.astimezone(UTC)
    return moment


def set(moment: datetime) -> datetime:
    """Move the clock to `moment` and let it run on from there."""
    global _frozen, _shift
    _frozen = None
    _shift += moment - now()
    return moment


def reset() -> None:
    global _frozen, _shift
    _frozen, _shift = None, timedelta(0)


def next_kst(hour: int, minute: int = 0, *, after: datetime | None = None) -> datetime:
    """The first hour:minute in Korea after `after` (default: now()), e.g. tonight's 22:30."""
    start = (after or now()).astimezone(KST)
    moment = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment if moment > start else moment + timedelta(days=1)


class ClockDateTimeField(models.DateTimeField):
    """A DateTimeField whose auto_now / auto_now_add take the time from this clock, so
    a row's `created`/`updated` agree with the cutoffs it is compared with."""

    def pre_save(self, model_instance, add):
        if self.auto_now or (self.auto_now_add and add):
            value = now()
            setattr(model_instance, self.attname, value)
            return value
        return super().pre_save(model_instance, add)
