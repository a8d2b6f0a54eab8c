"""Flower over the events bridge (project/events_bridge.py): tasks on the local SQS, worker
events on a redis-server this file starts on a free loopback port.

The outage tests replay the traps measured when the bridge was designed (docs/flower.md,
"When Redis is down, hung or killed"): with Celery's stock dispatcher, a Redis that is down
at start, hung or killed stops SQS tasks for the whole outage (or ends the worker). With the
bridge, tasks keep flowing.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import redis
from django.conf import settings
from kombu import Connection

from harness.ports import free_port, wait_for_port
from harness.waiting import DEFAULT_TIMEOUT, wait_until
from messaging.pipeline.queues import BULK_QUEUE
from project import events_bridge
from project.celery import app, ping
from tests.conftest import LOG_DIR

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A queue of its own, so the session's worker (events off) never takes these pings.
QUEUE = f"{BULK_QUEUE}-events"
# A ping's round trip on the local SQS is under ~1 s (1 s long-poll granularity), a few
# seconds on a loaded CI box. The stock dispatcher stalls tasks 16-30 s or for the whole
# outage (docs/flower.md); the bridge never: the bound sits between the two.
MAX_ROUND_TRIP = 10.0


class RedisServer:
    """Our own redis-server on a free loopback port (never the shared one on 6379)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/3"
        self.workdir = workdir
        self._process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def hang(self) -> None:
        self._process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.kill()  # SIGKILL ends a stopped process too
            self._process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.kill()


