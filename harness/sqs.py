"""The local SQS: moto's server in a subprocess, with an off switch and a request count.

`down()` closes the listening socket and drops open connections, as an unreachable
endpoint would; `up()` listens again. The queues and their messages live on in the
process meanwhile, as they would on AWS during a network outage. `restart_empty()` is the
other outage: the server process is stopped and a new one started on the same port, with
no queues and no messages (a queue deleted by mistake, a local SQS restarted). Every request is
counted by SQS operation, so benchmarks can report SQS requests per message.

Run directly: python -m harness.sqs --port 9324 [--control-port 9325] [--request-log]
(`make run` does, without the control port). The server's per-request log line (werkzeug's)
is off unless --request-log: an idle worker's long polls alone printed ~40 lines a minute.
"""

import argparse
import base64
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

from harness.ports import free_port, wait_for_port


def task_of(sqs_message: dict) -> tuple[str, list]:
    """(task name, args) of a Celery message as kombu wrote it to SQS."""
    raw = sqs_message["Body"]
    try:
        envelope = json.loads(raw)
    except ValueError:
        envelope = json.loads(base64.b64decode(raw))
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, _kwargs, _embed = json.loads(body)
    return envelope["headers"]["task"], args


class LocalSQS:
    """Controls a `python -m harness.sqs` subprocess."""

    def __init__(self, port: int | None = None, log_path: Path | None = None, region: str | None = None):
        self.port = port or free_port()
        # moto keeps queues per region; kombu creates ours in AWS_REGION.
        self.region = region or os.environ.get("AWS_REGION", "ap-northeast-2")
        self.control_port = free_port()
        self.log_path = log_path
        self._process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def broker_url(self) -> str:
        return f"sqs://test:test@127.0.0.1:{self.port}"

    def start(self) -> "LocalSQS":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "harness.sqs", "--port", str(self.port), "--control-port", str(self.control_port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent,
        )
        wait_for_port(self.port)
        wait_for_port(self.control_port)
        return self

    @property
    def pid(self) -> int:
        """The server subprocess's id (benchmarks read its CPU time from /proc)."""
        return self._process.pid

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def restart_empty(self, down_for: float = 0.0) -> None:
        """Stop the server process, wait `down_for` seconds, and start a new, empty one on the
        same ports: every queue and message is gone, and clients holding queue URLs get
        QueueDoesNotExist. Request counts start from zero."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def queue_names(self) -> list[str]:
        """The names of the queues that exist now."""
        return sorted(url.rsplit("/", 1)[-1] for url in self.client().list_queues().get("QueueUrls", []))

    def down(self) -> None:
        self._control("POST", "/down")

    def up(self) -> None:
        self._control("POST", "/up")
        wait_for_port(self.port)

    def drain(self, *queue_names: str) -> list[dict]:
        """Receive and delete every visible message of these queues (those that exist), and
        return them. PurgeQueue would do it in one call, but SQS (and moto) allow it once a minute."""
        client, drained = self.client(), []
        for name in queue_names:
            try:
                url = client.get_queue_url(QueueName=name)["QueueUrl"]
            except client.exceptions.QueueDoesNotExist:
                continue
            while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                client.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
                drained += messages
        return drained

    def client(self):
        """A boto3 SQS client for this server, in the region the project's queues live in."""
        return boto3.client("sqs", endpoint_url=f"http://{self.endpoint}", region_name=self.region,
                            aws_access_key_id="test", aws_secret_access_key="test")

    def request_counts(self) -> Counter:
        return Counter(self._control("GET", "/stats"))

    def reset_counts(self) -> None:
        self._control("POST", "/stats/reset")

    def _control(self, method: str, path: str):
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")


# --- the subprocess ----------------------------------------------------------------


class _Server:
    def __init__(self, port: int):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.port = port
        self.counts: Counter = Counter()
        self._lock = threading.Lock()
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = None
        self._connections: set[socket.socket] = set()

    def app(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1] if target else environ.get("PATH_INFO", "")
        with self._lock:
            self.counts[operation] += 1
        return self._moto(environ, start_response)

    def up(self) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        if self._server:
            return
        server = make_server("127.0.0.1", self.port, self.app, threaded=True, request_handler=MotoRequestHandler)
        original = server.process_request

        def track(request, client_address):
            self._connections.add(request)
            original(request, client_address)

        server.process_request = track
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        server, self._server = self._server, None
        if not server:
            return
        server.shutdown()
        server.server_close()
        for conn in list(self._connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._connections.clear()


def _control_handler(sqs: _Server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._reply(dict(sqs.counts))

        def do_POST(self):
            if self.path == "/down":
                sqs.down()
            elif self.path == "/up":
                sqs.up()
            elif self.path == "/stats/reset":
                sqs.counts.clear()
            self._reply({})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="moto SQS on loopback, with an off switch")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, help="the test harness's switch (down/up, request counts)")
    parser.add_argument("--request-log", action="store_true", help="print a line per request (off by default)")
    args = parser.parse_args()
    if not args.request_log:
        # werkzeug logs each request at INFO, adding its own handler when none is configured.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # moto answers every origin (Access-Control-Allow-Origin: *) unless told not to: any web
    # page a developer opens could then read the queues. Read by moto when it is imported.
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    sqs = _Server(args.port)
    sqs.up()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.control_port is None:
        print(f"local SQS on 127.0.0.1:{args.port}", flush=True)
        threading.Event().wait()
    control = ThreadingHTTPServer(("127.0.0.1", args.control_port), _control_handler(sqs))
    print(f"local SQS on 127.0.0.1:{args.port} (control 127.0.0.1:{args.control_port})", flush=True)
    control.serve_forever()


if __name__ == "__main__":
    main()
