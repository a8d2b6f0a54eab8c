"""The everyday load (issue 18): many small sends from many staff at once, over real HTTP.

The stack is the deployed one on loopback: the Procfile's `web` command (gunicorn, its worker
count and threads) and its `edge` command (the report webhook and /healthz, as a load balancer
routes them) on free ports, one `celery worker --concurrency 2`, `celery beat`, the local SQS and
the Solapi sandbox (50 ms per call, its report webhook pointed at the edge), on PostgreSQL (SQLite,
said loudly, when PostgreSQL is unreachable). Four academies with 200 students each.

Clients are threads, each with its own httpx connection and seeded random generator:

- phase "everyday" (20 clients, 2 minutes): preview -> send (1-20 random students' parents)
  -> status -> credits, in a loop, at a staff member's pace: together the clients start
  EVERYDAY_LOOPS_PER_S loops a second (each client waits its share, jittered, between loops; a
  loop that overruns its turn is followed at once). That is 12 send requests a second, 720 a
  minute: above issue 18's "hundreds of small sends a minute" and its 10 a second to keep up with;
- phase "no think time" (20 clients, 1 minute): the same loop with no wait between loops. The
  clients then keep both cores busy whatever a request costs, so its latency measures the
  machine's capacity (Little's law: a loop takes clients ÷ loops per second), printed for the
  record beside the everyday phase's (docs/benchmarks.md, "Everyday load");
- phase "burst" (50 clients, 1 minute): sends only, no think time.

In both, a few percent of sends are replays of an earlier Idempotency-Key with the same body
(the answer must be identical) and a few percent are invalid bodies (the answer must be a 4xx
with a `code`). Meanwhile /healthz is fetched from the edge every second (with the health token;
when one takes longer, the next as soon as it answered) and the SQS queue depths are sampled every
second. After the load stops, the run waits until every message is final (out of
pending/held/sending, every chunk finalized), every report delivered, and every report batch
applied (the worker applies reports after sends under a burst: messaging/reports/inbox.py).

Printed: per endpoint requests/s, p50/p95/p99 and errors by status; the largest backlog; the drain
time; each message's time from its request to final; Solapi calls per message (counted at the
sandbox); SQS calls per send request (counted at the local SQS; GetQueueAttributes and
GetQueueUrl, the depth sampler's and the health refreshers' calls, taken out); how long each
report webhook POST kept the sandbox waiting and when the last report was applied; the CPU
used by gunicorn (web and edge), the worker, beat, the local SQS and PostgreSQL; the integrity
checks; and issue 18's targets, met or missed. The client threads, the sandbox and this
bookkeeping share one Python process: under 50 clients its GIL adds some latency to what the
clients measure (its CPU is printed too).

    python -m benchmarks.load [--quick] [--clients 20] [--seconds 120] [--pace 12]
                              [--no-think-seconds 60] [--burst-clients 50] [--burst-seconds 60]
                              [--drain-timeout 1200] [--seed 18]
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks import readme_table
from benchmarks.goals import Goal
from benchmarks.stack import (
    BODY,
    IN_FLIGHT,
    MONITORING_OPERATIONS,
    Stack,
    banner,
    cpu_seconds_by_group,
    is_settled,
    loadavg,
    machine,
    machine_busy_cpu_seconds,
    percentile,
    production_env,
    sandbox_calls,
    seed_academy,
    table,
    write_json,
)
from harness.ports import free_port
from harness.waiting import wait_until

ACADEMIES = 4
STUDENTS = 200
MAX_RECIPIENTS = 20
REPLAY_RATE = 0.03
INVALID_RATE = 0.03
HEALTH_TOKEN = "benchmark-health-token"
SAMPLE_EVERY = 1.0
# Invalid bodies a staff client really sends: nothing chosen, an unknown mode, no text, not JSON.
INVALID_BODIES = (
    {"student_ids": [], "send_to": "parent", "message_mode": "sms", "body": BODY},
    {"student_ids": [1], "send_to": "parent", "message_mode": "fax", "body": BODY},
    {"student_ids": [1], "send_to": "parent", "message_mode": "sms", "body": ""},
    "{not json",
)
# Issue 18's "Done when" targets.
TARGET_SEND_RATE = 10.0
TARGET_FINAL_P95_S = 30.0
TARGET_DRAIN_S = 60.0
TARGET_SEND_P95_MS = 300.0
TARGET_WEBHOOK_MAX_S = 1.0
TARGET_HEALTHZ_P95_MS = 100.0
# SQS calls per small send request, end to end (issue 18: 3 or fewer).
TARGET_SQS_PER_SEND = 3.0
# The everyday phase's pace: loops (preview, send, status, credits) started a second by all its
# clients together. Above TARGET_SEND_RATE, so the pipeline's target is tested at this pace.
EVERYDAY_LOOPS_PER_S = 12.0


@dataclass(frozen=True)
class Phase:
    name: str
    clients: int
    seconds: float
    everyday: bool  # the whole loop (preview, send, status, credits) or sends only
    loops_per_second: float = 0.0  # all clients together; 0: no wait between loops

    @property
    def seconds_between_loops(self) -> float:
        """Each client's mean time from one loop's start to the next's (0: no wait)."""
        return self.clients / self.loops_per_second if self.loops_per_second else 0.0

    def describe(self) -> str:
        what = "preview → send → status → credits" if self.everyday else "sending"
        pace = (f"{self.loops_per_second:g} loops/s in all" if self.loops_per_second else "no think time")
        return f"{self.name}: {self.clients} clients {what}, {pace}, for {self.seconds:.0f} s"


