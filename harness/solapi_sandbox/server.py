"""The sandbox's HTTP front: a threaded HTTP/1.1 keep-alive server that routes each request,
injects the planned fault, checks the signature, spends the latency and writes the reply."""

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .auth import RequestAuthenticator
from .codes import ErrorCode
from .errors import SolapiError, not_found
from .faults import Fault, FaultAction, FaultPlan
from .ledger import RequestRecord
from .routing import CONTROL_OPERATION, Call, Reply, Route, match

logger = logging.getLogger(__name__)

# Longer than httpx's 5 s keep-alive expiry, so a pooled client never reuses a connection the
# sandbox is closing at the same moment.
IDLE_CONNECTION_SECONDS = 75


@dataclass
class ServerContext:
    """What request handling needs from the sandbox."""

    routes: list[Route]
    faults: FaultPlan
    authenticator: RequestAuthenticator
    record: Callable[[RequestRecord], None]
    stopping: threading.Event = field(default_factory=threading.Event)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], context: ServerContext) -> None:
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SandboxRequestHandler)

    def connection_opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def connection_closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut every open connection, so keep-alive clients see the sandbox stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that give up (read timeouts, drills) break connections routinely.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SolapiSandbox/1.0"
    disable_nagle_algorithm = True  # replies go out as two writes; Nagle would hold the second
    timeout = IDLE_CONNECTION_SECONDS
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.connection_opened(self.connection)

    def finish(self) -> None:
        self.server.connection_closed(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        """Silenced: the sandbox reports each request through ServerContext.record instead."""

    def _handle(self) -> None:
        arrived, started = time.time(), time.monotonic()
        context = self.server.context
        url = urlsplit(self.path)
        # Read the body even of a request about to be dropped: closing a socket with unread data
        # makes the kernel reset the connection, and the drop would not look like a plain close.
        body = self._read_body()
        found = match(context.routes, self.command, url.path)
        if found is None:
            self._reply(Reply.error(not_found(f"{self.command} {url.path}")))
            return
        route, params = found
        call = Call(self.command, url.path, params, dict(parse_qsl(url.query)), body, self.headers)
        fault = None
        if route.operation == CONTROL_OPERATION:
            status = self._reply(self._process(route, call, authenticate=False))
        else:
            fault = context.faults.draw(route.operation)
            call.wait_latency = _latency_once(context.faults.latency_seconds(route.operation), context.stopping)
            status = self._serve_solapi(route, call, fault)
        duration_ms = round((time.monotonic() - started) * 1000, 2)
        action = str(fault.action) if fault else None
        context.record(
            RequestRecord(arrived, self.command, url.path, str(route.operation), status, action, duration_ms)
        )

    def _serve_solapi(self, route: Route, call: Call, fault: Fault | None) -> int | None:
        """Answer a Solapi call through its planned fault; the status sent, or None for no reply."""
        if fault and fault.action is FaultAction.DROP:
            self._close_without_reply()
            return None
        reply = fault.reply() if fault and fault.replaces_reply else self._process(route, call, authenticate=True)
        call.wait_latency()
        if fault and fault.action is FaultAction.ACCEPT_THEN_TIMEOUT:
            self.server.context.stopping.wait(fault.hang_seconds)
            self._close_without_reply()
            return None
        return self._reply(reply)

    def _process(self, route: Route, call: Call, authenticate: bool) -> Reply:
        try:
            if authenticate:
                self.server.context.authenticator.verify(self.headers.get("Authorization"))
            return route.handler(call)
        except SolapiError as error:
            return Reply.error(error)
        except Exception:
            logger.exception("Solapi sandbox failed on %s %s", call.method, call.path)
            return Reply.error(SolapiError(HTTPStatus.INTERNAL_SERVER_ERROR, ErrorCode.INTERNAL_ERROR))

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reply(self, reply: Reply) -> int:
        payload, content_type = reply.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.server.context.stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)
        return int(reply.status)

    def _close_without_reply(self) -> None:
        self.close_connection = True
        _shutdown(self.connection)


def _latency_once(seconds: float, stopping: threading.Event) -> Callable[[], None]:
    """A wait that happens at most once per request, wherever the handler chooses to spend it."""
    pending = [seconds]

    def wait() -> None:
        if pending and pending[0] > 0:
            stopping.wait(pending.pop())
        pending.clear()

    return wait


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        connection.shutdown(socket.SHUT_RDWR)
