"""Slow clients (slowloris): late request heads are cut, and one address cannot hold them all."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.wsclient import LiveClient

SCRIPTS = ["run.py", "wsgi.py"]
ATTACKER = "127.0.0.2"  # all of 127/8 is loopback: the attack comes from another address


def _trickler(port: int, opening: bytes = b"GET /") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5,
                                    source_address=(ATTACKER, 0))
    if opening:
        conn.sendall(opening)
    return conn


def _closed_by_server(conn: socket.socket, timeout: float) -> bytes | None:
    """What the server sent before closing, or None if it is still open after `timeout`."""
    conn.settimeout(0.2)
    received, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = conn.recv(4096)
        except TimeoutError:
            with contextlib.suppress(OSError):
                conn.sendall(b"a")  # keep trickling
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


@contextlib.contextmanager
def tricklers(port: int, count: int, opening: bytes = b"GET /") -> Iterator[list[socket.socket]]:
    """Up to `count` connections from ATTACKER that sent `opening` (maybe nothing) of a
    request head; closed after."""
    conns: list[socket.socket] = []
    try:
        for _ in range(count):
            with contextlib.suppress(OSError):
                conns.append(_trickler(port, opening))
        yield conns
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("opening", [b"GET /", b""], ids=["trickling", "idle"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_legitimate_requests_are_served_while_hundreds_of_heads_trickle(make_server, script,
                                                                       opening):
    server = make_server("--no-rate-limit", script=script)
    with tricklers(server.port, 300, opening) as conns:
        for _ in range(5):
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.sendall(opening[:1])
            assert server.api("GET", "sessions", timeout=5).status_code == 200
            time.sleep(0.5)


@pytest.mark.parametrize("script", SCRIPTS)
def test_heads_beyond_the_per_address_cap_get_429(make_server, script):
    server = make_server("--no-rate-limit", "--max-heads-per-address", "3", script=script)
    with tricklers(server.port, 3) as held:
        assert len(held) == 3
        reply = _closed_by_server(_trickler(server.port), timeout=10)
        assert reply is not None and reply.startswith(b"HTTP/1.1 429")
        body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert body["error"] == "Too Many Requests" and "still sending" in body["message"]
        assert server.api("GET", "sessions").status_code == 200  # another address: served


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_head_later_than_the_deadline_is_cut(make_server, script):
    server = make_server("--no-rate-limit", "--head-timeout-s", "1", script=script)
    started = time.monotonic()
    assert _closed_by_server(_trickler(server.port), timeout=15) is not None
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize("script", SCRIPTS)
def test_websockets_and_quick_requests_outlive_the_head_deadline(make_server, script):
    server = make_server("--no-rate-limit", "--head-timeout-s", "1", script=script)
    client = LiveClient(server)
    with requests.Session() as keep_alive:
        for _ in range(3):
            assert keep_alive.get(server.url("api/sessions"), timeout=5).status_code == 200
        time.sleep(2.5)
        assert keep_alive.get(server.url("api/sessions"), timeout=5).status_code == 200
    assert client.request({"type": "ping"}, "pong")
    client.close()
