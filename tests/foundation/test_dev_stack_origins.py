"""The dev stack answers no cross-origin reads: any web page a developer opens could
otherwise read Flower's task list (academy data in task arguments) or the local queues.

Flower sends `Access-Control-Allow-Origin: *` when it runs without a login and
FLOWER_UNAUTHENTICATED_API is on; moto's server sends it unless MOTO_DISABLE_GLOBAL_CORS.
Both processes are started here as `make run` starts them: Procfile.dev's command line,
dev.env's environment.
"""

import base64
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from harness.ports import free_port, wait_for_port

BASE_DIR = Path(settings.BASE_DIR)
ORIGIN = "https://evil.example"


def _dev_env() -> dict[str, str]:
    lines = (BASE_DIR / "dev.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def _procfile(name: str) -> dict[str, str]:
    lines = (BASE_DIR / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def _start(command: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    bin_dir = str(Path(os.sys.executable).parent)
    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"], cwd=BASE_DIR, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
    )
    try:
        wait_for_port(port, timeout=60)
    except TimeoutError:
        process.kill()
        raise AssertionError(log.read_text()) from None
    return process


def _get(url: str, **headers: str):
    request = urllib.request.Request(url, headers={"Origin": ORIGIN, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def _redis_is_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def test_the_local_sqs_answers_no_other_origin(tmp_path):
    port = free_port()
    command = _procfile("Procfile.dev")["sqs"].replace("--port 9324", f"--port {port}")
    process = _start(command, _dev_env(), port, tmp_path / "moto.log")
    try:
        status, headers = _get(f"http://127.0.0.1:{port}/?Action=ListQueues")
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert status < 500
    assert headers.get("Access-Control-Allow-Origin") is None


@pytest.mark.skipif(not _redis_is_up(), reason="Flower needs a Redis on 127.0.0.1:6379, as in make run")
def test_flower_asks_for_a_login_and_answers_no_other_origin(tmp_path):
    port = free_port()
    command = re.sub(r"--port=\d+", f"--port={port}", _procfile("Procfile.dev")["flower"])
    env = {**_dev_env(), "CELERY_EVENTS_BROKER_URL": "redis://127.0.0.1:6379/3"}
    process = _start(command, env, port, tmp_path / "flower.log")
    login = base64.b64encode(env["FLOWER_BASIC_AUTH"].encode()).decode()
    try:
        anonymous = _get(f"http://127.0.0.1:{port}/api/workers")
        logged_in = _get(f"http://127.0.0.1:{port}/api/workers", Authorization=f"Basic {login}")
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert anonymous[0] == 401
    assert logged_in[0] == 200
    assert anonymous[1].get("Access-Control-Allow-Origin") is None
    assert logged_in[1].get("Access-Control-Allow-Origin") is None


def test_production_flower_refuses_to_start_without_a_login():
    command = _procfile("Procfile")["flower"]
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}

    result = subprocess.run(["sh", "-c", f"echo {command}"], env=env, capture_output=True, text=True, timeout=10)

    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr
