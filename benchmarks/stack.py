"""The stack every benchmark and drill runs on, set up once per run (one process):

- a fresh PostgreSQL database (`bench_<name>_<run>`, dropped at the end), or a temporary
  SQLite file when PostgreSQL is unreachable (said in the output and the JSON);
- the migrations, applied to it;
- the local SQS (harness.sqs.LocalSQS: moto in a subprocess, stoppable, counting requests
  by SQS operation at the server) and the Solapi sandbox on loopback;
- `celery -A project worker` subprocesses (harness.worker.WorkerProcess) on a queue name
  of this run's own;
- helpers to seed academies quickly, send through the real service
  (messaging.compose.send_requests.send_request_create) and wait for settlement.

Django is configured from the environment, so `Stack.start()` sets the environment first and
then calls django.setup(): one Stack per process. Model imports therefore live inside the
functions here, not at the top of the module.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.ports import free_port
from harness.sqs import LocalSQS
from harness.worker import API_SIDE_SETTINGS, WorkerProcess, share_with_this_process

if TYPE_CHECKING:
    from harness.academies import Academy

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = PROJECT_DIR / "benchmarks" / "results"
LOG_ROOT = PROJECT_DIR / "var" / "bench-logs"

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
# 9 bytes in EUC-KR plus the name: an SMS (13 credits).
BODY = "#{이름} 학생 학부모님, 내일 휴원입니다."

# Worker settings for benchmarks (the drills override some). Each is read by project/settings.py.
WORKER_ENV = {
    "LOG_LEVEL": "INFO",
    # Short long-polls: an idle queue answers every 2 s instead of every 20 s. A message that
    # arrives during a poll is returned at once either way.
    "MESSAGING_SQS_WAIT_SECONDS": "2",
}

_started: Stack | None = None


class Stack:
    def __init__(self, name: str, *, sandbox_latency_ms: float = 50.0, keep_db: bool = False,
                 env: dict[str, str] | None = None):
        self.name = name
        self.run_id = f"{time.strftime('%m%d%H%M%S')}{uuid.uuid4().hex[:4]}"
        self.sandbox_latency_ms = sandbox_latency_ms
        self.keep_db = keep_db
        self.extra_env = env or {}
        self.log_dir = LOG_ROOT / f"{name}-{self.run_id}"
        self.queue_name = f"bench-{self.run_id}"
        self.sqs: LocalSQS | None = None
        self.sandbox = None
        self.database_url = ""
        self.database_note = ""
        self.vendor = ""
        self._db_name = ""
        self._sqlite_dir: str | None = None
        self._workers: list[WorkerProcess] = []
        self._worker_count = 0
        self._processes: list[ProcfileProcess] = []
        self._queue_urls: dict[str, str] = {}
        self._sqs_client = None
        self._api_side_at_start: dict[str, Any] = {}

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> Stack:
        global _started
        if _started is not None:
            raise RuntimeError("one Stack per process: Django reads its settings once")
        _started = self
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._create_database()
        sqs_port, sandbox_port = free_port(), free_port()
        os.environ.update({
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": f"sqs://bench:bench@127.0.0.1:{sqs_port}",
            "SOLAPI_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
            "MESSAGING_SQS_QUEUE_NAME": self.queue_name,
            # Infrastructure-made queues and Flower events belong to real deployments.
            "SQS_QUEUE_URL": "", "SQS_INTERACTIVE_QUEUE_URL": "", "CELERY_EVENTS_BROKER_URL": "",
            # Benchmarks measure the API, not its rate limits.
            "API_THROTTLE_TOKEN_RATE": "1000000/minute", "API_THROTTLE_ACADEMY_RATE": "1000000/minute",
            "MESSAGING_DAILY_MESSAGE_LIMIT": "100000000",
            **WORKER_ENV,
            **self.extra_env,
            # This process (the "web" side, the drill's bookkeeping) logs warnings only;
            # workers get LOG_LEVEL from worker_env().
            "LOG_LEVEL": "WARNING",
        })
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        self._api_side_at_start = {name: getattr(settings, name) for name in API_SIDE_SETTINGS}
        self.sqs = LocalSQS(port=sqs_port, log_path=self.log_dir / "sqs.log").start()
        from harness.academies import SENDER, set_platform_prices
        from harness.solapi_sandbox import SolapiSandbox

        self.sandbox = SolapiSandbox(api_key=settings.SOLAPI_API_KEY, api_secret=settings.SOLAPI_API_SECRET,
                                     senders=[SENDER], port=sandbox_port, latency_ms=self.sandbox_latency_ms)
        self.sandbox.start()
        set_platform_prices()
        return self

    def close(self) -> None:
        for process in self._processes:
            with contextlib.suppress(Exception):
                process.stop()
        for worker in self._workers:
            with contextlib.suppress(Exception):
                worker.stop(timeout=15)
        if self.sandbox is not None:
            with contextlib.suppress(Exception):
                self.sandbox.stop()
        if self.sqs is not None:
            with contextlib.suppress(Exception):
                self.sqs.up()
            self.sqs.stop()
        from django.db import connections

        connections.close_all()
        if self._db_name and not self.keep_db:
            with contextlib.suppress(Exception), _pg_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{self._db_name}" WITH (FORCE)')
        if self._sqlite_dir and not self.keep_db:
            shutil.rmtree(self._sqlite_dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def database_name(self) -> str:
        """This run's PostgreSQL database ("" on the SQLite fallback)."""
        return self._db_name

    def describe(self) -> str:
        return (f"database: {self.database_note}; local SQS 127.0.0.1:{self.sqs.port} (moto {_version('moto')}); "
                f"Solapi sandbox {self.sandbox.url} with {self.sandbox_latency_ms:.0f} ms per HTTP call; "
                f"queues {self.queue_name}[-interactive]; logs {self.log_dir.relative_to(PROJECT_DIR)}")

    def _create_database(self) -> None:
        try:
            with _pg_admin() as admin:
                self._db_name = f"bench_{self.name}_{self.run_id}".lower()
                admin.execute(f'CREATE DATABASE "{self._db_name}"')
                version = admin.execute("SHOW server_version").fetchone()[0]
        except Exception as error:  # unreachable, refused, no psycopg: fall back, and say so
            self._db_name = ""
            self._sqlite_dir = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
            self.database_url = f"sqlite:///{self._sqlite_dir}/bench.sqlite3"
            self.vendor = "sqlite"
            self.database_note = (f"SQLITE FALLBACK ({self.database_url}): PostgreSQL at {PG['host']}:{PG['port']} "
                                  f"unreachable ({type(error).__name__}); numbers are not comparable")
            print(f"!! {self.database_note}", flush=True)
            return
        self.database_url = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{self._db_name}"
        self.vendor = "postgresql"
        self.database_note = f"PostgreSQL {version}, fresh database {self._db_name}"

    # --- workers ------------------------------------------------------------------------------

    def worker_env(self, **overrides: Any) -> dict[str, str]:
        """The environment of a worker subprocess: this run's settings plus `overrides`. This
        process, which accepts the sends, takes the values it reads too (the chunk size:
        harness.worker.API_SIDE_SETTINGS; its own at start where there is no override), so the
        workers started last and the API agree."""
        from django.conf import settings

        share_with_this_process({**self._api_side_at_start, **overrides}, settings)
        return {**WORKER_ENV, **self.extra_env, **{k: str(v) for k, v in overrides.items()}}

    def start_worker(self, name: str = "worker", *, concurrency: int = 2, env: dict[str, Any] | None = None,
                     queues: Sequence[str] = (), timeout: float = 90.0) -> WorkerProcess:
        """Start `celery -A project worker` and wait for it to be ready."""
        self._worker_count += 1
        extra = ("-Q", ",".join(queues)) if queues else ()
        worker = WorkerProcess(env=self.worker_env(**(env or {})), log_path=self.log_dir / f"{name}.log",
                               concurrency=concurrency, name=f"{name}{self._worker_count}", extra_args=extra)
        self._workers.append(worker)
        return worker.start(timeout=timeout)

    def stop_workers(self) -> None:
        for worker in self._workers:
            worker.stop(timeout=20)
        self._workers = [w for w in self._workers if w.alive]

    def start_procfile(self, process: str, *, ready_text: str, env: dict[str, Any] | None = None,
                       replace: dict[str, str] | None = None, timeout: float = 60.0) -> ProcfileProcess:
        """Start a process type of the Procfile (`web`, `beat` …) as deployed, with this run's
        environment plus `env`; `replace` rewrites parts of its command (e.g. a path under var/).
        Returns once its log shows `ready_text`."""
        command = procfile_command(process)
        for old, new in (replace or {}).items():
            command = command.replace(old, new)
        started = ProcfileProcess(process, command, env=self.worker_env(**(env or {})),
                                  log_path=self.log_dir / f"{process}.log", ready_text=ready_text)
        self._processes.append(started)
        return started.start(timeout=timeout)

    # --- SQS ------------------------------------------------------------------------------------

    def queue_depths(self, client=None) -> dict[str, int]:
        """Messages on each of this run's queues: visible + in flight + delayed (2 SQS calls per
        queue the first time, 1 after: the URLs are cached)."""
        from messaging.pipeline.queues import ALL_QUEUES

        client = client or self._depth_client()
        depths = {}
        for name in ALL_QUEUES:
            url = self._queue_urls.get(name)
            if url is None:
                try:
                    url = self._queue_urls[name] = client.get_queue_url(QueueName=name)["QueueUrl"]
                except client.exceptions.QueueDoesNotExist:
                    depths[name] = 0
                    continue
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            depths[name] = sum(int(v) for v in attributes.values())
        return depths

    def _depth_client(self):
        if self._sqs_client is None:
            self._sqs_client = self.sqs.client()
        return self._sqs_client

    def boto3_sqs(self):
        return self.sqs.client()

    def purge_queues(self) -> None:
        """Drop every message on this run's Celery queues (tasks nobody is meant to run)."""
        from messaging.pipeline.queues import ALL_QUEUES

        self.sqs.drain(*ALL_QUEUES)

    @contextlib.contextmanager
    def sqs_window(self):
        """Count the SQS requests (by operation) made inside the block, by every client."""
        counts: Counter = Counter()
        self.sqs.reset_counts()
        try:
            yield counts
        finally:
            counts.update(self.sqs.request_counts())


