"""End-to-end tests of app.serving.waitress_ws: a real waitress subprocess, real clients."""

from __future__ import annotations

import base64
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import pytest
import requests
import websocket

pytestmark = pytest.mark.timeout(60)

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "waitress_ws_demo.py")


class Demo:
    """The demo server in a subprocess; ``PORT <n>`` is its first stdout line."""

    def __init__(self, *args: str) -> None:
        # stderr goes to a file: an unread pipe could fill up and block the server
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen([sys.executable, DEMO, *args], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"demo did not start: {line!r} {self.stderr}")
        self.port = int(line.split()[1])
        self.http = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        return requests.get(self.http + "/stats", timeout=5).json()

    def connect(self, path: str = "/ws/echo") -> websocket.WebSocket:
        return websocket.create_connection(self.ws + path, timeout=5)

    def stop(self) -> str:
        """Kill if still running; return the server's stderr."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        text = self.stderr
        self.log.close()
        return text

    @property
    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    server = Demo("--max-clients", "20", "--ping-interval", "1")
    yield server
    log = server.stop()
    assert "Traceback" not in log and "Exception" not in log, log


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return check()


def raw_handshake(port: int, path: str) -> tuple[socket.socket, bytes]:
    """A hand-made upgrade request; returns the socket and any bytes after the 101."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def close_code(ws: websocket.WebSocket) -> int:
    """Read until the close frame arrives; return its status code."""
    for _ in range(100):
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", frame.data[:2])[0]
    raise AssertionError("no close frame")


def test_echo_round_trip(demo: Demo) -> None:
    ws = demo.connect()
    ws.send("hello")
    assert ws.recv() == "hello"
    ws.send_binary(b"\x00\x01\xff")
    assert ws.recv() == b"\x00\x01\xff"
    ws.close()


def test_http_and_keep_alive_while_websockets_open(demo: Demo) -> None:
    sockets = [demo.connect() for _ in range(3)]
    with requests.Session() as session:  # one kept-alive connection
        for _ in range(5):
            resp = session.get(demo.http + "/health", timeout=5)
            assert resp.status_code == 200 and resp.json() == {"ok": True}
    assert demo.stats()["active_websockets"] == 3
    for i, ws in enumerate(sockets):  # the WebSockets still work afterwards
        ws.send(f"m{i}")
        assert ws.recv() == f"m{i}"
        ws.close()
    assert wait_until(lambda: demo.stats()["active_websockets"] == 0)


def test_server_push_all_messages_arrive(demo: Demo) -> None:
    ws = demo.connect("/ws/push?n=200")
    assert [ws.recv() for _ in range(200)] == [f"msg {i}" for i in range(200)]
    assert close_code(ws) == 1000
    ws.close()


def upgrade_headers() -> dict[str, str]:
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}


def test_upgrade_request_the_app_refuses_gets_a_normal_response(demo: Demo) -> None:
    # no handshake happened: waitress must send the app's HTTP response itself
    resp = requests.get(demo.http + "/nope", headers=upgrade_headers(), timeout=5)
    assert resp.status_code == 404
    resp = requests.get(demo.http + "/health", headers=upgrade_headers(), timeout=5)
    assert resp.status_code == 400  # werkzeug: WebSocket request to a plain route
    assert wait_until(lambda: demo.stats()["active_websockets"] == 0)


def test_no_http_response_after_101(demo: Demo) -> None:
    sock, data = raw_handshake(demo.port, "/ws/push?n=3")
    end = time.monotonic() + 5
    while time.monotonic() < end:  # read to EOF (server closes after the close frame)
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    frames = b"".join(b"\x81\x05msg %d" % i for i in range(3)) + b"\x88\x02\x03\xe8"
    assert data == frames  # nothing else: no "HTTP/1.1 500", no chunk terminator


def settled_stats(demo: Demo) -> dict:
    """Stats once earlier connections have finished closing (two equal reads)."""
    previous: list[dict] = [{}]

    def stable() -> bool:
        now = demo.stats()
        same, previous[0] = now == previous[0], now
        return same and now["active_websockets"] == 0

    assert wait_until(stable)
    return previous[0]