@dataclass
class Recorder:
    """What the clients and samplers saw, shared between threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[tuple[str, str, float, float, str]] = field(default_factory=list)  # phase, endpoint, at, s, status
    sends: list[tuple[int, float]] = field(default_factory=list)  # send request id, wall clock of the request
    replays: list[dict] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)
    depths: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    depth_sqs_calls: int = 0

    def call(self, phase: str, endpoint: str, at: float, seconds: float, status: str) -> None:
        with self.lock:
            self.calls.append((phase, endpoint, at, seconds, status))


class LoadClient(threading.Thread):
    """One member of staff at one academy, looping until `stop_at`."""

    def __init__(self, number: int, base_url: str, academy, phase: Phase, stop_at: float, recorder: Recorder,
                 seed: int):
        super().__init__(name=f"load-{phase.name}-{number}", daemon=True)
        self.academy, self.phase, self.stop_at, self.recorder = academy, phase, stop_at, recorder
        self.rng = random.Random(seed)
        self.http = httpx.Client(base_url=base_url, timeout=60.0,
                                 headers={"Authorization": f"Token {academy.token}"})
        self.sent: list[tuple[str, dict, int, Any]] = []  # key, body, status, answer

    def run(self) -> None:
        period = self.phase.seconds_between_loops
        try:
            # Paced clients start at a random point of their first turn, so they do not arrive together.
            next_start = time.monotonic() + (self.rng.uniform(0, period) if period else 0.0)
            while self._wait_until(next_start):
                began = time.monotonic()
                self.iteration()
                # Jittered ±50 % around the mean; a loop that overran its turn is followed at once.
                next_start = began + period * self.rng.uniform(0.5, 1.5) if period else 0.0
        finally:
            self.http.close()

    def _wait_until(self, at: float) -> bool:
        """Wait for this client's next turn; False once the phase is over."""
        now = time.monotonic()
        if at > now:
            time.sleep(max(0.0, min(at, self.stop_at) - now))  # a member of staff between two sends
        return time.monotonic() < self.stop_at

    def iteration(self) -> None:
        draw = self.rng.random()
        if draw < INVALID_RATE:
            self.invalid_send()
            return
        if draw < INVALID_RATE + REPLAY_RATE and self.sent:
            self.replay()
            return
        body = self.body()
        if self.phase.everyday:
            self.request("preview", "POST", "/api/v1/messages/preview", json=body)
        key = uuid.uuid4().hex
        status, answer = self.request("send", "POST", "/api/v1/messages/send", json=body,
                                      headers={"Idempotency-Key": key})
        if status == 202:
            self.sent.append((key, body, status, answer))
            with self.recorder.lock:
                self.recorder.sends.append((answer["id"], time.time()))
            if self.phase.everyday:
                self.request("status", "GET", answer["status_url"])
        if self.phase.everyday:
            self.request("credits", "GET", "/api/v1/credits")

    def body(self) -> dict:
        students = self.rng.sample(self.academy.student_ids, self.rng.randint(1, MAX_RECIPIENTS))
        return {"student_ids": students, "send_to": "parent", "message_mode": "sms", "purpose": "info",
                "body": BODY}

    def replay(self) -> None:
        key, body, status, answer = self.rng.choice(self.sent)
        again_status, again = self.request("send (replay)", "POST", "/api/v1/messages/send", json=body,
                                           headers={"Idempotency-Key": key})
        with self.recorder.lock:
            self.recorder.replays.append({"key": key, "identical": (again_status, again) == (status, answer),
                                          "status": again_status, "first_status": status})

    def invalid_send(self) -> None:
        body = self.rng.choice(INVALID_BODIES)
        kwargs = {"content": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, str) \
            else {"json": body}
        status, answer = self.request("send (invalid)", "POST", "/api/v1/messages/send", **kwargs)
        has_code = isinstance(answer, dict) and bool(answer.get("code"))
        with self.recorder.lock:
            self.recorder.invalid.append({"status": status, "code": answer.get("code") if has_code else None,
                                          "ok": isinstance(status, int) and 400 <= status < 500 and has_code})

    def request(self, endpoint: str, method: str, url: str, **kwargs) -> tuple[int | str, Any]:
        at = time.monotonic()
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.recorder.call(self.phase.name, endpoint, at, time.monotonic() - at, type(error).__name__)
            return type(error).__name__, None
        seconds = time.monotonic() - at
        self.recorder.call(self.phase.name, endpoint, at, seconds, str(response.status_code))
        try:
            answer = response.json()
        except ValueError:
            answer = response.text[:200]
        return response.status_code, answer


