"""Counters and histograms recorded where things happen: Solapi calls (messaging/solapi/client.py,
one place) and the send API's answers (messaging/api/views.py).

In a web or worker process started with PROMETHEUS_MULTIPROC_DIR, prometheus_client keeps each
process's values in a file there, so /metrics (project/metrics.py) adds up every gunicorn worker
and every pool child. What is truer read from our tables at scrape time (messages by status, credit
held, the breaker) is not here: messaging/operations/gauges.py.

Labels are bounded (docs/metrics.md, "Label cardinality"): an operation, an HTTP status, a failure
class or a refusal code, each from a fixed set. Never a message, a phone number or an academy.
"""

import os

from prometheus_client import Counter, Histogram

from messaging.failures import FailureClass

NONE = "none"

# In multiprocess mode prometheus_client opens its file when a metric is defined (below): a missing
# directory would stop the process at import.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

SOLAPI_REQUESTS = Counter(
    "messaging_solapi_requests_total",
    "Calls to Solapi by operation, HTTP status (none: no answer) and failure class (none: success).",
    ["operation", "http_status", "failure_class"],
)
# Solapi answers in tens of milliseconds; a group of 1,000 takes longer; SOLAPI_READ_TIMEOUT is 20 s.
SOLAPI_LATENCY = Histogram(
    "messaging_solapi_request_duration_seconds",
    "Time from sending a Solapi request to its answer (or its failure), by operation.",
    ["operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
)
SEND_REQUESTS = Counter(
    "messaging_send_requests_total",
    "Answers of POST /api/v1/messages/send: accepted (202), or refused with its code.",
    ["outcome", "code"],
)
MESSAGES_ACCEPTED = Counter(
    "messaging_send_messages_accepted_total",
    "Messages in the send requests the API accepted (skipped recipients not counted).",
)

ACCEPTED = "accepted"
REFUSED = "refused"
_KNOWN_FAILURE_CLASSES = frozenset(FailureClass.values)


def record_solapi_call(operation: str, *, seconds: float, http_status: int | None, failure_class: str = "") -> None:
    """One Solapi call, whatever became of it."""
    failure = failure_class if failure_class in _KNOWN_FAILURE_CLASSES else (NONE if not failure_class else "unknown")
    SOLAPI_REQUESTS.labels(operation, str(http_status) if http_status else NONE, failure).inc()
    SOLAPI_LATENCY.labels(operation).observe(seconds)


def record_send_answer(status_code: int, body: object, known_codes: frozenset[str]) -> None:
    """The send API's answer: 202 is accepted; anything else is refused with its `code`
    (unknown codes are folded into "other", so a label never carries free text)."""
    if status_code == 202:
        SEND_REQUESTS.labels(ACCEPTED, NONE).inc()
        accepted = body.get("accepted") if isinstance(body, dict) else None
        if isinstance(accepted, int) and accepted > 0:
            MESSAGES_ACCEPTED.inc(accepted)
        return
    code = body.get("code") if isinstance(body, dict) else None
    SEND_REQUESTS.labels(REFUSED, code if code in known_codes else "other").inc()
