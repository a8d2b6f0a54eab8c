"""Injected failures, per operation: fixed latency, 5xx, 429 (single, in bursts, or a storm of a
given length, with or without Retry-After), dropped connections and accept-then-time-out; as
deterministic rules ("the next N requests to X fail with Y") or as random rates drawn from a
seedable generator."""

import math
import random
import threading
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from .codes import ANY_OPERATION, ErrorCode, Operation
from .errors import SolapiError
from .routing import Reply

# Longer than any client read timeout in the project (SOLAPI_READ_TIMEOUT defaults to 20 s).
DEFAULT_HANG_SECONDS = 30.0
DEFAULT_5XX_STATUS = HTTPStatus.SERVICE_UNAVAILABLE
DEFAULT_BURST_LENGTH = 5


class FaultAction(StrEnum):
    ERROR_5XX = "5xx"
    TOO_MANY_REQUESTS = "429"
    # Close the socket without a reply before the request is processed: nothing is registered.
    DROP = "drop"
    # Process the request fully (messages count as sent), then hang and close without a reply:
    # the case that makes a naive retry send the SMS twice.
    ACCEPT_THEN_TIMEOUT = "accept_then_timeout"


@dataclass(frozen=True)
class Fault:
    action: FaultAction
    status: int = DEFAULT_5XX_STATUS
    plain_text: bool = False  # a 5xx body as text, as a proxy in front of Solapi would send
    hang_seconds: float = DEFAULT_HANG_SECONDS
    retry_after: float | None = None  # a 429's (or 5xx's) Retry-After header, in seconds; None: no header

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", FaultAction(self.action))
        if self.action is FaultAction.ERROR_5XX and not 500 <= self.status <= 599:
            raise ValueError(f"a 5xx fault needs a status from 500 to 599, not {self.status}")

    @property
    def replaces_reply(self) -> bool:
        """True if the fault answers instead of Solapi (5xx, 429)."""
        return self.action in (FaultAction.ERROR_5XX, FaultAction.TOO_MANY_REQUESTS)

    def reply(self) -> Reply:
        reply = self._reply()
        if self.retry_after is not None:
            reply.headers["Retry-After"] = str(round(self.retry_after))
        return reply

    def _reply(self) -> Reply:
        if self.action is FaultAction.TOO_MANY_REQUESTS:
            return Reply.error(SolapiError(HTTPStatus.TOO_MANY_REQUESTS, ErrorCode.TOO_MANY_REQUESTS))
        phrase = HTTPStatus(self.status).phrase
        if self.plain_text:
            return Reply(self.status, phrase)
        error_code = phrase.replace(" ", "")  # 503 -> "ServiceUnavailable"
        return Reply.error(SolapiError(self.status, error_code, f"{phrase} (injected by the Solapi sandbox)"))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultRule:
    operation: str
    fault: Fault
    remaining: int

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "remaining": self.remaining, **self.fault.to_json()}


@dataclass(frozen=True)
class FaultRates:
    """Per-request probabilities. drop, error_5xx, too_many_requests and accept_then_timeout are
    exclusive (one draw); burst_429 starts a burst of `burst_length` consecutive 429s."""

    error_5xx: float = 0.0
    too_many_requests: float = 0.0
    burst_429: float = 0.0
    drop: float = 0.0
    accept_then_timeout: float = 0.0
    burst_length: int = DEFAULT_BURST_LENGTH
    status_5xx: int = DEFAULT_5XX_STATUS
    hang_seconds: float = DEFAULT_HANG_SECONDS

    def __post_init__(self) -> None:
        rates = (self.error_5xx, self.too_many_requests, self.burst_429, self.drop, self.accept_then_timeout)
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("fault rates must be between 0 and 1")
        if self.error_5xx + self.too_many_requests + self.drop + self.accept_then_timeout > 1.0:
            raise ValueError("error_5xx + too_many_requests + drop + accept_then_timeout must not exceed 1")
        if self.burst_length < 1:
            raise ValueError("burst_length must be at least 1")

    def draw(self, rng: random.Random) -> Fault | None:
        roll = rng.random()
        for action, rate in (
            (FaultAction.DROP, self.drop),
            (FaultAction.ERROR_5XX, self.error_5xx),
            (FaultAction.TOO_MANY_REQUESTS, self.too_many_requests),
            (FaultAction.ACCEPT_THEN_TIMEOUT, self.accept_then_timeout),
        ):
            if roll < rate:
                return Fault(action, status=self.status_5xx, hang_seconds=self.hang_seconds)
            roll -= rate
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_operation(operation: str) -> str:
    if operation != ANY_OPERATION and operation not in set(Operation):
        names = ", ".join([ANY_OPERATION, *Operation])
        raise ValueError(f"unknown operation {operation!r}; use one of {names}")
    return operation


