"""Run the Solapi sandbox in the foreground: `python manage.py solapi_sandbox --port 8765 --sender 0212345678`."""

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from harness.solapi_sandbox import RequestRecord, SolapiSandbox

# Through the project's logging (project/logging.py): the same format and clock as every other
# line of `make run`, on standard error.
logger = logging.getLogger("solapi_sandbox")


class Command(BaseCommand):
    help = "Serve the local imitation of Solapi's API (docs/sandbox.md) until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default: loopback only).")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--api-key", help="Default: settings.SOLAPI_API_KEY.")
        parser.add_argument("--api-secret", help="Default: settings.SOLAPI_API_SECRET.")
        parser.add_argument(
            "--sender", action="append", default=[], help="A registered sender number; repeat for more."
        )
        parser.add_argument(
            "--auth-status", type=int, choices=[401, 403], default=403, help="HTTP status of auth errors."
        )
        parser.add_argument("--latency-ms", type=float, default=0.0, help="Fixed delay added to every call.")
        parser.add_argument("--webhook-url", help="Where to POST single-report webhooks.")
        parser.add_argument("--report-delay", type=float, default=0.5, help="Seconds from send to report.")
        parser.add_argument(
            "--duplicate-report-rate",
            type=float,
            default=0.05,
            help="Share of reports delivered twice, as Solapi sometimes does (default 0.05).",
        )
        parser.add_argument("--seed", type=int, help="Seed for random faults and duplicate reports.")

    def handle(self, *args: Any, **options: Any) -> None:
        sandbox = SolapiSandbox(
            api_key=options["api_key"] or settings.SOLAPI_API_KEY,
            api_secret=options["api_secret"] or settings.SOLAPI_API_SECRET,
            senders=options["sender"],
            auth_status=options["auth_status"],
            webhook_url=options["webhook_url"],
            host=options["host"],
            port=options["port"],
            latency_ms=options["latency_ms"],
            report_delay=options["report_delay"],
            duplicate_report_rate=options["duplicate_report_rate"],
            seed=options["seed"],
            on_request=self._log_request,
        )
        stop = threading.Event()
        # honcho and process managers stop children with SIGTERM; treat it like Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        sandbox.start()
        senders = ", ".join(sandbox.senders) or "none"
        webhook = options["webhook_url"] or "off"
        logger.info("Solapi sandbox on %s (senders: %s; auth errors: %s; webhook: %s; control: %s/_sandbox/state)",
                    sandbox.url, senders, options["auth_status"], webhook, sandbox.url)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.stop()

    def _log_request(self, record: RequestRecord) -> None:
        fields = {"method": record.method, "path": record.path,
                  "status": "no reply" if record.status is None else record.status,
                  "duration_ms": round(record.duration_ms)}
        if record.fault:
            fields["fault"] = record.fault
        logger.info("request", extra=fields)