class Sampler(threading.Thread):
    """Runs `sample()` every SAMPLE_EVERY seconds until stopped."""

    def __init__(self, name: str, sample):
        super().__init__(name=name, daemon=True)
        self.sample, self.stopping = sample, threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                self.sample()
            except Exception as error:  # a sampler reports, it does not stop the run
                print(f"  {self.name}: {type(error).__name__}: {error}", flush=True)
            self.stopping.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - began)))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def phases(args) -> list[Phase]:
    seconds, no_think, burst = ((15.0, 10.0, 10.0) if args.quick
                                else (args.seconds, args.no_think_seconds, args.burst_seconds))
    plan = [Phase("everyday", args.clients, seconds, everyday=True, loops_per_second=args.pace),
            Phase("no think time", args.clients, no_think, everyday=True),
            Phase("burst", args.burst_clients, burst, everyday=False)]
    return [phase for phase in plan if phase.seconds > 0]


def run(stack: Stack, plan: list[Phase], *, drain_timeout: float, seed: int, load_at_start: str = "") -> dict[str, Any]:
    from django.db import connection

    banner("everyday load: " + "; then ".join(p.describe() for p in plan))
    academies = [seed_academy(f"load{i}", STUDENTS, phone_offset=30_000_000 + i * 10_000) for i in range(ACADEMIES)]
    web_port, edge_port = free_port(), free_port()
    base, edge_base = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{edge_port}"
    # As deployed: DEBUG off (with it on, Django records every SQL statement of every request and
    # task). TLS ends at the load balancer, which says so in X-Forwarded-Proto; nothing on
    # loopback does, so the redirect to https is off.
    deployed = {**production_env(), "SECURE_SSL_REDIRECT": "0"}
    web = stack.start_procfile("web", env={"WEB_BIND": f"127.0.0.1:{web_port}", **deployed},
                               ready_text="Listening at:")
    edge = stack.start_procfile("edge", env={"EDGE_BIND": f"127.0.0.1:{edge_port}", **deployed},
                                ready_text="Listening at:")
    worker = stack.start_worker("worker", concurrency=2, env=deployed)
    beat = stack.start_procfile("beat", ready_text="beat: Starting...", env=deployed,
                                replace={"var/celerybeat-schedule": str(stack.log_dir / "celerybeat-schedule")})
    stack.sandbox.set_webhook_url(f"{edge_base}/api/v1/solapi/reports/{deployed['SOLAPI_WEBHOOK_SECRET']}/")
    web_workers = os.environ.get("WEB_CONCURRENCY") or "2 (the Procfile's default)"
    web_threads = os.environ.get("WEB_THREADS") or "gunicorn.conf.py's default"
    print(f"  gunicorn web {base} (workers: {web_workers}, threads: {web_threads}, DEBUG off); edge {edge_base}; "
          f"worker --concurrency 2; beat; load average {loadavg()}", flush=True)

    recorder = Recorder()
    health = httpx.Client(base_url=edge_base, timeout=30.0, headers={"X-Health-Token": HEALTH_TOKEN})
    # The edge answers from a snapshot its background thread takes: 503 until the first one.
    wait_until(lambda: health.get("/healthz").status_code == 200, what="the edge's first health snapshot")
    depth_client = stack.sqs.client()
    stack.queue_depths(depth_client)  # queue URLs cached: one call per queue per sample from here on

    def sample_health() -> None:
        at = time.monotonic()
        try:
            status = str(health.get("/healthz").status_code)
        except httpx.HTTPError as error:
            status = type(error).__name__
        recorder.call("during load", "healthz", at, time.monotonic() - at, status)

    def sample_depths() -> None:
        depths = stack.queue_depths(depth_client)
        with recorder.lock:
            recorder.depths.append((time.time(), depths))
            recorder.depth_sqs_calls += len(depths)

    groups = {"gunicorn (web)": web.pid, "gunicorn (edge)": edge.pid, "celery worker": worker.pid,
              "celery beat": beat.pid}
    pids = {"local SQS (moto)": stack.sqs.pid, "this process (clients, sandbox)": os.getpid()}

    def cpu() -> dict[str, float]:
        return {**cpu_seconds_by_group(groups, pids=pids, commands=("postgres",)),
                "whole machine (every process, other agents' too)": machine_busy_cpu_seconds()}

    sessions_before = _pg_sessions(connection)
    accepted_before, calls_before = stack.sandbox.accepted_total, sandbox_calls(stack)
    samplers = [Sampler("healthz", sample_health), Sampler("depths", sample_depths)]
    with stack.sqs_window() as sqs:
        cpu_start, load_began, wall_began = cpu(), time.monotonic(), time.time()
        for sampler in samplers:
            sampler.start()
        phase_times = {}
        for phase in plan:
            began = time.monotonic()
            stop_at = began + phase.seconds
            clients = [LoadClient(n, base, academies[n % ACADEMIES], phase, stop_at, recorder,
                                  seed * 1000 + len(phase_times) * 100 + n) for n in range(phase.clients)]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            phase_times[phase.name] = (began, time.monotonic())
            print(f"  {phase.name}: {sum(1 for c in recorder.calls if c[0] == phase.name and c[1] == 'send')} "
                  f"sends in {time.monotonic() - began:.0f} s; queues {stack.queue_depths(depth_client)}; "
                  f"load {loadavg()}", flush=True)
        load_ended, wall_ended, cpu_load_end = time.monotonic(), time.time(), cpu()
        ids = [send_id for send_id, _ in recorder.sends]
        drained = _wait_drained(ids, timeout=drain_timeout)
        drain_seconds = time.monotonic() - load_ended
        cpu_end = cpu()
        for sampler in samplers:
            sampler.stop()
    reports_done = stack.sandbox.wait_for_reports(timeout=120)
    reports_applied = _wait_reports_applied(timeout=300)
    reports_applied_after = time.monotonic() - load_ended
    health.close()
    sessions_after = _pg_sessions(connection)
    result = {
        "name": "load", "database": stack.database_note, "loadavg_at_start": load_at_start or loadavg(),
        "phases": [p.__dict__ for p in plan], "seed": seed,
        "pace": next((p.loops_per_second for p in plan if p.name == "everyday"), 0.0),
        "web": {"command": web.shell_command, "workers": web_workers, "threads": web_threads,
                "edge": edge.shell_command}, "sandbox_latency_ms": stack.sandbox_latency_ms,
        "endpoints": _endpoint_stats(recorder, phase_times, load_began, load_ended, drain_seconds),
        "backlog": _backlog(recorder),
        "drain": {"drained": drained, "seconds": drain_seconds, "timeout": drain_timeout,
                  "still_in_flight": 0 if drained else _in_flight_count()},
        "messages": _message_times(ids, wall_ended),
        "solapi": {"calls": sandbox_calls(stack) - calls_before,
                   "accepted": stack.sandbox.accepted_total - accepted_before},
        "sqs": _sqs_costs(sqs, len(ids)),
        "webhook": {**_webhook(stack, reports_done), "all_applied": reports_applied,
                    "applied_after_load_s": reports_applied_after},
        "cpu": _cpu(cpu_start, cpu_load_end, cpu_end, load_ended - load_began, drain_seconds),
        "postgresql_sessions": (sessions_after - sessions_before) if sessions_before is not None else None,
        "integrity": _integrity(stack, recorder, ids),
        "send_requests": len(ids), "load_seconds": load_ended - load_began, "wall_clock_start": wall_began,
    }
    result["solapi"]["calls_per_message"] = (result["solapi"]["calls"] / result["solapi"]["accepted"]
                                             if result["solapi"]["accepted"] else float("nan"))
    result["targets"] = _targets(result)
    return result


