"""Every byte the server writes to a WebSocket is part of a whole, well-formed frame, even
while a slow reader keeps its sends blocked and pings and pongs go out (both launchers)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.rawws import OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT, RawWebSocket
from tests.test_terminal_sessions import ready_session, send

FLOOD_LINES = 500_000  # about 3.4 MB of output, a few hundred messages
MAX_FRAMES = 100_000  # far more than the flood makes: the loop always ends
DEADLINE_S = 120
CLIENT_PING_EVERY_S = 0.02  # each one makes the server's reader thread write a pong


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_frames_stay_whole_for_a_slow_reader_while_pings_and_pongs_go_out(
        make_server, script, project):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--ws-ping-interval-s", "1", "--client-queue-size", "100000",
                         script=script)
    sid = ready_session(server, project)
    # A tiny window and small segments keep the server's sends blocked mid-frame most of
    # the time, while its send buffer stays small enough for pongs to come back in time.
    client = RawWebSocket(server.port, f"/{server.token}/ws?sessionId={sid}",
                          rcvbuf=4096, mss=1024, read_piece=512, read_pause_s=0.0002)
    send(server, sid, f"seq 1 {FLOOD_LINES}")
    messages, server_pings, pongs, last_type = 0, 0, 0, None
    next_ping = 0.0
    deadline = time.monotonic() + DEADLINE_S
    try:
        for _ in range(MAX_FRAMES):
            assert time.monotonic() < deadline, f"flood not over after {messages} messages"
            if time.monotonic() >= next_ping:
                client.send_frame(OPCODE_PING, b"client")
                next_ping = time.monotonic() + CLIENT_PING_EVERY_S
            opcode, payload = client.next_frame()
            if opcode == OPCODE_PING:
                server_pings += 1
                client.send_frame(OPCODE_PONG, payload)
            elif opcode == OPCODE_PONG:
                assert payload == b"client"
                pongs += 1
            elif opcode == OPCODE_CLOSE:
                break
            else:
                assert opcode == OPCODE_TEXT, f"opcode {opcode:#x} after {messages} messages"
                message = json.loads(payload.decode("utf-8"))  # a torn frame fails here
                messages += 1
                last_type = message["type"]
                if last_type == "session:exit":
                    break
    finally:
        client.close()
    assert last_type == "session:exit", f"closed after {messages} messages"
    assert server_pings >= 1 and pongs >= 10, (server_pings, pongs)
    assert messages >= 100
