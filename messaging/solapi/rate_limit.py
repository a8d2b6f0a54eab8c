"""One request rate for the whole Solapi account, shared by every worker process.

Solapi answers 429 when called too fast (it documents no limit), and every worker of every
host shares one account. So the pace is kept in one place all of them see: a row holding the
earliest moment the next call may start. A caller reserves the next slot with one UPDATE
(next_slot = max(next_slot, now) + interval) and sleeps until its slot; calls therefore
start at least `interval` apart, whichever process makes them, and N workers together never
exceed SOLAPI_MAX_REQUESTS_PER_SECOND.

Why the database and not Redis: it is the one store every process already shares, in every
environment the project runs (SQLite for `make run`, PostgreSQL in production and CI), so the
limiter needs no new infrastructure and adds no new way to fail. The cost is one short
transaction per Solapi call, and a chunk of 1,000 messages makes three calls. The UPDATE is
atomic on both: PostgreSQL takes the row lock, SQLite (IMMEDIATE transactions,
project/settings.py) the write lock. Slots are wall-clock seconds of the calling host, so
hosts must keep their clocks in sync (NTP), as they must for Solapi's signatures anyway.

A caller whose slot would be more than MAX_QUEUE_SECONDS away does not wait in its worker
slot: it raises SolapiRateLimited with the wait as retry_after, and the send step's policy
defers the chunk through SQS exactly as for Solapi's own 429.
"""

import time
from collections.abc import Callable

from django.db import transaction
from django.db.models import F, FloatField, Value
from django.db.models.functions import Greatest

from messaging.models import RequestRate
from messaging.solapi.errors import SolapiRateLimited

# Longer waits go back to SQS instead of holding a worker process (and its task time limit).
MAX_QUEUE_SECONDS = 2.0
# Calls are spaced 10 % wider than the rate asks: what Solapi counts is when calls arrive, and
# the network and the scheduler move arrivals by a few milliseconds either way.
JITTER_ALLOWANCE = 1.1
LOCAL_LIMIT_CODE = "AccountRateLimit"


class AccountRateLimiter:
    def __init__(self, requests_per_second: float, *, name: str = "solapi",
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be above 0 (no limiter at all to turn it off)")
        self.interval = JITTER_ALLOWANCE / requests_per_second
        self.name = name
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        """Wait for this process's turn to call Solapi; raise SolapiRateLimited if it is far off."""
        now = self._clock()
        rows = RequestRate.objects.filter(name=self.name)
        with transaction.atomic():
            reserved = rows.filter(next_slot__lte=now + MAX_QUEUE_SECONDS).update(
                next_slot=Greatest(F("next_slot"), Value(now, output_field=FloatField())) + self.interval)
            next_slot = rows.values_list("next_slot", flat=True).first()
        if next_slot is None:
            # The first call ever (or the table was emptied): make the row, then take a slot.
            RequestRate.objects.get_or_create(name=self.name)
            return self.acquire()
        if not reserved:
            wait = next_slot - now
            raise SolapiRateLimited(f"the account's request rate is taken for the next {wait:.1f}s",
                                    error_code=LOCAL_LIMIT_CODE, retry_after=wait)
        wait = next_slot - self.interval - now
        if wait > 0:
            self._sleep(wait)
        return None