def _wait_reports_applied(*, timeout: float) -> bool:
    """Wait until the webhook's stored batches are all applied: the worker gives sends the way
    under a burst (messaging/reports/inbox.py), so the reports' bookkeeping may follow later."""
    from messaging.models import ReceivedReportBatch

    began = time.monotonic()
    while ReceivedReportBatch.objects.filter(applied__isnull=True).exists():
        if time.monotonic() - began > timeout:
            return False
        time.sleep(0.5)
    return True


def _wait_drained(ids: list[int], *, timeout: float) -> bool:
    began = last_print = time.monotonic()
    while not is_settled(ids):
        if time.monotonic() - began > timeout:
            return False
        if time.monotonic() - last_print >= 30:
            print(f"  draining: {_in_flight_count()} messages in flight after {time.monotonic() - began:.0f} s",
                  flush=True)
            last_print = time.monotonic()
        time.sleep(0.5)
    return True


def _in_flight_count() -> int:
    from messaging.models import Message

    return Message.objects.filter(status__in=IN_FLIGHT).count()


def _pg_sessions(connection) -> int | None:
    """PostgreSQL sessions opened on this database so far (pg_stat_database.sessions, PostgreSQL 14+)."""
    if connection.vendor != "postgresql":
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return int(cursor.fetchone()[0])
    except Exception:  # older server: leave it out
        return None


