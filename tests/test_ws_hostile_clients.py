"""Hostile WebSocket clients against the one loop thread that serves every socket
(app/serving/ws_loop.py), under both launchers: none may grow the server's memory without
bound, stall the loop, or take it down for the other clients."""

from __future__ import annotations

import uuid

import pytest

from tests.rawws import OPCODE_PING, RawWebSocket
from tests.wsclient import LiveClient

MB = 1024 * 1024


@pytest.fixture(params=["run.py", "wsgi.py"])
def script(request) -> str:
    return request.param


@pytest.fixture
def ws_server(make_server, script):
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit", script=script)


def resident_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def masked_frame(first_byte: int, payload: bytes) -> bytes:
    """A client frame with an all-zero mask (the payload goes as is), length < 126."""
    return bytes([first_byte, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def test_a_client_that_pings_without_reading_cannot_grow_the_servers_memory(ws_server):
    hostile = RawWebSocket(ws_server.port, f"/{ws_server.token}/ws", rcvbuf=4096)
    before = resident_kb(ws_server.process.pid)
    pings = masked_frame(0x80 | OPCODE_PING, b"p" * 125) * 1000
    for _ in range(48 * MB // len(pings)):  # 48 MB of pings, not one pong read
        hostile.sock.sendall(pings)
    grown_mb = (resident_kb(ws_server.process.pid) - before) / 1024
    assert grown_mb < 16, f"the server kept {grown_mb:.0f} MB of pongs"
    other = LiveClient(ws_server)  # and the loop still serves everyone
    assert other.init["type"] == "init"
    other.close()
    hostile.close()