@dataclass
class Storm:
    """Every request, to any operation, answered 429 until `until` (time.monotonic()). With
    `retry_after`, every `retry_after_every`-th reply carries Retry-After (1: all of them),
    the others none, so one storm shows a client both kinds."""

    until: float
    retry_after: float | None = None
    retry_after_every: int = 1
    replies: int = 0

    def to_json(self) -> dict[str, Any]:
        # Rounded up: 0 only once the storm is over.
        left = max(0.0, math.ceil((self.until - time.monotonic()) * 10) / 10)
        return {"seconds_left": left, "retry_after": self.retry_after,
                "retry_after_every": self.retry_after_every, "replies": self.replies}


class FaultPlan:
    def __init__(self, seed: int | None = None, latency_ms: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._baseline_latency_ms = float(latency_ms)
        self.clear()

    def clear(self) -> None:
        """Drop every rule, rate, burst and storm; restore the start-up latency and re-seed the generator."""
        with self._lock:
            self._rng = random.Random(self._seed)
            self._rules: list[FaultRule] = []
            self._rates: dict[str, FaultRates] = {}
            self._burst_remaining = 0
            self._storm: Storm | None = None
            self._latency_ms: dict[str, float] = {ANY_OPERATION: self._baseline_latency_ms}

    def start_storm(self, seconds: float, retry_after: float | None = None, retry_after_every: int = 1) -> None:
        """Answer every request 429 for the next `seconds` (see Storm)."""
        if seconds <= 0:
            raise ValueError("a storm lasts more than 0 seconds")
        if retry_after_every < 1:
            raise ValueError("retry_after_every must be at least 1")
        with self._lock:
            self._storm = Storm(time.monotonic() + seconds, retry_after, retry_after_every)

    def _storm_fault(self) -> Fault | None:
        storm = self._storm
        if storm is None or time.monotonic() >= storm.until:
            return None
        storm.replies += 1
        with_header = storm.retry_after is not None and storm.replies % storm.retry_after_every == 0
        return Fault(FaultAction.TOO_MANY_REQUESTS, retry_after=storm.retry_after if with_header else None)

    def add_rule(self, operation: str, fault: Fault, times: int = 1) -> None:
        """The next `times` requests to `operation` (or any, with "*") get `fault`. Rules apply in
        the order they were added."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._rules.append(FaultRule(check_operation(operation), fault, times))

    def set_rates(self, rates: FaultRates, operation: str = ANY_OPERATION) -> None:
        """Random faults for `operation`; an operation's own rates replace the "*" ones."""
        with self._lock:
            self._rates[check_operation(operation)] = rates

    def set_latency(self, ms: float, operation: str = ANY_OPERATION) -> None:
        """Fixed delay per HTTP call; an operation's own latency replaces the "*" one."""
        if ms < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            self._latency_ms[check_operation(operation)] = float(ms)

    def latency_seconds(self, operation: str) -> float:
        with self._lock:
            return self._latency_ms.get(operation, self._latency_ms[ANY_OPERATION]) / 1000

    def draw(self, operation: str) -> Fault | None:
        """The fault for one request to `operation`, if any; consumes rules and bursts."""
        with self._lock:
            if storm := self._storm_fault():
                return storm
            for rule in self._rules:
                if rule.operation in (operation, ANY_OPERATION):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return rule.fault
            if self._burst_remaining:
                self._burst_remaining -= 1
                return Fault(FaultAction.TOO_MANY_REQUESTS)
            rates = self._rates.get(operation) or self._rates.get(ANY_OPERATION)
            if rates is None:
                return None
            if rates.burst_429 and self._rng.random() < rates.burst_429:
                self._burst_remaining = rates.burst_length - 1
                return Fault(FaultAction.TOO_MANY_REQUESTS)
            return rates.draw(self._rng)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": [rule.to_json() for rule in self._rules],
                "rates": {operation: rates.to_json() for operation, rates in self._rates.items()},
                "burst_429_remaining": self._burst_remaining,
                "storm": self._storm.to_json() if self._storm else None,
                "latency_ms": dict(self._latency_ms),
                "seed": self._seed,
            }