def _latencies(rows: list[tuple], seconds: float) -> dict[str, Any]:
    times = [r[3] for r in rows]
    statuses = Counter(r[4] for r in rows)
    return {"requests": len(rows), "per_second": len(rows) / seconds if seconds else float("nan"),
            "p50_ms": percentile(times, 50) * 1000, "p95_ms": percentile(times, 95) * 1000,
            "p99_ms": percentile(times, 99) * 1000, "max_ms": max(times, default=float("nan")) * 1000,
            "statuses": dict(statuses),
            "errors": {s: n for s, n in statuses.items() if not (s.isdigit() and int(s) < 400)}}


def _endpoint_stats(recorder: Recorder, phase_times: dict, load_began: float, load_ended: float,
                    drain_seconds: float) -> dict:
    stats: dict[str, dict] = defaultdict(dict)
    for phase, (began, ended) in phase_times.items():
        rows = [c for c in recorder.calls if c[0] == phase]
        for endpoint in sorted({c[1] for c in rows}):
            stats[phase][endpoint] = _latencies([c for c in rows if c[1] == endpoint], ended - began)
    health = [c for c in recorder.calls if c[1] == "healthz"]
    stats["during load"]["healthz"] = _latencies([c for c in health if c[2] < load_ended], load_ended - load_began)
    stats["draining"]["healthz"] = _latencies([c for c in health if c[2] >= load_ended], drain_seconds)
    return dict(stats)


def _backlog(recorder: Recorder) -> dict[str, Any]:
    if not recorder.depths:
        return {"largest": 0}
    totals = [(at, sum(d.values()), d) for at, d in recorder.depths]
    at, largest, by_queue = max(totals, key=lambda row: row[1])
    per_queue = {name: max(d.get(name, 0) for _, d in recorder.depths) for name in by_queue}
    return {"largest": largest, "largest_at": at, "largest_by_queue": per_queue, "samples": len(totals),
            "series": [[round(at - totals[0][0], 1), total] for at, total, _ in totals]}


def _message_times(ids: list[int], wall_ended: float) -> dict[str, Any]:
    """Seconds from each message's request to final: Solapi's acceptance, or the failure or skip."""
    from django.db.models.functions import Coalesce

    from messaging.models import Message

    rows = (Message.objects.filter(send_request_id__in=ids).exclude(status__in=IN_FLIGHT)
            .annotate(final_at=Coalesce("accepted_at", "completed_at"))
            .values_list("send_request__created", "final_at", "status"))
    waits, last, statuses = [], None, Counter()
    for created, final_at, status in rows:
        statuses[status] += 1
        if final_at is not None:
            waits.append((final_at - created).total_seconds())
            last = final_at if last is None or final_at > last else last
    return {"final": len(waits), "statuses": dict(statuses), "in_flight": _in_flight_count(),
            "p50_s": percentile(waits, 50), "p95_s": percentile(waits, 95), "max_s": max(waits, default=float("nan")),
            "last_final_after_load_s": (last.timestamp() - wall_ended) if last else float("nan")}


def _sqs_costs(sqs: Counter, sends: int) -> dict[str, Any]:
    total = sum(sqs.values())
    monitoring = sum(sqs.get(operation, 0) for operation in MONITORING_OPERATIONS)
    pipeline = total - monitoring
    return {"total": total, "by_operation": dict(sqs), "monitoring_calls": monitoring,
            "pipeline_and_api": pipeline, "per_send_request": pipeline / sends if sends else float("nan")}


def _webhook(stack: Stack, reports_done: bool) -> dict[str, Any]:
    waits = stack.sandbox.webhook_post_seconds()
    return {"posts": len(waits), "p50_ms": percentile(waits, 50) * 1000, "p95_ms": percentile(waits, 95) * 1000,
            "max_ms": max(waits, default=float("nan")) * 1000, "over_1s": sum(1 for w in waits if w > 1.0),
            "all_reports_delivered": reports_done, "sender": stack.sandbox.reports.stats()}


