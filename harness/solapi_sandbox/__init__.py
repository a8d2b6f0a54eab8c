"""A local imitation of Solapi's HTTP API, for `make run`, the test suite, benchmarks and fault drills.

It speaks Solapi's paths, auth header and JSON shapes closely enough that the unmodified `solapi`
SDK validates every 2xx reply, and it adds what the real service cannot offer: counts of every
accepted message, a request log, and injected faults. Standard library only; it never imports
the project's own Solapi adapter. Full reference: docs/sandbox.md.

    from harness.solapi_sandbox import SolapiSandbox

    sb = SolapiSandbox(api_key="K", api_secret="S", senders=["0212345678"]).start()
    svc = SolapiMessageService("K", "S"); svc.base_url = sb.url     # http://127.0.0.1:<port>
    ...
    sb.stop()            # or: with SolapiSandbox(...) as sb: ...

Constructor (all keyword-able): api_key, api_secret, senders=(), auth_status=403 (or 401),
webhook_url=None, host="127.0.0.1", port=0 (any free port), latency_ms=0, report_delay=0.5,
duplicate_report_rate=0.0, seed=None, platform_balance=1_000_000.0, on_request=None (a callable
receiving each RequestRecord: the management command's access log).

Steering, all thread-safe and usable while it runs:
    sb.reset()                                  forget groups, sends, log, faults, recipient outcomes,
                                                pending reports; keep credentials, senders, webhook
    sb.set_credentials(api_key=, api_secret=, auth_status=)
    sb.register_sender(number); sb.unregister_sender(number); sb.senders
    sb.set_recipient_outcome(phone, stage="register", code="3010")   refused at registration
    sb.set_recipient_outcome(phone, stage="report", code="3041")     sent, report says 3041
    sb.set_recipient_outcome(phone, fallback=True)                   ATA falls back to SMS/LMS
    sb.clear_recipient_outcome(phone)
    sb.fail_next(operation, times=1, action="5xx"|"429"|"drop"|"accept_then_timeout",
                 status=503, plain_text=False, hang_seconds=30.0, retry_after=None)
    sb.storm_429(seconds, retry_after=None, retry_after_every=1)     every call 429 for a while
    sb.set_fault_rates(operation="*", error_5xx=, too_many_requests=, burst_429=, drop=,
                       accept_then_timeout=, burst_length=5, status_5xx=503, hang_seconds=30.0)
    sb.set_latency(ms, operation="*"); sb.clear_faults()
    sb.set_platform_balance(balance=, point=); sb.set_platform_balance_exhausted(True)
    sb.set_prices(sms=13, lms=29, ...); sb.set_billing_fault(overbill_per_message=5)
    sb.set_fallback_signal("type"|"replacement"|"group_count")
    sb.set_webhook_url(url); sb.set_report_delay(s); sb.set_duplicate_report_rate(r)

Observing:
    sb.sends_per_message_id() -> {customFields.message_id: times accepted}
    sb.sends_per_recipient(); sb.accepted_total
    sb.request_log -> [RequestRecord(at, method, path, operation, status, fault, duration_ms)]
    sb.request_counts() -> {operation: {status: n}}
    sb.max_requests_per_second(since=None) -> the most calls that arrived in any 1-second window
    sb.wait_for_reports(timeout) -> bool; sb.report_status(); sb.snapshot()

Operations (for faults and the log): send_many, create_group, add_messages, send_group, get_group,
get_group_messages, balance, or "*". The same controls are served over HTTP under /_sandbox/.
"""

from .codes import ErrorCode, FallbackSignal, GroupStatus, Operation, StatusCode
from .faults import FaultAction
from .ledger import RequestRecord
from .messages import Stage
from .sandbox import SolapiSandbox

__all__ = [
    "ErrorCode",
    "FallbackSignal",
    "FaultAction",
    "GroupStatus",
    "Operation",
    "RequestRecord",
    "SolapiSandbox",
    "Stage",
    "StatusCode",
]
