"""A keep-alive connection that waits between requests is still answered (gunicorn.conf.py,
`keepalive`). With gunicorn's default of 2 s, the server closed connections that clients were
about to reuse, and those requests failed without an answer."""

import socket
import time

from tests.operations.conftest import procfile_command

REQUEST = b"GET /api/v1/credits HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
# Longer than gunicorn's default keepalive (2 s): the pause of a client between two requests.
PAUSE_SECONDS = 3.0


def _answer(connection: socket.socket) -> bytes:
    """One HTTP answer's head and body (401 JSON with a Content-Length), or b"" once closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += connection.recv(65536)
    return head


def test_the_web_keeps_an_idle_connection_open_past_a_clients_pause(procfile_gunicorn):
    assert "gunicorn.conf.py" in procfile_command("web")
    url, _written = procfile_gunicorn("web", "WEB_BIND")
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(REQUEST)
        first = _answer(connection)
        # The pause is the condition under test (a client idle between requests), not a wait.
        time.sleep(PAUSE_SECONDS)
        connection.sendall(REQUEST)
        second = _answer(connection)

    assert first.startswith(b"HTTP/1.1 401")
    assert second.startswith(b"HTTP/1.1 401"), second
