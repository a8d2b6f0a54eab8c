"""A process of the Procfile (`web`, `edge`), run here as deployed: a real gunicorn on a free
port, sharing the test database."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from harness.ports import free_port
from tests.conftest import LOG_DIR, database_url

PROJECT_DIR = Path(settings.BASE_DIR)


def procfile_command(process: str) -> str:
    (line,) = [line for line in (PROJECT_DIR / "Procfile").read_text().splitlines() if line.startswith(f"{process}:")]
    return line.removeprefix(f"{process}:").strip()


@pytest.fixture
def procfile_gunicorn(transactional_db):
    """start(process, bind_variable, env) runs that Procfile process with one worker on a free
    port and returns its base URL and a function returning everything it has written so far
    (stdout and stderr). Stopped at the end of the test."""
    started = []

    def start(process: str, bind_variable: str, env: dict[str, str] | None = None):
        port = free_port()
        log_path = LOG_DIR / f"{process}-gunicorn.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DATABASE_URL": database_url(),
                    bind_variable: f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1", "EDGE_CONCURRENCY": "1",
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **(env or {})}
        with open(log_path, "wb") as log:
            process_ = subprocess.Popen(["bash", "-c", f"exec {procfile_command(process)}"], cwd=PROJECT_DIR,
                                        env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(process_)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v1/credits", timeout=2)
                break
            except httpx.TransportError:
                if process_.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.2)
        return url, log_path.read_text

    yield start
    for process_ in started:
        os.killpg(process_.pid, signal.SIGTERM)
        process_.wait(timeout=30)
