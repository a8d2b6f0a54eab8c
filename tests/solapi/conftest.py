"""Fixtures for the Solapi sandbox tests: a running sandbox, the unmodified SDK pointed at it,
a signed raw client for the group endpoints the SDK does not wrap, and a webhook receiver."""

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from solapi import SolapiMessageService
from solapi.lib.authenticator import Authenticator

from harness.solapi_sandbox import SolapiSandbox

API_KEY = "TESTKEY0000000001"
API_SECRET = "test-secret-000000000000000000001"
SENDER = "0212345678"


class SignedClient:
    """Calls signed the way the SDK signs them, for the endpoints the SDK does not wrap."""

    def __init__(self, base_url: str, api_key: str, api_secret: str, timeout: float) -> None:
        self.authenticator = Authenticator(api_key, api_secret)
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, authorization: str | None = None) -> httpx.Response:
        headers = {"Authorization": authorization or self.authenticator.get_auth_info()}
        return self.http.request(method, path, json=body, headers=headers)

    def create_group(self, **body: Any) -> str:
        response = self.request("POST", "/messages/v4/groups", body)
        assert response.status_code == 200, response.text
        return response.json()["groupId"]

    def add_messages(self, group_id: str, messages: list[dict]) -> httpx.Response:
        return self.request("PUT", f"/messages/v4/groups/{group_id}/messages", {"messages": messages})

    def send_group(self, group_id: str) -> httpx.Response:
        return self.request("POST", f"/messages/v4/groups/{group_id}/send")

    def group_statuses(self, group_id: str) -> dict[str, str]:
        """{to: statusCode} from the group-messages listing."""
        listing = self.request("GET", f"/messages/v4/groups/{group_id}/messages").json()["messageList"]
        return {message["to"]: message["statusCode"] for message in listing.values()}

    def close(self) -> None:
        self.http.close()


class ReportReceiver:
    """A webhook endpoint that records every POSTed body; the first `failures` POSTs get a 500."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[list[dict]] = []
        self.failures = failures
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    failing = receiver.failures > 0
                    receiver.failures -= failing
                    if not failing:
                        receiver.bodies.append(body)
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reports"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def events(self) -> list[dict]:
        with self._lock:
            return [event for body in self.bodies for event in body]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sender() -> str:
    """The sender number the sandbox has registered."""
    return SENDER


@pytest.fixture
def sandbox() -> Iterator[SolapiSandbox]:
    with SolapiSandbox(API_KEY, API_SECRET, senders=[SENDER], report_delay=0.2) as running:
        yield running


@pytest.fixture
def sdk(sandbox: SolapiSandbox) -> SolapiMessageService:
    """The unmodified Solapi SDK, pointed at the sandbox."""
    service = SolapiMessageService(API_KEY, API_SECRET)
    service.base_url = sandbox.url
    return service


@pytest.fixture
def make_client(sandbox: SolapiSandbox) -> Iterator[Callable[..., SignedClient]]:
    """SignedClient(api_key=, api_secret=, timeout=, url=) factory; url defaults to the `sandbox` fixture's."""
    clients: list[SignedClient] = []

    def make(
        api_key: str = API_KEY, api_secret: str = API_SECRET, timeout: float = 5.0, url: str | None = None
    ) -> SignedClient:
        clients.append(SignedClient(url or sandbox.url, api_key, api_secret, timeout))
        return clients[-1]

    yield make
    for signed in clients:
        signed.close()


@pytest.fixture
def client(make_client: Callable[..., SignedClient]) -> SignedClient:
    return make_client()


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., ReportReceiver]]:
    """ReportReceiver(failures=N) factory; receivers stop after the test."""
    receivers: list[ReportReceiver] = []

    def make(failures: int = 0) -> ReportReceiver:
        receivers.append(ReportReceiver(failures))
        return receivers[-1]

    yield make
    for running in receivers:
        running.stop()
