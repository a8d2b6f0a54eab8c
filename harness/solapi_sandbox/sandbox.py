"""SolapiSandbox: the fake Solapi assembled and started on a background thread, with the
Python API that tests, benchmarks and drills use to steer it."""

import dataclasses
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from harness.waiting import DEFAULT_TIMEOUT

from .api import SolapiApi
from .auth import Credentials, RequestAuthenticator
from .codes import ANY_OPERATION, DEFAULT_PLATFORM_BALANCE
from .control import ControlPlane
from .faults import DEFAULT_5XX_STATUS, DEFAULT_BURST_LENGTH, DEFAULT_HANG_SECONDS, Fault, FaultPlan, FaultRates
from .ledger import Ledger, RequestRecord
from .messages import RecipientOutcome, Stage
from .reports import ReportDispatcher, ReportSettings
from .routing import CONTROL_OPERATION
from .server import SandboxHTTPServer, ServerContext
from .state import SandboxState


class SolapiSandbox:
    def __init__(
        self,
        api_key: str,
        api_secret: str,
        senders: Iterable[str] = (),
        auth_status: int = HTTPStatus.FORBIDDEN,
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        report_delay: float = 0.5,
        duplicate_report_rate: float = 0.0,
        seed: int | None = None,
        platform_balance: float = DEFAULT_PLATFORM_BALANCE,
        on_request: Callable[[RequestRecord], None] | None = None,
    ) -> None:
        self._address = (host, port)
        self._on_request = on_request
        self.state = SandboxState(senders, platform_balance)
        self.ledger = Ledger()
        self.faults = FaultPlan(seed, latency_ms)
        self.authenticator = RequestAuthenticator(Credentials(api_key, api_secret, auth_status))
        self.reports = ReportDispatcher(
            self.state.record_reports, ReportSettings(webhook_url, report_delay, duplicate_report_rate), seed
        )
        self._api = SolapiApi(self.state, self.ledger, self.reports)
        self._control = ControlPlane(self)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> "SolapiSandbox":
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        context = ServerContext(
            routes=self._api.routes() + self._control.routes(),
            faults=self.faults,
            authenticator=self.authenticator,
            record=self._record,
        )
        self._server = SandboxHTTPServer(self._address, context)
        self.reports.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="solapi-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release requests hanging in accept-then-time-out, close open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.context.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread:
            self._thread.join(timeout=5)
        self.reports.stop()

    def __enter__(self) -> "SolapiSandbox":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """http://host:port, for SolapiMessageService.base_url; valid once started."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def reset(self) -> None:
        """Forget groups, sends, the request log, faults, recipient outcomes, pending reports and
        balance changes. Credentials, senders and webhook settings stay."""
        self.state.reset()
        self.ledger.reset()
        self.faults.clear()
        self.reports.clear()
        self.authenticator.forget_signatures()
        self.authenticator.clock_offset = timedelta(0)

    # --- account settings -------------------------------------------------------------------

    @property
    def credentials(self) -> Credentials:
        return self.authenticator.credentials

    def set_credentials(
        self, api_key: str | None = None, api_secret: str | None = None, auth_status: int | None = None
    ) -> None:
        changes = {"api_key": api_key, "api_secret": api_secret, "auth_status": auth_status}
        current = self.authenticator.credentials
        self.authenticator.set_credentials(
            dataclasses.replace(current, **{name: value for name, value in changes.items() if value is not None})
        )

    def set_clock_offset(self, seconds: float) -> None:
        """Run the sandbox's clock `seconds` off real time; beyond 15 min every request is skewed."""
        self.authenticator.clock_offset = timedelta(seconds=seconds)

    @property
    def senders(self) -> list[str]:
        return self.state.senders

    def register_sender(self, number: str) -> None:
        self.state.register_sender(number)

    def unregister_sender(self, number: str) -> None:
        self.state.unregister_sender(number)

    @property
    def recipient_outcomes(self) -> dict[str, RecipientOutcome]:
        return self.state.recipient_outcomes

    def set_recipient_outcome(
        self, phone: str, stage: Stage | str | None = None, code: str | None = None, fallback: bool = False
    ) -> None:
        """stage="register": messages to `phone` fail registration with `code`; stage="report": they
        are sent and their report carries `code`; fallback=True: an ATA falls back to SMS/LMS."""
        self.state.set_recipient_outcome(phone, RecipientOutcome(stage, code, fallback))

    def clear_recipient_outcome(self, phone: str) -> None:
        self.state.set_recipient_outcome(phone, None)

    def platform_balance(self) -> dict[str, Any]:
        return self.state.platform_balance()

    # --- how it bills and how it reports a fallback -----------------------------------------

    def set_prices(self, **prices: float) -> None:
        """Change the tariff per type, e.g. set_prices(sms=13, lms=29); the rest stay."""
        self.state.set_tariff(prices=prices)

    def set_billing_fault(self, overbill_per_message: float = 0.0) -> None:
        """Bill every sent message this much more than the tariff (0 turns the fault off)."""
        self.state.set_tariff(overbill_per_message=overbill_per_message)

    def billing(self) -> dict[str, Any]:
        return {**self.state.tariff.to_json(), "fallback_signal": str(self.state.fallback_signal)}

    def set_fallback_signal(self, signal: str) -> None:
        """How reports and the listing show an AlimTalk that fell back to SMS/LMS: "type" (the
        default: `type` becomes SMS/LMS), "replacement" (`type` stays ATA, `replacement: true`)
        or "group_count" (nothing per message; only the group's count.sentReplacement)."""
        self.state.set_fallback_signal(signal)

    def set_platform_balance(self, balance: float | None = None, point: float | None = None) -> None:
        self.state.set_platform_balance(balance=balance, point=point)

    def set_platform_balance_exhausted(self, exhausted: bool = True) -> None:
        """While exhausted, send-many and group send answer 402 NotEnoughBalance."""
        self.state.set_platform_balance(exhausted=exhausted)

    # --- faults -----------------------------------------------------------------------------

    def fail_next(
        self,
        operation: str = ANY_OPERATION,
        times: int = 1,
        action: str = "5xx",
        status: int = DEFAULT_5XX_STATUS,
        plain_text: bool = False,
        hang_seconds: float = DEFAULT_HANG_SECONDS,
        retry_after: float | None = None,
    ) -> None:
        """The next `times` requests to `operation` get `action`: "5xx", "429", "drop" or
        "accept_then_timeout". A 429 or 5xx carries Retry-After: `retry_after` when it is given."""
        self.faults.add_rule(operation, Fault(action, status, plain_text, hang_seconds, retry_after), times)

    def storm_429(self, seconds: float, retry_after: float | None = None, retry_after_every: int = 1) -> None:
        """Answer every Solapi call 429 for the next `seconds`. With `retry_after`, every
        `retry_after_every`-th reply carries Retry-After: retry_after (the others none)."""
        self.faults.start_storm(seconds, retry_after, retry_after_every)

    def set_fault_rates(
        self,
        operation: str = ANY_OPERATION,
        error_5xx: float = 0.0,
        too_many_requests: float = 0.0,
        burst_429: float = 0.0,
        drop: float = 0.0,
        accept_then_timeout: float = 0.0,
        burst_length: int = DEFAULT_BURST_LENGTH,
        status_5xx: int = DEFAULT_5XX_STATUS,
        hang_seconds: float = DEFAULT_HANG_SECONDS,
    ) -> None:
        rates = FaultRates(
            error_5xx, too_many_requests, burst_429, drop, accept_then_timeout, burst_length, status_5xx, hang_seconds
        )
        self.faults.set_rates(rates, operation)

    def set_latency(self, ms: float, operation: str = ANY_OPERATION) -> None:
        self.faults.set_latency(ms, operation)

    def clear_faults(self) -> None:
        self.faults.clear()

    # --- delivery reports -------------------------------------------------------------------

    def set_webhook_url(self, url: str | None) -> None:
        self._change_report_settings(webhook_url=url)

    def set_report_delay(self, seconds: float) -> None:
        self._change_report_settings(report_delay=float(seconds))

    def set_duplicate_report_rate(self, rate: float) -> None:
        self._change_report_settings(duplicate_report_rate=float(rate))

    def _change_report_settings(self, **changes: Any) -> None:
        self.reports.settings = dataclasses.replace(self.reports.settings, **changes)

    def wait_for_reports(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Wait until every sent message has its report and every webhook POST is done."""
        return self.reports.wait_idle(timeout)

    def report_status(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.reports.settings), **self.reports.stats()}

    # --- observations -----------------------------------------------------------------------

    def webhook_post_seconds(self) -> list[float]:
        """How long each report webhook POST took to be answered (or to fail), oldest first."""
        return self.reports.post_seconds()

    @property
    def accepted_total(self) -> int:
        return self.ledger.accepted_total

    def sends_per_message_id(self) -> dict[str, int]:
        """How many times each of our messages (customFields.message_id) was accepted for sending."""
        return self.ledger.sends_per_message_id()

    def sends_per_recipient(self) -> dict[str, int]:
        return self.ledger.sends_per_recipient()

    @property
    def request_log(self) -> list[RequestRecord]:
        return self.ledger.request_log

    def request_counts(self) -> dict[str, dict[str, int]]:
        return self.ledger.request_counts()

    def max_requests_per_second(self, since: float | None = None) -> int:
        """The most Solapi calls that arrived in any 1-second window (since `since`, a time.time())."""
        return self.ledger.max_requests_per_second(since)

    def snapshot(self) -> dict[str, Any]:
        """Everything GET /_sandbox/state shows."""
        return {
            "url": self.url if self._server else None,
            "accepted_total": self.accepted_total,
            "sends_per_message_id": self.sends_per_message_id(),
            "request_counts": self.request_counts(),
            "senders": self.senders,
            "auth_status": self.credentials.auth_status,
            "platform_balance": self.platform_balance(),
            "billing": self.billing(),
            "recipient_outcomes": {phone: outcome.to_json() for phone, outcome in self.recipient_outcomes.items()},
            "faults": self.faults.to_json(),
            "reports": self.report_status(),
        }

    def _record(self, record: RequestRecord) -> None:
        if record.operation != CONTROL_OPERATION:
            self.ledger.record_request(record)
        if self._on_request is not None:
            self._on_request(record)
