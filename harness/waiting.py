"""Waiting for a condition, for tests, the harness and benchmarks.

Never a fixed sleep: poll what you mean (a status, a ledger total, a log line) until it
holds, with a deadline generous enough for a loaded 2-core CI box. A slow machine then
makes a test slower, never red; only a condition that never comes fails it.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Generous on purpose: the deadline is only reached when something is really wrong.
DEFAULT_TIMEOUT = 60.0


def wait_until(predicate: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT, interval: float = 0.1,
               what: str = "a condition") -> T:
    """Call `predicate` until it returns something truthy, and return that; raise
    TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
