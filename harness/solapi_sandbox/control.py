"""The control plane under /_sandbox/: the sandbox's Python API over HTTP, for `make run`, drills
and curl. Request bodies use the Python API's parameter names. There is no authentication: the
sandbox is a test tool that listens on loopback."""

import functools
from typing import TYPE_CHECKING

from .errors import validation_error
from .routing import CONTROL_OPERATION, Call, Handler, Reply, Route, route

if TYPE_CHECKING:
    from .sandbox import SolapiSandbox

PREFIX = "/_sandbox"


class ControlPlane:
    def __init__(self, sandbox: "SolapiSandbox") -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        endpoints: list[tuple[str, str, Handler]] = [
            ("GET", "state", self.state),
            ("POST", "reset", self.reset),
            ("GET", "requests", self.requests),
            ("GET", "rate", self.rate),
            ("GET", "faults", self.faults),
            ("POST", "faults", self.change_faults),
            ("GET", "senders", self.senders),
            ("POST", "senders", self.change_senders),
            ("GET", "credentials", self.credentials),
            ("POST", "credentials", self.change_credentials),
            ("POST", "clock", self.change_clock),
            ("GET", "recipients", self.recipients),
            ("POST", "recipients", self.change_recipients),
            ("GET", "platform-balance", self.platform_balance),
            ("POST", "platform-balance", self.change_platform_balance),
            ("GET", "billing", self.billing),
            ("POST", "billing", self.change_billing),
            ("GET", "reports", self.reports),
            ("POST", "reports", self.change_reports),
        ]
        return [
            route(method, f"{PREFIX}/{name}", CONTROL_OPERATION, _bad_input_is_400(handler))
            for method, name, handler in endpoints
        ]

    def state(self, call: Call) -> Reply:
        return Reply.ok(self.sandbox.snapshot())

    def reset(self, call: Call) -> Reply:
        self.sandbox.reset()
        return Reply.ok(self.sandbox.snapshot())

    def requests(self, call: Call) -> Reply:
        """The request log, optionally ?operation=send_group and/or ?limit=N (the latest N)."""
        records = self.sandbox.request_log
        if operation := call.query.get("operation"):
            records = [record for record in records if record.operation == operation]
        if limit := call.query.get("limit"):
            records = records[-int(limit) :]
        return Reply.ok({"requests": [record.to_json() for record in records]})

    def rate(self, call: Call) -> Reply:
        """{"max_requests_per_second": the most Solapi calls that arrived in any 1-second window},
        optionally ?since=<unix time> (only calls that arrived since)."""
        since = call.query.get("since")
        return Reply.ok({"max_requests_per_second": self.sandbox.max_requests_per_second(
            float(since) if since else None)})

    def faults(self, call: Call) -> Reply:
        return Reply.ok(self.sandbox.faults.to_json())

    def change_faults(self, call: Call) -> Reply:
        """{"clear": bool, "rules": [fail_next kwargs, ...], "rates": set_fault_rates kwargs,
        "latency": set_latency kwargs, "storm": storm_429 kwargs}; applied in that order."""
        body = call.json_object()
        if body.get("clear"):
            self.sandbox.clear_faults()
        for rule in body.get("rules") or []:
            self.sandbox.fail_next(**rule)
        if rates := body.get("rates"):
            self.sandbox.set_fault_rates(**rates)
        if latency := body.get("latency"):
            self.sandbox.set_latency(**latency)
        if storm := body.get("storm"):
            self.sandbox.storm_429(**storm)
        return self.faults(call)

    def senders(self, call: Call) -> Reply:
        return Reply.ok({"senders": self.sandbox.senders})

    def change_senders(self, call: Call) -> Reply:
        """{"add": [numbers], "remove": [numbers]}."""
        body = call.json_object()
        for number in body.get("add") or []:
            self.sandbox.register_sender(number)
        for number in body.get("remove") or []:
            self.sandbox.unregister_sender(number)
        return self.senders(call)

    def credentials(self, call: Call) -> Reply:
        credentials = self.sandbox.credentials
        return Reply.ok({"api_key": credentials.api_key, "auth_status": credentials.auth_status})

    def change_credentials(self, call: Call) -> Reply:
        """{"api_key", "api_secret", "auth_status"}, each optional."""
        self.sandbox.set_credentials(**call.json_object())
        return self.credentials(call)

    def change_clock(self, call: Call) -> Reply:
        """{"offset_seconds": N}: the sandbox's clock runs N seconds off (over 900 = skewed)."""
        offset = float(call.json_object().get("offset_seconds", 0))
        self.sandbox.set_clock_offset(offset)
        return Reply.ok({"offset_seconds": offset})

    def recipients(self, call: Call) -> Reply:
        outcomes = self.sandbox.recipient_outcomes
        return Reply.ok({"outcomes": {phone: outcome.to_json() for phone, outcome in outcomes.items()}})

    def change_recipients(self, call: Call) -> Reply:
        """{"clear": bool, "outcomes": {phone: {"stage", "code", "fallback"} or null to remove}}."""
        body = call.json_object()
        if body.get("clear"):
            for phone in self.sandbox.recipient_outcomes:
                self.sandbox.clear_recipient_outcome(phone)
        for phone, outcome in (body.get("outcomes") or {}).items():
            if outcome is None:
                self.sandbox.clear_recipient_outcome(phone)
            else:
                self.sandbox.set_recipient_outcome(phone, **outcome)
        return self.recipients(call)

    def platform_balance(self, call: Call) -> Reply:
        return Reply.ok(self.sandbox.platform_balance())

    def change_platform_balance(self, call: Call) -> Reply:
        """{"balance": float, "point": float, "exhausted": bool}, each optional."""
        body = call.json_object()
        self.sandbox.set_platform_balance(body.get("balance"), body.get("point"))
        if "exhausted" in body:
            self.sandbox.set_platform_balance_exhausted(bool(body["exhausted"]))
        return self.platform_balance(call)

    def billing(self, call: Call) -> Reply:
        return Reply.ok(self.sandbox.billing())

    def change_billing(self, call: Call) -> Reply:
        """{"prices": {type: price}, "overbill_per_message": float, "fallback_signal": "type" |
        "replacement" | "group_count"}, each optional."""
        body = call.json_object()
        unknown = set(body) - {"prices", "overbill_per_message", "fallback_signal"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        if "prices" in body:
            self.sandbox.set_prices(**body["prices"])
        if "overbill_per_message" in body:
            self.sandbox.set_billing_fault(float(body["overbill_per_message"]))
        if "fallback_signal" in body:
            self.sandbox.set_fallback_signal(body["fallback_signal"])
        return self.billing(call)

    def reports(self, call: Call) -> Reply:
        return Reply.ok(self.sandbox.report_status())

    def change_reports(self, call: Call) -> Reply:
        """{"webhook_url": str or null, "report_delay": seconds, "duplicate_report_rate": 0..1}, each optional."""
        body = call.json_object()
        if "webhook_url" in body:
            self.sandbox.set_webhook_url(body["webhook_url"])
        if "report_delay" in body:
            self.sandbox.set_report_delay(body["report_delay"])
        if "duplicate_report_rate" in body:
            self.sandbox.set_duplicate_report_rate(body["duplicate_report_rate"])
        return self.reports(call)


def _bad_input_is_400(handler: Handler) -> Handler:
    """Bad values or unknown keys in a control request become 400 ValidationError with the reason."""

    @functools.wraps(handler)
    def guarded(call: Call) -> Reply:
        try:
            return handler(call)
        except (TypeError, ValueError, AttributeError) as error:
            raise validation_error(f"{type(error).__name__}: {error}") from None

    return guarded
