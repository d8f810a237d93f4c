"""Hostile WebSocket clients against the one loop thread that serves every socket
(app/serving/ws_loop.py), under both launchers: none may grow the server's memory without
bound, stall the loop, or take it down for the other clients."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.rawws import OPCODE_PING, OPCODE_PONG, RawWebSocket
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


def test_messages_sent_in_tiny_fragments_hold_no_more_memory_than_their_size(make_server,
                                                                            script):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--max-ws-message-bytes", str(MB), script=script)
    before = resident_kb(server.process.pid)
    clients = []
    for _ in range(2):
        client = RawWebSocket(server.port, f"/{server.token}/ws")
        client.next_frame()  # init
        client.sock.sendall(masked_frame(0x01, b"ab"))  # a text message begins...
        pieces = masked_frame(0x00, b"ab") * 10_000
        for _ in range(50):  # ... and goes on in 2-byte fragments, to just under 1 MB
            client.sock.sendall(pieces)
        client.send_frame(OPCODE_PING, b"all read?")  # its pong: every fragment was read
        while client.next_frame() != (OPCODE_PONG, b"all read?"):
            pass
        clients.append(client)
    grown_mb = (resident_kb(server.process.pid) - before) / 1024
    assert grown_mb < 16, f"2 unfinished messages of 1 MB each held {grown_mb:.0f} MB"
    for client in clients:
        client.close()


def test_simultaneous_handshakes_cannot_open_more_than_max_clients(make_server, script):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--max-clients", "3",
                         script=script)
    start = threading.Barrier(40)
    opened: list[RawWebSocket] = []
    refused: list[str] = []

    def connect() -> None:
        start.wait()
        try:
            opened.append(RawWebSocket(server.port, f"/{server.token}/ws"))
        except ConnectionError as refusal:
            refused.append(str(refusal).split()[1])  # the status code

    threads = [threading.Thread(target=connect) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 3 and set(refused) == {"503"}
    for client in opened:
        client.close()