def production_env() -> dict[str, str]:
    """DEBUG off, as in production: Django then stops recording every SQL query. DEBUG off needs
    every secret set; these are the dev values the sandbox expects."""
    from django.conf import settings

    return {"DEBUG": "0", "DJANGO_SECRET_KEY": "benchmark-only-secret-key-0123456789-abcdefghij",
            "SOLAPI_API_KEY": settings.SOLAPI_API_KEY, "SOLAPI_API_SECRET": settings.SOLAPI_API_SECRET,
            "SOLAPI_WEBHOOK_SECRET": "benchmark-webhook-secret-0123456789-abcdefghij"}


# --- academies, sends, settlement ---------------------------------------------------------------


def seed_academy(slug: str, students: int, *, credit: str | Decimal = "100000000", phone_offset: int = 0) -> Academy:
    """An academy (harness/academies.py) with `students` students, their parents' phones
    010 + (phone_offset + n) so each benchmark keeps its own range, and plenty of credit.
    Imported here, not at the top: Django is set up by Stack.start()."""
    from harness.academies import make_academy

    return make_academy(slug, students=students, credit=credit, phone_base=phone_offset)


@dataclass
class Sent:
    id: int
    seconds: float
    response: dict = field(default_factory=dict)

    @property
    def dispatched(self) -> bool:
        return bool(self.response.get("dispatched"))


