"""Start the local stack with honcho: `make run`.

Flower needs a Redis for worker events (docs/flower.md); it joins the stack when a
Redis answers on 127.0.0.1:6379, and the stack runs without it otherwise.

Once every process is up (the ports answer, both workers' heartbeats are written, beat has
opened its schedule), one banner is printed, last: where the API, the admin and Flower are,
the demo staff token, the dev admin login, and the README's example send with its status URL.
An idle stack then stays quiet, so the banner stays on screen (README, "Two commands").

One clock: honcho's prefix prints the local time, so the stack runs in Korea's time, the
clock of every log line's `ts` (project/logging.py) and of the admin.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from honcho.command import main as honcho

BASE_PROCESSES = ["sqs", "solapi", "web", "edge", "worker", "worker-interactive", "beat"]
REDIS_URL = "redis://127.0.0.1:6379/3"
BASE_DIR = Path(__file__).resolve().parent.parent
WEB = "http://127.0.0.1:8000"
# The delivery-report webhook and /healthz (docs/operations.md): the sandbox posts its reports here.
EDGE = "http://127.0.0.1:8001"
FLOWER = "http://127.0.0.1:5555"
PORTS = {"sqs": 9324, "solapi": 8765, "web": 8000, "edge": 8001, "flower": 5555}
# The README's example send ("Two commands"); tests/foundation/test_devstack.py checks the README shows it.
EXAMPLE_SEND = ('{"student_ids": [1, 2, 3], "purpose": "info", "send_to": "parent", "message_mode": "sms", '
                '"body": "#{이름} 학생 학부모님, 내일 휴원입니다."}')
READY_TIMEOUT = 180


def _redis_is_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _demo() -> dict:
    """The demo academy's token and the dev admin login, from `seed_demo --json` (idempotent)."""
    output = subprocess.run([sys.executable, "manage.py", "seed_demo", "--json"], cwd=BASE_DIR, check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output)


def _worker_and_beat_up(since: float) -> bool:
    """Both workers (the bulk queue's and the interactive queue's) wrote their heartbeats, and beat
    opened its schedule, after `since`."""
    schedules = list((BASE_DIR / "var").glob("celerybeat-schedule*"))
    if not any(path.stat().st_mtime >= since for path in schedules):
        return False
    query = ("from datetime import UTC, datetime; from messaging.models import WorkerHeartbeat; "
             f"since = datetime.fromtimestamp({since}, UTC); "
             "print(WorkerHeartbeat.objects.filter(stopped__isnull=True, last_seen__gte=since)"
             ".order_by().values('queues').distinct().count() >= 2)")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", query], cwd=BASE_DIR,
                            capture_output=True, text=True)
    return result.stdout.strip().endswith("True")


def banner(demo: dict, *, flower_login: str | None) -> str:
    """What `make run` prints last. `flower_login`: FLOWER_BASIC_AUTH when Flower runs."""
    token = demo["token"]
    admin = demo.get("admin")
    lines = [
        "=" * 78,
        "The local stack is up.",
        f"  API         {WEB}/api/docs/",
        f"  admin       {WEB}/admin/   " + (f"login {admin['username']} / {admin['password']}" if admin
                                          else "(no dev admin: DEBUG is off)"),
        f"  edge        {EDGE}/healthz   (delivery reports and /healthz, apart from the API)",
        f"  demo staff  token {token}   (academy \"{demo['tenant']}\", {len(demo['student_ids'])} students)",
        f"  signals     {WEB}/healthz?strict   {WEB}/metrics (admin login)   docs/alerts.md, docs/metrics.md",
        f"  Flower      {FLOWER}   login {flower_login.replace(':', ' / ', 1)}" if flower_login
        else "  Flower      not running (no Redis on 127.0.0.1:6379)",
        "  Try a send (README, 'Two commands'):",
        f"    TOKEN={token}",
        f"    ID=$(curl -s -X POST {WEB}/api/v1/messages/send -H \"Authorization: Token $TOKEN\" \\",
        "      -H \"Content-Type: application/json\" \\",
        f"      -d '{EXAMPLE_SEND}' \\",
        "      | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])')",
        f"    curl -s {WEB}/api/v1/messages/send-requests/$ID -H \"Authorization: Token $TOKEN\"",
        f"  status URL  {WEB}/api/v1/messages/send-requests/$ID",
        "=" * 78,
    ]
    return "\n".join(lines) + "\n"


def _print_banner_when_up(processes: list[str], since: float) -> None:
    ports = [PORTS[name] for name in processes if name in PORTS]
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if all(_port_open(port) for port in ports) and _worker_and_beat_up(since):
            flower_login = os.environ.get("FLOWER_BASIC_AUTH", "") if "flower" in processes else None
            sys.stdout.write(banner(_demo(), flower_login=flower_login))
            sys.stdout.flush()
            return
        time.sleep(2)
    sys.stdout.write(f"The stack is not up after {READY_TIMEOUT} s: see the lines above.\n")
    sys.stdout.flush()


def main() -> None:
    # The Procfile's `python`, `celery` and `gunicorn` are the ones of this virtualenv.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # honcho's prefix in Korea's time, as every log line's ts (project/logging.py).
    os.environ["TZ"] = "Asia/Seoul"
    time.tzset()
    # /metrics adds up var/prometheus/* (Procfile.dev): nothing of an earlier run may be left there.
    shutil.rmtree("var/prometheus", ignore_errors=True)
    processes = list(BASE_PROCESSES)
    if os.environ.get("CELERY_EVENTS_BROKER_URL") or _redis_is_up():
        os.environ.setdefault("CELERY_EVENTS_BROKER_URL", REDIS_URL)
        processes.append("flower")
    since = datetime.now().timestamp() - 1
    threading.Thread(target=_print_banner_when_up, args=(processes, since), daemon=True).start()
    sys.argv = ["honcho", "start", "-f", "Procfile.dev", *processes]
    honcho()


if __name__ == "__main__":
    main()
