"""What the sandbox observed, for tests to assert on: every accepted message, counted by our own
message id, and a log of the Solapi requests with the status each got."""

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

from .messages import Message

# Our adapter puts customFields {"message_id": "<our id>"} on every message it sends.
CORRELATION_FIELD = "message_id"
# The log is for tests and drills; a very long run keeps the most recent requests only.
MAX_LOGGED_REQUESTS = 100_000


@dataclass(frozen=True)
class RequestRecord:
    at: float  # time.time() when the request arrived
    method: str
    path: str
    operation: str
    status: int | None  # None when the connection was closed without a reply
    fault: str | None  # the injected fault, if any
    duration_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sends_per_message_id: Counter[str] = Counter()
        self._sends_per_recipient: Counter[str] = Counter()
        self._accepted_total = 0
        self._requests: deque[RequestRecord] = deque(maxlen=MAX_LOGGED_REQUESTS)

    def reset(self) -> None:
        with self._lock:
            self._sends_per_message_id.clear()
            self._sends_per_recipient.clear()
            self._accepted_total = 0
            self._requests.clear()

    def record_accepted(self, messages: list[Message]) -> None:
        with self._lock:
            self._accepted_total += len(messages)
            for message in messages:
                if our_id := message.custom_fields.get(CORRELATION_FIELD):
                    self._sends_per_message_id[our_id] += 1
                self._sends_per_recipient[message.to] += 1

    def record_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    @property
    def accepted_total(self) -> int:
        with self._lock:
            return self._accepted_total

    def sends_per_message_id(self) -> dict[str, int]:
        with self._lock:
            return dict(self._sends_per_message_id)

    def sends_per_recipient(self) -> dict[str, int]:
        with self._lock:
            return dict(self._sends_per_recipient)

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def max_requests_per_second(self, since: float | None = None) -> int:
        """The most requests that arrived within any 1-second window (by arrival time, faulted
        ones included: each is a call the client made), optionally only those since `since`."""
        arrivals = sorted(record.at for record in self.request_log if since is None or record.at >= since)
        most, first = 0, 0
        for last, arrived in enumerate(arrivals):
            while arrived - arrivals[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most

    def request_counts(self) -> dict[str, dict[str, int]]:
        """{operation: {status or "no reply": count}}."""
        counts: dict[str, Counter[str]] = {}
        for record in self.request_log:
            status = "no reply" if record.status is None else str(record.status)
            counts.setdefault(record.operation, Counter())[status] += 1
        return {operation: dict(by_status) for operation, by_status in counts.items()}