def _cpu(start: dict, load_end: dict, end: dict, load_seconds: float, drain_seconds: float) -> dict[str, Any]:
    return {label: {"cores_during_load": (load_end[label] - start[label]) / load_seconds,
                    "cores_while_draining": (end[label] - load_end[label]) / drain_seconds if drain_seconds else 0.0,
                    "cpu_seconds": end[label] - start[label]}
            for label in start}


def _integrity(stack: Stack, recorder: Recorder, ids: list[int]) -> dict[str, Any]:
    from billing.audit import audit
    from messaging.models import Message

    per_id = stack.sandbox.sends_per_message_id()
    sent = set(Message.objects.filter(send_request_id__in=ids, status__in=("accepted", "delivered"))
                              .values_list("id", flat=True))
    twice = {k: n for k, n in per_id.items() if n > 1}
    missing = [m for m in sent if str(m) not in per_id]
    statuses = Counter(c[4] for c in recorder.calls)
    problems = audit()
    return {
        "messages_accepted_by_sandbox": len(per_id), "accepted_more_than_once": len(twice),
        "accepted_in_db_not_at_sandbox": len(missing),
        "billing_audit": problems[:20], "billing_audit_clean": not problems,
        "replays": len(recorder.replays), "replays_identical": sum(r["identical"] for r in recorder.replays),
        "invalid": len(recorder.invalid), "invalid_4xx_with_code": sum(r["ok"] for r in recorder.invalid),
        "invalid_codes": dict(Counter(r["code"] for r in recorder.invalid)),
        "status_5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
        "transport_errors": sum(n for s, n in statuses.items() if not s.isdigit()),
    }


def _targets(result: dict[str, Any]) -> dict[str, dict]:
    endpoints, messages, drain = result["endpoints"], result["messages"], result["drain"]
    intake = max(phase["send"]["per_second"] for name, phase in endpoints.items() if "send" in phase)
    # What the pipeline kept up with: every send request of the run, from the load's start to the
    # last message final (drained or not, so never flattering).
    pipeline_rate = result["send_requests"] / (result["load_seconds"] + drain["seconds"])
    everyday = endpoints.get("everyday", {})
    no_think = endpoints.get("no think time", {}).get("send", {}).get("p95_ms", float("nan"))
    webhook_max = result["webhook"]["max_ms"] / 1000
    health = endpoints["during load"]["healthz"]["p95_ms"]
    sqs_per_send = result["sqs"]["per_send_request"]
    # name: (measured, limit, met (None: for the record), the limit as the README words it)
    rows = {
        "send requests/s sustained (pipeline: all sends ÷ load + drain time)":
            (pipeline_rate, TARGET_SEND_RATE, pipeline_rate >= TARGET_SEND_RATE, f"≥ {TARGET_SEND_RATE:g}"),
        "message final within 30 s of its request (p95, s)":
            (messages["p95_s"], TARGET_FINAL_P95_S, drain["drained"] and messages["p95_s"] <= TARGET_FINAL_P95_S,
             f"≤ {TARGET_FINAL_P95_S:g} s"),
        "every message final within 60 s after the load (s)":
            (drain["seconds"], TARGET_DRAIN_S, drain["drained"] and drain["seconds"] <= TARGET_DRAIN_S,
             f"≤ {TARGET_DRAIN_S:g} s"),
        f"API p95 for sends at 20 clients, everyday pace ({result['pace']:g} loops/s) (ms)":
            (everyday.get("send", {}).get("p95_ms", float("nan")), TARGET_SEND_P95_MS,
             everyday.get("send", {}).get("p95_ms", float("inf")) < TARGET_SEND_P95_MS, f"< {TARGET_SEND_P95_MS:g} ms"),
        "API p95 for sends at 20 clients with no think time (ms; the machine's capacity, for the record)":
            (no_think, TARGET_SEND_P95_MS, None, "–"),
        "longest report webhook wait (s)": (webhook_max, TARGET_WEBHOOK_MAX_S, webhook_max <= TARGET_WEBHOOK_MAX_S,
                                            f"≤ {TARGET_WEBHOOK_MAX_S:g} s"),
        "/healthz p95 during the load (ms)": (health, TARGET_HEALTHZ_P95_MS, health < TARGET_HEALTHZ_P95_MS,
                                              f"< {TARGET_HEALTHZ_P95_MS:g} ms"),
        "SQS calls per send request, end to end": (sqs_per_send, TARGET_SQS_PER_SEND,
                                                   sqs_per_send <= TARGET_SQS_PER_SEND, f"≤ {TARGET_SQS_PER_SEND:g}"),
    }
    targets = {name: {"value": v, "target": t, "met": m if m is None else bool(m), "limit": limit}
               for name, (v, t, m, limit) in rows.items()}
    targets["_api_intake_peak_send_per_s"] = {"value": intake}
    return targets