class EventSniffer:
    """Reads the worker's events straight off Redis pub/sub, independently of Flower."""

    def __init__(self, server: RedisServer):
        self._pubsub = server.client().pubsub()
        # kombu's fanout topics are "/{db}.{exchange}/{routing key}" (kombu/transport/redis.py).
        self._pubsub.psubscribe("/3.celeryev*")
        self.seen: Counter = Counter()

    def wait_for(self, event_type: str, hostname_prefix: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._pubsub.get_message(timeout=0.2)
            if not message or message["type"] != "pmessage":
                continue
            body = json.loads(base64.b64decode(json.loads(message["data"])["body"]))
            for event in body if isinstance(body, list) else [body]:
                self.seen[event["type"]] += 1
                if event["type"] == event_type and event["hostname"].startswith(hostname_prefix):
                    return event
        raise AssertionError(f"no {event_type} from {hostname_prefix}* within {timeout}s; saw {dict(self.seen)}")


def round_trips(seconds: float) -> list[float]:
    """Ping through SQS and the worker, one after another, for `seconds`; the round-trip times."""
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        assert ping.apply_async(queue=QUEUE).get(timeout=30, interval=0.05) == "pong"
        times.append(time.monotonic() - started)
    return times


def start_bridged_worker(start_worker, events_url: str, name: str):
    return start_worker(name, env={"CELERY_EVENTS_BROKER_URL": events_url}, extra_args=("-Q", QUEUE))


# --- Flower shows the worker and its tasks -----------------------------------------------


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def flower(redis_server, worker_env):
    redis_server.start()
    port = free_port()
    log = open(LOG_DIR / "flower.log", "ab")  # noqa: SIM115 (the child owns it)
    process = subprocess.Popen(
        # --broker before `flower`: after it, Flower warns and connects to SQS (docs/flower.md, "Running it").
        [sys.executable, "-m", "celery", "-A", "project", "--broker", redis_server.url, "flower",
         "--address=127.0.0.1", f"--port={port}", "--read_only=true", "--enable_events=false"],
        env={**os.environ, **worker_env, "FLOWER_UNAUTHENTICATED_API": "true"},
        cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=DEFAULT_TIMEOUT)
        # Redis pub/sub keeps nothing: events sent before Flower subscribes are lost.
        wait_until(lambda: redis_server.client().execute_command("PUBSUB", "NUMPAT") >= 1, what="Flower to subscribe")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def test_flower_lists_the_worker_and_its_task_from_events(flower, redis_server, start_worker):
    worker = start_bridged_worker(start_worker, redis_server.url, "flowerbridge")

    # /api/workers itself is built from inspect replies, which SQS cannot carry (docs/flower.md).
    statuses = wait_until(lambda: _get_json(f"{flower}/api/workers?status=true"), what="Flower to see the worker")
    hostname = next(name for name in statuses if name.startswith("flowerbridge@"))
    assert statuses[hostname] is True

    result = ping.apply_async(queue=QUEUE)
    assert result.get(timeout=30) == "pong"

    tasks = wait_until(
        lambda: (t := _get_json(f"{flower}/api/tasks")).get(result.id, {}).get("state") == "SUCCESS" and t,
        what="the task to reach SUCCESS in Flower",
    )
    assert tasks[result.id]["name"] == "project.ping"
    assert tasks[result.id]["worker"] == hostname
    info = _get_json(f"{flower}/api/task/info/{result.id}")
    assert (info["state"], info["result"]) == ("SUCCESS", "'pong'")
    assert info["received"] and info["started"] and info["succeeded"]

    # worker-offline on shutdown: heartbeats stay on with the bridge (docs/flower.md, "What the workers do").
    worker.stop()
    wait_until(lambda: _get_json(f"{flower}/api/workers?status=true")[hostname] is False,
               what="the worker to go offline")


# --- Redis outages never stop SQS tasks ---------------------------------------------------


def test_redis_down_at_start_the_worker_starts_runs_tasks_and_catches_up_later(redis_server, start_worker):
    # The stock Events step blocks start-up retrying Redis, then exits (docs/flower.md): start()
    # would raise. The bridged worker gets to "ready".
    worker = start_bridged_worker(start_worker, redis_server.url, "downatstart")  # nothing listens there yet

    # Past the event loop's first heartbeat check, which connected and killed the worker
    # before EventsConnection.get_heartbeat_interval() returned 0 (docs/flower.md, "How the bridge works").
    times = round_trips(seconds=4)
    assert max(times) < MAX_ROUND_TRIP, times
    assert worker.alive
    assert "pausing event publishing" in worker.log()

    # Redis comes up: within one pause the kept events go out, worker-online first.
    redis_server.start()
    sniffer = EventSniffer(redis_server)
    sniffer.wait_for("worker-online", "downatstart@", timeout=events_bridge.PAUSE_SECONDS + DEFAULT_TIMEOUT)
    sniffer.wait_for("task-succeeded", "downatstart@", timeout=DEFAULT_TIMEOUT)


def test_redis_hung_then_killed_mid_run_tasks_keep_flowing(redis_server, start_worker):
    redis_server.start()
    sniffer = EventSniffer(redis_server)
    worker = start_bridged_worker(start_worker, redis_server.url, "midrun")
    sniffer.wait_for("worker-heartbeat", "midrun@", timeout=DEFAULT_TIMEOUT)

    # Hung (SIGSTOP): connections are accepted and never answered. The stock dispatcher
    # blocks in PUBLISH with no timeout.
    redis_server.hang()
    hung = round_trips(seconds=5)
    # Killed: connections refused. The stock Heart retries forever in the event loop.
    redis_server.kill()
    killed = round_trips(seconds=3)

    assert max(hung) < MAX_ROUND_TRIP, hung
    assert max(killed) < MAX_ROUND_TRIP, killed
    assert worker.alive

    # Back on the same port: events flow again once the pause is over.
    redis_server.start()
    sniffer = EventSniffer(redis_server)
    sniffer.wait_for("worker-heartbeat", "midrun@", timeout=events_bridge.PAUSE_SECONDS + DEFAULT_TIMEOUT)


# --- Without an events URL, nothing changes -------------------------------------------------


def _worker_settings(events_url: str) -> dict:
    code = (
        "import json; from project.celery import app; c = app.conf; "
        "print(json.dumps([c.worker_consumer, c.worker_send_task_events]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "CELERY_EVENTS_BROKER_URL": events_url},
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_an_events_url_the_stock_consumer_runs_and_events_stay_off():
    assert _worker_settings("") == ["celery.worker.consumer:Consumer", False]
    assert _worker_settings("redis://127.0.0.1:6379/3") == ["project.events_bridge:EventsBridgeConsumer", True]


def test_the_dispatcher_is_stock_on_any_other_connection():
    dispatcher = app.events.Dispatcher(Connection("memory://"), hostname="x@y")

    assert not dispatcher.bridged
    assert dispatcher.buffer_while_offline is True  # stock: buffer, unbounded, retry as asked
    assert dispatcher._outbound_buffer.maxlen is None


def test_on_a_dead_events_broker_one_attempt_per_pause_and_a_bounded_backlog(monkeypatch):
    monkeypatch.setattr(events_bridge, "BACKLOG_SIZE", 3)
    connection = events_bridge.events_connection(f"redis://127.0.0.1:{free_port()}/3")
    dispatcher = app.events.Dispatcher(connection, hostname="x@y")
    attempts = []
    real_publish = dispatcher.producer.publish

    def counted_publish(*args, **kwargs):
        attempts.append(kwargs["retry"])
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(dispatcher.producer, "publish", counted_publish)

    dispatcher.send("worker-online", retry=True)  # Heart asks for retry=True
    for n in range(5):
        dispatcher.send("task-received", uuid=str(n))
    dispatcher.send("worker-heartbeat")

    assert attempts == [False]  # one attempt, no retries; the rest wait for the pause to end
    # Oldest dropped beyond the bound; stale heartbeats never kept.
    assert [event["uuid"] for event, _ in dispatcher._outbound_buffer] == ["2", "3", "4"]
