"""A real `celery -A project worker` in a subprocess, for tests, benchmarks and drills."""

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.waiting import DEFAULT_TIMEOUT, wait_until

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Worker settings that the process accepting sends reads too: it creates a broadcast's chunks
# with its message rows (messaging/compose/message_rows.py), so a test or benchmark that starts
# its workers with another chunk size must accept its sends with that size as well.
API_SIDE_SETTINGS = ("MESSAGING_CHUNK_SIZE",)


def share_with_this_process(worker_env: Mapping[str, Any], settings: Any) -> None:
    """Set this process's API_SIDE_SETTINGS to a worker's values, so both sides agree. `settings`
    is django.conf.settings, or pytest-django's `settings` fixture (it restores them after the
    test). Called wherever tests and benchmarks start workers (tests/conftest.py start_worker,
    benchmarks/stack.py Stack.worker_env)."""
    for name in API_SIDE_SETTINGS:
        if name in worker_env:
            setattr(settings, name, type(getattr(settings, name))(worker_env[name]))


class WorkerProcess:
    # What the log says once the process is ready to work (subclasses run other commands).
    ready_text = " ready."

    def __init__(self, *, env: dict[str, str], log_path: Path, concurrency: int = 2, name: str = "worker",
                 extra_args: tuple[str, ...] = ()):
        self.env = {**os.environ, **env}
        if self.env.get("PROMETHEUS_MULTIPROC_DIR"):
            # A metrics folder of its own beside the caller's, as each kind of process has in a
            # deployment (docs/metrics.md); the caller's /metrics adds them up (METRICS_SCRAPE_DIRS).
            caller = Path(self.env["PROMETHEUS_MULTIPROC_DIR"])
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(caller.parent / f"worker-{name}-{uuid.uuid4().hex[:8]}")
        self.log_path = log_path
        self.concurrency = concurrency
        self.name = name
        self.extra_args = extra_args
        self._process: subprocess.Popen | None = None
        self._log_offset = 0

    def start(self, timeout: float = 2 * DEFAULT_TIMEOUT) -> "WorkerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child owns it)
        self._process = subprocess.Popen(
            self.command(),
            env=self.env, cwd=PROJECT_DIR, stdout=log, stderr=subprocess.STDOUT,
            # Its own process group, so kill() takes the pool children down with it.
            start_new_session=True,
        )
        self.wait_for_log(self.ready_text, timeout)
        return self

    def command(self) -> list[str]:
        # --quiet: no start-up banner, as in the Procfile. Its "app: project:0x7f…" address can
        # hold a run of digits that the suite's end-of-session log audit reads as a phone number.
        return [sys.executable, "-m", "celery", "-A", "project", "--quiet", "worker", "--loglevel", "INFO",
                "--concurrency", str(self.concurrency), "--hostname", f"{self.name}@%h",
                "--without-gossip", "--without-mingle", *self.extra_args]

    @property
    def pid(self) -> int:
        """The process id, also its process group's (it leads its own session)."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def wait_for_log(self, text: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        def seen() -> bool:
            if text in self.log():
                return True
            if self._process and self._process.poll() is not None:
                raise RuntimeError(f"worker exited ({self._process.returncode}):\n{self.log()[-3000:]}")
            return False

        try:
            wait_until(seen, timeout=timeout, what=f"{text!r} in the worker log")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}:\n{self.log()[-3000:]}") from None

    def wait_for_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        return self._process.wait(timeout=timeout)

    def kill(self) -> None:
        """kill -9 the worker and its pool children: no warm shutdown, nothing acked."""
        if self.alive:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