def _integrity_checks(i: dict[str, Any]) -> list[list]:
    """[check, what was seen, whether it holds] for the run's integrity."""
    return [
        ["each message accepted once at the sandbox", f"{i['accepted_more_than_once']} twice, "
         f"{i['accepted_in_db_not_at_sandbox']} missing of {i['messages_accepted_by_sandbox']:,}",
         i["accepted_more_than_once"] == 0 and i["accepted_in_db_not_at_sandbox"] == 0],
        ["books exact (billing.audit)", "clean" if i["billing_audit_clean"] else "; ".join(i["billing_audit"][:3]),
         i["billing_audit_clean"]],
        ["replays answered identically", f"{i['replays_identical']}/{i['replays']}",
         i["replays_identical"] == i["replays"]],
        ["invalid bodies: 4xx with a code", f"{i['invalid_4xx_with_code']}/{i['invalid']} {i['invalid_codes']}",
         i["invalid_4xx_with_code"] == i["invalid"]],
        ["no 5xx, no transport error", f"{i['status_5xx']} 5xx, {i['transport_errors']} transport errors",
         i["status_5xx"] == 0 and i["transport_errors"] == 0],
    ]


def report(result: dict[str, Any]) -> str:
    rows = []
    for phase, endpoints in result["endpoints"].items():
        for endpoint, s in endpoints.items():
            errors = ", ".join(f"{k}: {v}" for k, v in sorted(s["errors"].items())) or "–"
            rows.append([phase, endpoint, s["requests"], s["per_second"], s["p50_ms"], s["p95_ms"], s["p99_ms"],
                         s["max_ms"], errors])
    m, d, b, q, w, i = (result[k] for k in ("messages", "drain", "backlog", "sqs", "webhook", "integrity"))
    pipeline = [
        ["send requests", result["send_requests"]],
        ["messages final / in flight", f"{m['final']:,} / {m['in_flight']:,} ({_counts(m['statuses'])})"],
        ["largest backlog (messages on the SQS queues)", f"{b['largest']:,} {b.get('largest_by_queue', '')}"],
        ["drain (load end → every message final)", f"{d['seconds']:.0f} s" if d["drained"]
         else f"NOT DRAINED after {d['seconds']:.0f} s ({d['still_in_flight']:,} messages in flight)"],
        ["request → final, p50 / p95 / max", f"{m['p50_s']:.1f} / {m['p95_s']:.1f} / {m['max_s']:.1f} s"],
        ["Solapi calls per message (at the sandbox)", f"{result['solapi']['calls_per_message']:.3f} "
         f"({result['solapi']['calls']:,} calls, {result['solapi']['accepted']:,} accepted)"],
        ["SQS calls per send request (at the local SQS)", f"{q['per_send_request']:.1f} ({q['pipeline_and_api']:,} "
         f"of {q['total']:,}; the depth sampler's and health refreshers' {q['monitoring_calls']:,} taken out)"],
        ["SQS calls by operation", ", ".join(f"{k} {v:,}" for k, v in sorted(q["by_operation"].items()))],
        ["report webhook POST wait p50 / p95 / max", f"{w['p50_ms']:.0f} / {w['p95_ms']:.0f} / {w['max_ms']:.0f} ms "
         f"({w['posts']:,} POSTs, {w['over_1s']:,} over 1 s; sender: {_counts(w['sender'])})"],
        ["every report applied (load end → last batch applied)", f"{w['applied_after_load_s']:.0f} s"
         if w["all_applied"] else f"NOT APPLIED after {w['applied_after_load_s']:.0f} s"],
        ["PostgreSQL sessions opened", result["postgresql_sessions"]],
    ]
    cpu = [[label, c["cores_during_load"], c["cores_while_draining"], c["cpu_seconds"]]
           for label, c in result["cpu"].items()]
    checks = _integrity_checks(i)
    targets = [[name, t["value"], t["target"], "–" if t["met"] is None else "MET" if t["met"] else "MISSED"]
               for name, t in result["targets"].items() if not name.startswith("_")]
    return "\n\n".join([
        table("Everyday load: per endpoint (client-side, over HTTP)",
              ["phase", "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rows),
        table("Pipeline", ["measure", "value"], pipeline),
        table("CPU (cores = CPU seconds ÷ wall seconds, 2 cores in all; postgres = the whole server, its "
              "backends that exited included)",
              ["process", "cores during load", "cores while draining", "CPU s"], cpu),
        table("Integrity", ["check", "seen", "ok"], [[a, b, "yes" if c else "NO"] for a, b, c in checks]),
        table("Issue 18 targets", ["target", "measured", "limit", "verdict"], targets),
        f"API intake peak: {result['targets']['_api_intake_peak_send_per_s']['value']:.1f} send requests/s; "
        f"database: {result['database']}; load average at start: {result['loadavg_at_start']}",
    ])


def goals(result: dict[str, Any]) -> list[Goal]:
    """Issue 18's targets with their measured values, then what the run measured for the record:
    the README's everyday-load table (benchmarks/readme_table.py)."""
    out = [Goal(name, f"{t['value']:,.3g}" if t["value"] < 1000 else f"{t['value']:,.0f}", t["limit"],
                t["met"])
           for name, t in result["targets"].items() if not name.startswith("_")]
    m, b, w = (result[k] for k in ("messages", "backlog", "webhook"))
    everyday = result["endpoints"].get("everyday", {})
    whole = all(ok for _, _, ok in _integrity_checks(result["integrity"]))
    out += [
        Goal("API intake at its peak (burst, 50 clients), send requests/s",
             f"{result['targets']['_api_intake_peak_send_per_s']['value']:.1f}"),
        Goal("API p50 / p95 at the everyday pace: preview, status, credits (ms)",
             ", ".join(f"{everyday.get(e, {}).get('p50_ms', float('nan')):.0f} / "
                       f"{everyday.get(e, {}).get('p95_ms', float('nan')):.0f}"
                       for e in ("preview", "status", "credits"))),
        Goal("message request → final, p50 / max (s)", f"{m['p50_s']:.1f} / {m['max_s']:.1f}"),
        Goal("largest backlog on the SQS queues (messages)", f"{b['largest']:,}"),
        Goal("Solapi calls per message", f"{result['solapi']['calls_per_message']:.3f}"),
        Goal("every report applied, after the load (s)",
             f"{w['applied_after_load_s']:.0f}" if w["all_applied"] else "not all applied"),
        Goal("integrity: each message once at the sandbox, books exact, replays identical, invalid bodies 4xx, "
             "no 5xx", "whole" if whole else "BROKEN", "whole", whole),
    ]
    return out


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))


