"""`make run` is calm: one banner printed last with everything a newcomer needs, the
README's example send matching it, and the local SQS without its per-request log."""

import os
import re
import subprocess
import urllib.request
from pathlib import Path

from django.conf import settings

from harness.ports import free_port, wait_for_port
from project.devstack import EXAMPLE_SEND, WEB, banner

BASE_DIR = Path(settings.BASE_DIR)
DEMO = {"token": "t0k3n", "tenant": "demo", "student_ids": [1, 2, 3],
        "admin": {"username": "dev-admin", "password": "generated-pw"}}


def test_the_banner_has_the_urls_the_token_the_admin_login_and_the_status_url():
    text = banner(DEMO, flower_login="dev:dev-flower-password")

    assert f"{WEB}/api/docs/" in text and f"{WEB}/admin/" in text
    assert "token t0k3n" in text and "TOKEN=t0k3n" in text
    assert "login dev-admin / generated-pw" in text
    assert "http://127.0.0.1:5555   login dev / dev-flower-password" in text
    assert f"{WEB}/api/v1/messages/send-requests/$ID" in text
    # The status URL's id is the one the send answered.
    assert "ID=$(curl -s -X POST" in text and 'print(json.load(sys.stdin)["id"])' in text


def test_without_flower_or_debug_the_banner_says_so():
    text = banner({**{k: v for k, v in DEMO.items() if k != "admin"}}, flower_login=None)

    assert "Flower      not running" in text and "no dev admin" in text


def test_the_readme_shows_the_banners_send_and_takes_the_id_from_the_answer():
    readme = (BASE_DIR / "README.md").read_text()

    assert f"-d '{EXAMPLE_SEND}'" in readme
    assert "send-requests/$ID" in readme
    assert not re.search(r"send-requests/\d", readme)


def _procfile(name: str) -> dict[str, str]:
    lines = (BASE_DIR / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def _sqs_output(tmp_path: Path, **env: str) -> str:
    """The dev stack's local SQS (Procfile.dev's command) after a few requests."""
    port = free_port()
    command = _procfile("Procfile.dev")["sqs"].replace("--port 9324", f"--port {port}")
    log = tmp_path / "sqs.log"
    bin_dir = str(Path(os.sys.executable).parent)
    process = subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=BASE_DIR, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT,
                               env={**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    try:
        wait_for_port(port, timeout=60)
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/?Action=ListQueues", timeout=10) as response:
                response.read()
    finally:
        process.terminate()
        process.wait(timeout=10)
    return log.read_text()


def test_the_local_sqs_logs_no_request_by_default_and_does_when_asked(tmp_path):
    quiet = _sqs_output(tmp_path)
    loud = _sqs_output(tmp_path, SQS_REQUEST_LOG="1")

    assert quiet.strip().splitlines() == [quiet.strip().splitlines()[0]]  # its start-up line only
    assert "local SQS on 127.0.0.1:" in quiet
    assert loud.count("ListQueues") == 3
