"""Start the local stack with honcho: `make run`.

Flower needs a Redis for worker events (docs/flower.md); it joins the stack when a
Redis answers on 127.0.0.1:6379, and the stack runs without it otherwise.
"""

import os
import socket
import sys
from pathlib import Path

from honcho.command import main as honcho

BASE_PROCESSES = ["sqs", "solapi", "web", "worker", "beat"]
REDIS_URL = "redis://127.0.0.1:6379/3"


def _redis_is_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main() -> None:
    # The Procfile's `python`, `celery` and `gunicorn` are the ones of this virtualenv.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    processes = list(BASE_PROCESSES)
    if os.environ.get("CELERY_EVENTS_BROKER_URL") or _redis_is_up():
        os.environ.setdefault("CELERY_EVENTS_BROKER_URL", REDIS_URL)
        processes.append("flower")
        print(f"Flower: http://127.0.0.1:5555 (worker events via {os.environ['CELERY_EVENTS_BROKER_URL']})")
    else:
        print("No Redis on 127.0.0.1:6379: running without Flower (worker events off).")
    print("API: http://127.0.0.1:8000/api/docs/   admin: http://127.0.0.1:8000/admin/")
    sys.argv = ["honcho", "start", "-f", "Procfile.dev", *processes]
    honcho()


if __name__ == "__main__":
    main()