def send(academy: Academy, recipients: int | None = None, *, body: str = BODY) -> Sent:
    """Accept a plain SMS send to the first `recipients` students' parents through the service the
    API calls (validate, persist, publish one task). Returns its id and how long the call took."""
    from messaging.compose.send_requests import SendInput, send_request_create

    ids = academy.student_ids if recipients is None else academy.student_ids[:recipients]
    data = SendInput(student_ids=ids, send_to="parent", message_mode="sms", body=body)
    started = time.perf_counter()
    response = send_request_create(tenant=academy.tenant, user=academy.user, data=data, idempotency_key=None)
    return Sent(id=response["id"], seconds=time.perf_counter() - started, response=response)


IN_FLIGHT = ("pending", "held", "sending")


def is_settled(send_request_ids: Iterable[int]) -> bool:
    """Every chunk finalized and no message in flight (what tests/pipeline/conftest.settled checks)."""
    from messaging.models import Chunk, ChunkStatus, Message

    ids = list(send_request_ids)
    if Message.objects.filter(send_request_id__in=ids, status__in=IN_FLIGHT).exists():
        return False
    chunks = Chunk.objects.filter(send_request_id__in=ids)
    chunked = set(chunks.values_list("send_request_id", flat=True).distinct())
    return chunked == set(ids) and not chunks.exclude(status=ChunkStatus.FINALIZED).exists()


