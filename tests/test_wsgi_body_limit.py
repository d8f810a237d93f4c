"""wsgi.py refuses a too-large body (413) from its headers, before reading it, token or not."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest

LIMIT = 2048
ANNOUNCED = 50 * 1024 * 1024  # far beyond the limit; only a sliver is ever sent


@pytest.fixture
def waitress_server(make_server):
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--max-body-bytes", str(LIMIT), script="wsgi.py")


def post_head_only(server, path: str, content_length: int) -> tuple[int, dict, float]:
    """POST headers announcing `content_length` bytes plus 1 KiB of them; return the
    status, JSON body and seconds until the answer."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(head.encode() + b" " * 1024)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.monotonic() - started
    head_text, _, body = data.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), json.loads(body), elapsed


@pytest.mark.parametrize("token", ["right", "wrong"])
def test_a_body_over_the_limit_gets_413_before_it_is_sent(waitress_server, token):
    used = waitress_server.token if token == "right" else str(uuid.uuid4())
    status, body, elapsed = post_head_only(waitress_server, f"/{used}/api/sessions", ANNOUNCED)
    assert status == 413 and elapsed < 5
    assert body["error"] == "Request Entity Too Large" and isinstance(body["timestamp"], int)


def test_a_body_at_the_limit_still_reaches_the_app(waitress_server, project):
    fields = json.dumps({"name": "x", "cwd": str(project), "toolType": "terminal"})
    raw = fields + " " * (LIMIT - len(fields.encode()))
    assert len(raw.encode()) == LIMIT
    response = waitress_server.api("POST", "sessions", data=raw,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    over = waitress_server.api("POST", "sessions", data=raw + " ",
                               headers={"Content-Type": "application/json"})
    assert over.status_code == 413 and over.json()["error"] == "Request Entity Too Large"
