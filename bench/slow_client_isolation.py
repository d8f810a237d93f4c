"""Does a stalled WebSocket client slow a flooding command or the other clients?

    python3 -m bench.slow_client_isolation [lines]

For each server, runs `seq 1 N` in a terminal session three times with one reading client
and three times with a reading client plus one that never reads, and prints the median
time until the reading client sees the command's exit, and the ratio (stalled / alone).
A ratio near 1.0 means the stalled client costs nothing.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import sys
import time

import requests

from bench import SERVERS, temporary_server
from tests.conftest import ServerProcess
from tests.wsclient import LiveClient


def flood_seconds(server: ServerProcess, sid: str, lines: int, stalled: bool) -> float:
    reader = LiveClient(server, session_id=sid)
    idle = None
    if stalled:
        idle = LiveClient(server, session_id=sid,
                          sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    started = time.monotonic()
    server.api("POST", f"session/{sid}/send", json={"command": f"seq 1 {lines}"})
    reader.wait_for(lambda m: m["type"] == "session:exit", timeout=300)
    elapsed = time.monotonic() - started
    reader.close()
    if idle is not None:
        with contextlib.suppress(OSError):
            idle.close()
    return elapsed


def run(script: str, lines: int) -> tuple[float, float]:
    with temporary_server(script, "--client-queue-size", "200") as (server, project):
        body = {"name": "flood", "cwd": str(project), "toolType": "terminal"}
        sid = server.api("POST", "sessions", json=body).json()["session"]["id"]
        for _ in range(100):
            if requests.get(server.url(f"api/session/{sid}"), timeout=10).json()[
                    "session"]["state"] == "idle":
                break
            time.sleep(0.1)
        alone, with_stalled = [], []
        for _ in range(3):  # interleaved, so drift on a shared machine hits both alike
            alone.append(flood_seconds(server, sid, lines, stalled=False))
            with_stalled.append(flood_seconds(server, sid, lines, stalled=True))
    return statistics.median(alone), statistics.median(with_stalled)


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"seq 1 {lines} (~{lines * 7 // 1_000_000} MB of output)")
    print(f"{'server':10} {'alone s':>9} {'+stalled s':>11} {'ratio':>6}")
    for script in SERVERS:
        alone, stalled = run(script, lines)
        print(f"{script:10} {alone:9.2f} {stalled:11.2f} {stalled / alone:6.2f}")


if __name__ == "__main__":
    main()
