"""Slow clients (slowloris): late or idle connections are cut, and one address cannot hold
the server's connections."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import wait_for
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


KEEP_ALIVE = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # answered, then left idle
SLOW_BODY = (b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n{")


@pytest.mark.parametrize("opening", [b"GET /", b"", KEEP_ALIVE, SLOW_BODY],
                         ids=["trickling", "idle", "idle-keep-alive", "slow-body"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_legitimate_requests_are_served_while_hundreds_of_heads_trickle(make_server, script,
                                                                       opening):
    server = make_server("--no-rate-limit", script=script)
    with tricklers(server.port, 300, opening) as conns:
        for _ in range(5):
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.sendall(b" " if opening == SLOW_BODY else opening[:1])
            assert server.api("GET", "sessions", timeout=5).status_code == 200
            time.sleep(0.5)


@pytest.mark.parametrize("script", SCRIPTS)
def test_requests_are_served_at_once_when_a_flood_of_trickling_heads_ends(make_server, script):
    server = make_server("--no-rate-limit", script=script)
    with tricklers(server.port, 300) as conns:
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sendall(b"a")
        assert server.api("GET", "sessions", timeout=5).status_code == 200
    for _ in range(5):  # the flood's 300 closing connections stall nothing (was ~10 s)
        assert server.api("GET", "sessions", timeout=5).status_code == 200
        assert requests.get(server.base + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize("script", SCRIPTS)
def test_connections_beyond_the_per_address_cap_get_429(make_server, script):
    server = make_server("--no-rate-limit", "--max-connections-per-address", "3", script=script)
    with tricklers(server.port, 3) as held:
        assert len(held) == 3
        reply = _closed_by_server(_trickler(server.port), timeout=10)
        assert reply is not None and reply.startswith(b"HTTP/1.1 429")
        body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert body["error"] == "Too Many Requests" and "open connections" in body["message"]
        assert server.api("GET", "sessions").status_code == 200  # another address: served


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("opening", [b"GET /", KEEP_ALIVE],
                         ids=["late-head", "idle-keep-alive"])
def test_a_late_request_or_an_idle_connection_is_cut(make_server, script, opening):
    server = make_server("--no-rate-limit", "--request-timeout-s", "1", script=script)
    started = time.monotonic()
    assert _closed_by_server(_trickler(server.port, opening), timeout=15) is not None
    if opening != KEEP_ALIVE:  # (run.py answers that one with Connection: close at once)
        assert time.monotonic() - started >= 1


def _never_reading(port: int) -> socket.socket:
    """A connection from ATTACKER that pipelines requests until the server's replies, which
    it never reads, fill both buffers and the server's writes stall."""
    conn = socket.create_connection(("127.0.0.1", port), source_address=(ATTACKER, 0))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.settimeout(2)
    with contextlib.suppress(OSError):  # the server stops reading: our send times out
        for _ in range(5000):
            conn.sendall(KEEP_ALIVE * 50)
    return conn


def _served_from_attacker(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=(ATTACKER, 0)) as conn:
        conn.sendall(KEEP_ALIVE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        return conn.recv(12) == b"HTTP/1.1 200"


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("dribbles", [False, True], ids=["then-quiet", "then-dribbling"])
def test_a_client_that_sends_more_than_its_request_and_never_reads_is_cut(make_server, script,
                                                                          dribbles):
    server = make_server("--no-rate-limit", "--request-timeout-s", "1",
                         "--max-connections-per-address", "2", script=script)
    stalled = [_never_reading(server.port) for _ in range(2)]

    def slot_back() -> bool:
        for conn in stalled if dribbles else ():
            with contextlib.suppress(OSError):
                conn.sendall(b" ")
        return _served_from_attacker(server.port)

    try:  # their slots come back: the server gave up on them (once their unread replies
        # fill the socket buffers: seconds, more on a loaded machine)
        wait_for(slot_back, timeout=45, interval=0.5)
    finally:
        for conn in stalled:
            conn.close()
    assert server.api("GET", "sessions").status_code == 200


def _post_head(server, length: int, extra: bytes = b"") -> bytes:
    return (f"POST /{server.token}/api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n").encode() + extra


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_body_dribbled_after_the_head_is_cut_at_the_deadline(make_server, script, project):
    server = make_server("--no-rate-limit", "--request-timeout-s", "1", script=script)
    body = json.dumps({"name": "dribbled", "cwd": str(project), "toolType": "terminal"})
    conn = _trickler(server.port, _post_head(server, len(body) + 100) + b"\r\n" + body.encode())
    started = time.monotonic()
    reply = _closed_by_server(conn, timeout=15)  # one more byte every 0.2 s, never the last
    assert reply is not None, "still open after 15 s"
    assert time.monotonic() - started >= 0.5
    assert not reply.startswith(b"HTTP/1.1 2")  # the app never ran on a partial body
    assert server.api("GET", "sessions").json()["sessions"] == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_body_sent_in_pieces_within_the_deadline_is_served(make_server, script, project):
    server = make_server("--no-rate-limit", "--request-timeout-s", "5", script=script)
    body = json.dumps({"name": "in pieces", "cwd": str(project), "toolType": "claude-code"})
    conn = _trickler(server.port, _post_head(server, len(body), b"Connection: close\r\n\r\n"))
    try:
        for start in range(0, len(body), 20):
            time.sleep(0.05)
            conn.sendall(body[start:start + 20].encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    finally:
        conn.close()
    assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
    chunked = requests.post(server.url("api/sessions"), timeout=10, data=iter(
        [body.replace("in pieces", "chunked").encode()]),  # Transfer-Encoding: chunked
        headers={"Content-Type": "application/json"})
    assert chunked.status_code == 201, chunked.text
    names = sorted(s["name"] for s in server.api("GET", "sessions").json()["sessions"])
    assert names == ["chunked", "in pieces"]


def test_many_addresses_together_cannot_fill_wsgi_pys_connections(make_server):
    server = make_server("--no-rate-limit", script="wsgi.py")
    conns: list[socket.socket] = []
    try:
        for n in range(2, 10):  # 8 addresses, each up to its share
            for _ in range(60):
                with contextlib.suppress(OSError):
                    conns.append(socket.create_connection(
                        ("127.0.0.1", server.port), timeout=5, source_address=(f"127.0.0.{n}", 0)))
        assert len(conns) >= 400
        for _ in range(3):
            assert server.api("GET", "sessions", timeout=5).status_code == 200
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("script", SCRIPTS)
def test_websockets_and_quick_requests_outlive_the_head_deadline(make_server, script):
    server = make_server("--no-rate-limit", "--request-timeout-s", "1", script=script)
    client = LiveClient(server)
    with requests.Session() as keep_alive:
        for _ in range(3):
            assert keep_alive.get(server.url("api/sessions"), timeout=5).status_code == 200
        time.sleep(2.5)
        assert keep_alive.get(server.url("api/sessions"), timeout=5).status_code == 200
    assert client.request({"type": "ping"}, "pong")
    client.close()