def wait_settled(send_request_ids: Iterable[int], *, timeout: float, poll: float = 0.1,
                 tick: Callable[[], None] | None = None, tick_every: float = 5.0) -> float:
    """Wait until settled; returns the seconds waited. `tick` runs every `tick_every` seconds
    (drills call beat's recovery tasks there)."""
    ids = list(send_request_ids)
    started = last_tick = time.monotonic()
    while not is_settled(ids):
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"send requests {ids} not settled after {timeout:.0f}s: {status_counts(ids)}")
        if tick and now - last_tick >= tick_every:
            tick()
            last_tick = now
        time.sleep(poll)
    return time.monotonic() - started


def status_counts(send_request_ids: Iterable[int]) -> dict[str, int]:
    from django.db.models import Count

    from messaging.models import Message

    rows = (Message.objects.filter(send_request_id__in=list(send_request_ids)).values("status")
            .annotate(n=Count("id")).order_by("status"))
    return {row["status"]: row["n"] for row in rows}


# What depth samplers and the web processes' health refreshers ask SQS; the pipeline and the API
# (publish, receive, delete) never do, beyond a GetQueueUrl per process for its first publish.
MONITORING_OPERATIONS = ("GetQueueAttributes", "GetQueueUrl")


def exactly_once(stack: Stack, send_request_ids: Iterable[int]) -> dict[str, Any]:
    """Each message our books say went out was accepted by the sandbox once, none twice, and
    billing_audit finds nothing."""
    from billing.audit import audit
    from messaging.models import Message

    per_id = stack.sandbox.sends_per_message_id()
    sent = set(Message.objects.filter(send_request_id__in=list(send_request_ids), status__in=("accepted", "delivered"))
               .values_list("id", flat=True))
    problems = audit()
    result = {"sent": len(sent), "accepted_more_than_once": sum(1 for m in sent if per_id.get(str(m), 0) > 1),
              "sent_not_at_sandbox": sum(1 for m in sent if str(m) not in per_id),
              "billing_audit": problems[:20], "billing_audit_clean": not problems}
    result["clean"] = not (result["accepted_more_than_once"] or result["sent_not_at_sandbox"] or problems)
    return result


def sandbox_calls(stack: Stack) -> int:
    """Every HTTP request the Solapi sandbox has answered so far (all operations, all statuses)."""
    return sum(sum(by_status.values()) for by_status in stack.sandbox.request_counts().values())


# --- Procfile processes, CPU -----------------------------------------------------------------------


