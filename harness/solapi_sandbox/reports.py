"""Delivery reports. A while after a message is sent, Solapi settles its final status and POSTs
single-report webhooks (JSON arrays, several reports per POST) to the account's URL; it retries
a POST that fails, and now and then delivers the same event twice."""

import heapq
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .formats import new_event_id

MAX_REPORTS_PER_POST = 100
MAX_DELIVERY_RETRIES = 5
FIRST_RETRY_DELAY_SECONDS = 0.2  # doubles with each retry
MAX_RETRY_DELAY_SECONDS = 2.0
POST_TIMEOUT_SECONDS = 5.0
# POSTs run on a few worker threads so one slow receiver does not hold back settling reports.
DELIVERY_THREADS = 4

# Webhooks go to loopback in every use of the sandbox; an HTTP(S)_PROXY from the environment must not catch them.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Event = dict[str, Any]  # {"eventDataId", "data", "retryCount"}
SettleReports = Callable[[list[str]], list[dict[str, Any]]]


@dataclass(frozen=True)
class ReportSettings:
    webhook_url: str | None = None
    report_delay: float = 0.5  # seconds from sending to the report
    duplicate_report_rate: float = 0.0  # share of events delivered a second time

    def __post_init__(self) -> None:
        if self.report_delay < 0:
            raise ValueError("report_delay must not be negative")
        if not 0.0 <= self.duplicate_report_rate <= 1.0:
            raise ValueError("duplicate_report_rate must be between 0 and 1")


class ReportDispatcher:
    """Settles sent messages after `report_delay` and delivers their reports, on background threads.

    `settle(message_ids)` gives the messages their final status and returns the report data of
    those that changed; the dispatcher only schedules and delivers.
    """

    def __init__(self, settle: SettleReports, settings: ReportSettings, seed: int | None = None) -> None:
        self.settings = settings
        self._settle = settle
        self._seed = seed
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, int, Callable[[int], None]]] = []  # due, order, generation, task
        self._order = itertools.count()
        self._generation = 0  # bumped by clear(), so tasks already running are not rescheduled
        self._busy = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._posting: ThreadPoolExecutor | None = None
        self._stats: Counter[str] = Counter()
        # How long each webhook POST took to be answered (or to fail): how long our receiver
        # kept Solapi waiting. Benchmarks read it; a real Solapi gives up at its own timeout.
        self._post_seconds: list[float] = []

    def start(self) -> None:
        self._stopping = False
        self._posting = ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="sandbox-webhook")
        self._thread = threading.Thread(target=self._run, name="sandbox-reports", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=5)
        if self._posting:
            self._posting.shutdown(wait=False, cancel_futures=True)

    def clear(self) -> None:
        """Forget scheduled reports and deliveries, and the statistics."""
        with self._cond:
            self._queue.clear()
            self._generation += 1
            self._rng = random.Random(self._seed)
            self._stats.clear()
            self._post_seconds.clear()
            self._cond.notify_all()

    def schedule(self, message_ids: list[str]) -> None:
        if message_ids:
            self._push(self.settings.report_delay, lambda generation: self._settle_and_send(message_ids, generation))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every scheduled report is settled and delivered (or given up)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"pending": len(self._queue) + self._busy, **self._stats}

    def post_seconds(self) -> list[float]:
        """The duration of every webhook POST so far (answered or failed), oldest first."""
        with self._cond:
            return list(self._post_seconds)

    def _push(self, delay: float, task: Callable[[int], None], generation: int | None = None) -> None:
        with self._cond:
            if generation is not None and generation != self._generation:
                return
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), self._generation, task))
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not (self._queue and self._queue[0][0] <= time.monotonic()):
                    self._cond.wait(self._queue[0][0] - time.monotonic() if self._queue else None)
                if self._stopping:
                    return
                _, _, generation, task = heapq.heappop(self._queue)
                self._busy += 1
            try:
                task(generation)
            finally:
                self._done()

    def _done(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def _settle_and_send(self, message_ids: list[str], generation: int) -> None:
        reports = self._settle(message_ids)
        settings = self.settings
        self._count(settled=len(reports))
        if not settings.webhook_url or not reports:
            return
        events = [{"eventDataId": new_event_id(), "data": report, "retryCount": 0} for report in reports]
        with self._cond:  # the generator is shared with clear()
            repeats = [_retried(event) for event in events if self._rng.random() < settings.duplicate_report_rate]
        self._count(duplicates=len(repeats))
        for batch in _batches(events):
            self._push(0.0, self._delivery(batch, MAX_DELIVERY_RETRIES), generation)
        for batch in _batches(repeats):
            self._push(settings.report_delay, self._delivery(batch, MAX_DELIVERY_RETRIES), generation)

    def _delivery(self, events: list[Event], retries_left: int) -> Callable[[int], None]:
        def hand_to_poster(generation: int) -> None:
            assert self._posting is not None
            with self._cond:
                self._busy += 1
            try:
                self._posting.submit(self._post, events, retries_left, generation)
            except RuntimeError:  # stopped meanwhile
                self._done()

        return hand_to_poster

    def _post(self, events: list[Event], retries_left: int, generation: int) -> None:
        try:
            url = self.settings.webhook_url
            if not url:  # the webhook was switched off meanwhile
                return
            began = time.monotonic()
            delivered = _post_json(url, events)
            with self._cond:
                self._post_seconds.append(time.monotonic() - began)
            if delivered:
                self._count(posts_ok=1, events_delivered=len(events))
            elif retries_left == 0:
                self._count(posts_failed=1, events_abandoned=len(events))
            else:
                self._count(posts_failed=1)
                attempt = MAX_DELIVERY_RETRIES - retries_left
                delay = min(FIRST_RETRY_DELAY_SECONDS * 2**attempt, MAX_RETRY_DELAY_SECONDS)
                retry = self._delivery([_retried(event) for event in events], retries_left - 1)
                self._push(delay, retry, generation)
        finally:
            self._done()

    def _count(self, **increments: int) -> None:
        with self._cond:
            self._stats.update(increments)


def _retried(event: Event) -> Event:
    """The same event delivered again: same eventDataId, retryCount one higher."""
    return {**event, "retryCount": event["retryCount"] + 1}


def _batches(events: list[Event]) -> list[list[Event]]:
    return [events[i : i + MAX_REPORTS_PER_POST] for i in range(0, len(events), MAX_REPORTS_PER_POST)]


def _post_json(url: str, body: list[Event]) -> bool:
    request = urllib.request.Request(
        url,
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=POST_TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