def test_client_close_frees_server_thread(demo: Demo) -> None:
    base = settled_stats(demo)
    sockets = [demo.connect() for _ in range(5)]
    # cost of one WebSocket: simple_websocket's reader thread (the waitress
    # worker is pre-spawned) and 3 fds (connection, dup, ping selector)
    assert wait_until(lambda: demo.stats() == {
        "active_websockets": 5, "threads": base["threads"] + 5, "fds": base["fds"] + 15})
    for ws in sockets:
        ws.close()
    assert wait_until(lambda: demo.stats() == base), (base, demo.stats())


def test_no_leaks_after_200_cycles(demo: Demo) -> None:
    base = settled_stats(demo)
    for i in range(200):
        ws = demo.connect()
        ws.send(str(i))
        assert ws.recv() == str(i)
        ws.close()

    def settled() -> bool:
        now = demo.stats()
        return (now["active_websockets"] == 0 and now["threads"] <= base["threads"] + 1
                and now["fds"] <= base["fds"] + 2)

    assert wait_until(settled), (base, demo.stats())


def test_vanished_clients_are_freed(demo: Demo) -> None:
    base = demo.stats()["active_websockets"]
    # a) the socket dies without a close frame (FIN only)
    ws = demo.connect()
    ws.sock.close()
    # b) reset (RST) without a close frame
    rst, _ = raw_handshake(demo.port, "/ws/echo")
    rst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rst.close()
    # c) silent peer: the TCP connection stays up but never answers pings
    silent, _ = raw_handshake(demo.port, "/ws/echo")
    assert wait_until(lambda: demo.stats()["active_websockets"] == base, timeout=15)
    silent.close()


def test_max_clients_limit() -> None:
    demo = Demo("--max-clients", "3")
    try:
        sockets = [demo.connect() for _ in range(3)]
        with pytest.raises(websocket.WebSocketBadStatusException) as err:
            demo.connect()
        assert err.value.status_code == 503
        resp = requests.get(demo.http + "/ws/echo", headers=upgrade_headers(), timeout=5)
        assert resp.status_code == 503
        body = resp.json()
        assert body["error"] == "Service Unavailable"
        assert body["message"] == "Too many WebSocket clients (limit 3)"
        assert abs(body["timestamp"] - time.time() * 1000) < 60_000
        assert requests.get(demo.http + "/health", timeout=5).ok  # HTTP unaffected
        sockets.pop().close()
        assert wait_until(lambda: demo.stats()["active_websockets"] == 2)
        sockets.append(demo.connect())
        sockets[-1].send("again")
        assert sockets[-1].recv() == "again"
        for ws in sockets:
            ws.close()
    finally:
        log = demo.stop()
    assert "Traceback" not in log, log


@pytest.mark.parametrize("mode", ["thread", "inline"])
def test_sigterm_closes_websockets_with_1001_and_exits_0(mode: str) -> None:
    # thread: the handler starts a thread calling shutdown(); inline: the handler
    # calls shutdown() itself, on the thread running the waitress loop
    demo = Demo(*(["--inline-shutdown"] if mode == "inline" else []))
    try:
        # echo sockets are closed by the app's shutdown hook, the untracked one
        # by the adapter's own fallback; both must see 1001 (Going Away)
        sockets = [demo.connect(), demo.connect(), demo.connect("/ws/untracked")]
        for ws in sockets:
            ws.send("x")
            assert ws.recv() == "x"
        started = time.monotonic()
        demo.proc.send_signal(signal.SIGTERM)
        assert [close_code(ws) for ws in sockets] == [1001, 1001, 1001]
        assert demo.proc.wait(timeout=8) == 0
        assert time.monotonic() - started < 6
        for ws in sockets:
            ws.close()
    finally:
        log = demo.stop()
    assert "Traceback" not in log and "still running" not in log, log