def procfile_command(process: str) -> str:
    """The command of one process type in the Procfile (the deployed one, not Procfile.dev)."""
    for line in (PROJECT_DIR / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise KeyError(f"no {process!r} in the Procfile")


class ProcfileProcess(WorkerProcess):
    """A Procfile command run by `sh -c` in its own process group (so stop() reaches its children),
    with this virtualenv's executables first on PATH, logging to a file; started once its log
    shows `ready_text` (gunicorn's "Listening at:", beat's "beat: Starting...")."""

    def __init__(self, name: str, command: str, *, env: dict[str, str], log_path: Path, ready_text: str):
        super().__init__(env={**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
                         log_path=log_path, name=name)
        self.shell_command, self.ready_text = command, ready_text

    def command(self) -> list[str]:
        # `exec env`: the command may start with variable assignments (`VAR=value celery …`, as a
        # Procfile allows), which `exec` alone refuses; env then becomes the command, same pid.
        return ["sh", "-c", f"exec env {self.shell_command}"]


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds_by_group(groups: dict[str, int], *, pids: dict[str, int] | None = None,
                         commands: Sequence[str] = ()) -> dict[str, float]:
    """CPU seconds (user + system) used so far by every process in each process group
    (`{label: pgid}`), by single processes (`{label: pid}`), and by all processes whose command
    name is in `commands` (e.g. "postgres": the whole server, whoever its clients are), with the
    time of their children that exited (a server's finished backends, reaped by its postmaster:
    without it, a backend that exits between two readings takes its time away, and the difference
    can go below zero). Read from /proc; empty where /proc is absent. For groups and single
    processes, processes that already exited are not counted."""
    pids = pids or {}
    totals = {label: 0.0 for label in [*groups, *pids, *commands]}
    by_pgid = {pgid: label for label, pgid in groups.items()}
    by_pid = {pid: label for label, pid in pids.items()}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        command = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is state (field 3): pgrp is field 5, utime 14, stime 15.
        pgrp, seconds = int(fields[2]), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        if pgrp in by_pgid:
            totals[by_pgid[pgrp]] += seconds
        if int(entry.name) in by_pid:
            totals[by_pid[int(entry.name)]] += seconds
        if command in commands:
            # cutime, cstime (fields 16, 17): its children's time, once reaped.
            totals[command] += seconds + (int(fields[13]) + int(fields[14])) / _CLOCK_TICKS
    return totals


def database_backends_cpu_seconds(database: str) -> float:
    """CPU seconds (user + system) of the PostgreSQL backends now connected to `database` (their
    command line names it): this run's share of the server, without other databases' clients on
    a shared machine or the server's own background processes. A backend that exited is not
    counted; 0 where /proc is absent or the run has no PostgreSQL database."""
    total = 0.0
    for entry in Path("/proc").iterdir() if database and Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        if command.startswith("postgres: ") and f" {database} " in command:
            fields = raw[raw.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return total


def machine_busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process: other users' too),
    from /proc/stat; NaN where /proc is absent."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return float("nan")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / _CLOCK_TICKS  # guest time is already counted in user


# --- numbers, tables, results ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (readable in a terminal, pasteable into docs)."""
    rows = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = [f"### {title}", "",
             "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if abs(value) < 0.1 else f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def machine() -> dict[str, Any]:
    """The machine, for the JSON and docs/benchmarks.md."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        info["cpu_model"] = model.group(1).strip() if model else ""
    with contextlib.suppress(OSError):
        meminfo = Path("/proc/meminfo").read_text()
        total = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
        info["memory_gib"] = round(int(total.group(1)) / 1024 / 1024, 1) if total else None
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    with contextlib.suppress(Exception):
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                info["postgresql"] = cursor.fetchone()[0]
    for package in ("django", "celery", "kombu", "moto", "boto3", "solapi", "httpx"):
        info[package] = _version(package)
    return info


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


@contextlib.contextmanager
def _pg_admin():
    import psycopg

    with psycopg.connect(dbname="postgres", connect_timeout=3, autocommit=True, **PG) as conn:
        yield conn


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def banner(text: str) -> None:
    print(f"\n== {text}", flush=True)
