"""A local stand-in for Sentry's ingest: an HTTP server on 127.0.0.1 that keeps every envelope
it is sent, for tests and drills that check what error tracking would have sent, and that
nothing it sent carries a phone number or a secret.

`dsn` points sentry-sdk at it (project id 1, any public key). An envelope is a header line,
then (item header, item payload) line pairs; sentry-sdk gzips the body.
"""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.ports import free_port


class SentryCapture:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._raw: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def start(self) -> "SentryCapture":
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with capture._lock:
                    capture._raw.append(body.decode("utf-8", errors="replace"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):  # quiet: the test reads the envelopes, not a log
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="sentry-capture", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def clear(self) -> None:
        with self._lock:
            self._raw.clear()

    def raw(self) -> str:
        """Every envelope received, as text: what a leak check reads."""
        with self._lock:
            return "\n".join(self._raw)

    def events(self) -> list[dict[str, Any]]:
        """The error events received (items of type "event"), oldest first."""
        with self._lock:
            envelopes = list(self._raw)
        found = []
        for envelope in envelopes:
            lines = envelope.split("\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                try:
                    if json.loads(header).get("type") == "event":
                        found.append(json.loads(payload))
                except ValueError:
                    continue
        return found


def event_text(event: dict[str, Any]) -> str:
    """An event's message as a person reads it in Sentry: the log line, or the exception."""
    logentry = event.get("logentry") or {}
    message = logentry.get("formatted") or logentry.get("message") or event.get("message") or ""
    exceptions = (event.get("exception") or {}).get("values") or []
    return " ".join([message, *(f"{e.get('type')}: {e.get('value')}" for e in exceptions)]).strip()