def main() -> None:
    args = arguments().parse_args()
    began = time.time()
    load_at_start = loadavg()
    print(f"load average at start: {load_at_start}", flush=True)
    with Stack("load", env={"HEALTH_TOKEN": HEALTH_TOKEN}, keep_db=args.keep_db) as stack:
        print(stack.describe(), flush=True)
        result = run(stack, phases(args), drain_timeout=args.drain_timeout, seed=args.seed,
                     load_at_start=load_at_start)
        result["machine"] = {**machine(), "loadavg_at_start": load_at_start.split()}  # machine() reads it now
    result["quick"] = args.quick
    print(report(result))
    print(f"\nwrote {write_json('load-quick' if args.quick else 'load', result)}")
    from project import clock  # Django is set up by the stack

    text = readme_table.section(goals(result), info=result["machine"], when=clock.kst_now(),
                                commit=readme_table.commit(), minutes=(time.time() - began) / 60,
                                quick=args.quick, table=readme_table.LOAD)
    print("\n" + readme_table.write(text, for_the_record=for_the_record(args), table=readme_table.LOAD))


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="15 s everyday + 10 s no think time + 10 s burst (while developing)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--pace", type=float, default=EVERYDAY_LOOPS_PER_S,
                        help="loops started a second by the everyday clients together (0: no think time)")
    parser.add_argument("--no-think-seconds", type=float, default=60.0,
                        help="length of the phase with no think time (0 leaves it out)")
    parser.add_argument("--burst-clients", type=int, default=50)
    parser.add_argument("--burst-seconds", type=float, default=60.0)
    parser.add_argument("--drain-timeout", type=float, default=1200.0,
                        help="give up waiting for the backlog after this many seconds (reported as not drained)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep-db", action="store_true")
    return parser


def for_the_record(args: argparse.Namespace) -> bool:
    """Only issue 18's load as it is defined (every option at its default, not --quick) writes
    the README's table."""
    defaults = arguments()
    return all(getattr(args, name) == defaults.get_default(name) for name in vars(args) if name != "keep_db")


if __name__ == "__main__":
    main()
