"""A loopback HTTP proxy that forwards to an upstream and can answer with faults.

Used between a worker and the local SQS to return 5xx, or a 4xx such as QueueDoesNotExist,
for chosen SQS operations (tests/foundation/test_kombu_fix.py), without touching the SQS
server itself.
"""

import contextlib
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.ports import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class FaultProxy:
    def __init__(self, upstream_port: int, port: int | None = None):
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.injected = 0
        self._rules: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True

    def start(self) -> "FaultProxy":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, operation: str, times: int = 1, status: int = 503, code: str | None = None) -> None:
        """Answer the next `times` requests for this SQS operation (e.g. ReceiveMessage) with
        `status` and the SQS error `code` (by default ServiceUnavailable for a 5xx,
        QueueDoesNotExist for a 4xx), in SQS's JSON error format."""
        code = code or ("ServiceUnavailable" if status >= 500 else "QueueDoesNotExist")
        with self._lock:
            self._rules.append({"operation": operation, "times": times, "status": status, "code": code})

    def _fault_for(self, operation: str) -> tuple[int, str] | None:
        with self._lock:
            for rule in self._rules:
                if rule["operation"] == operation and rule["times"] > 0:
                    rule["times"] -= 1
                    self.injected += 1
                    return rule["status"], rule["code"]
        return None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle(self):
                # A client that gives up mid-response (a killed worker) is not the proxy's problem.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = (self.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
                fault = proxy._fault_for(operation)
                if fault is not None:
                    status, code = fault
                    payload = json.dumps({"__type": f"com.amazonaws.sqs#{code}",
                                          "message": "injected by FaultProxy"}).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        return Handler
