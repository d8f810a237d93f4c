"""ttyd 1.7.7, the reference of goals 1 and 2 (issue 14): a shell in a PTY behind one WebSocket.

Debian 12 has no ttyd package: .ci/build-ttyd builds it from the source vendored in
bench/reference/ttyd into ${MAESTRO_CI_CACHE:-~/.cache/maestro-web-ci}/ttyd-1.7.7/ttyd
($MAESTRO_TTYD names another binary). It runs `bash --norc --noprofile` with a throw-away HOME
on 127.0.0.1, writable (-W), one process per measure, killed after.

Its protocol (bench/reference/ttyd/src/protocol.c, server.h): WebSocket path /ws, subprotocol
`tty`; the client's first message is JSON ({"AuthToken", "columns", "rows"}), which spawns the
command; then input is the ASCII byte '0' followed by the bytes, and output a binary message
whose first byte is '0' (OUTPUT; '1' is the title, '2' the preferences). When the command
exits, ttyd closes the socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import websocket

from bench.fanout import cpu_seconds
from bench.reference import free_port, stop

INPUT = b"0"
OUTPUT = ord("0")
PROMPT = b"ttyd-bench$ "
START_TIMEOUT_S = 15
TIMEOUT_S = 300


def binary() -> Path:
    root = os.environ.get("MAESTRO_CI_CACHE") or os.path.expanduser("~/.cache/maestro-web-ci")
    return Path(os.environ.get("MAESTRO_TTYD") or Path(root) / "ttyd-1.7.7" / "ttyd")


def unavailable() -> str | None:
    """Why ttyd cannot run here (and how to build it), or None."""
    path = binary()
    if os.access(path, os.X_OK):
        return None
    return f"ttyd not built: {path} is missing; run `bash .ci/build-ttyd` (or set MAESTRO_TTYD)"


class Terminal:
    """One client of a running ttyd: `send` types, `read` returns the next output bytes."""

    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process = process
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/ws", subprotocols=["tty"], timeout=TIMEOUT_S,
            skip_utf8_validation=True)
        self.ws.send(json.dumps({"AuthToken": "", "columns": 80, "rows": 24}))

    def send(self, text: str) -> None:
        self.ws.send_binary(INPUT + text.encode())

    def read(self) -> bytes | None:
        """The next OUTPUT message's bytes (b"" for another kind), None once ttyd closed."""
        try:
            opcode, data = self.ws.recv_data(control_frame=True)
        except websocket.WebSocketConnectionClosedException:
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return None
        return data[1:] if data[:1] == bytes([OUTPUT]) else b""

    def read_until(self, ending: bytes, seen: bytes = b"") -> bytes:
        """Output until it contains `ending` (or ttyd closes); what came, with `seen` first."""
        while ending not in seen:
            data = self.read()
            if data is None:
                break
            seen += data
        return seen


@contextlib.contextmanager
def running() -> Iterator[Terminal]:
    """ttyd with one connected client whose shell shows its prompt; killed afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
               "PS1": PROMPT.decode(), "LANG": "C.UTF-8"}
        process = subprocess.Popen(
            [str(binary()), "-p", str(port), "-i", "127.0.0.1", "-W", "-o",
             "bash", "--norc", "--noprofile"],
            env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        terminal = None
        try:
            _wait_listening(port, process)
            terminal = Terminal(process, port)
            terminal.read_until(PROMPT)
            yield terminal
        finally:
            if terminal is not None:
                terminal.ws.close()
            stop(process)


def _wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ttyd exited with {process.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"ttyd did not listen on {port} within {START_TIMEOUT_S} s")


def throughput(lines: int) -> dict[str, float]:
    """Seconds and ttyd's CPU-seconds for `seq 1 lines; exit` typed into its shell, read to
    the end by one client (the same command and shell-in-a-PTY path as ours_throughput)."""
    with running() as terminal:
        before = cpu_seconds(terminal.process.pid)
        started = time.perf_counter()
        terminal.send(f"seq 1 {lines}; exit\r")
        received = 0
        while (data := terminal.read()) is not None:
            received += len(data)
        seconds = time.perf_counter() - started
        spent = cpu_seconds(terminal.process.pid) - before
    return {"seconds": seconds, "cpu_s": spent, "received_bytes": received}


def echo_latencies(count: int) -> list[float]:
    """Milliseconds from typing `echo hi` to the first byte of its output `hi` at the client
    (the PTY's echo of the typed line, and bash's bracketed-paste switch, come before it and
    are not counted)."""
    results = []
    with running() as terminal:
        for _ in range(count):
            started = time.perf_counter()
            terminal.send("echo hi\r")
            seen = terminal.read_until(b"echo hi\r\n")
            seen = terminal.read_until(b"hi\r\n", seen[seen.index(b"echo hi\r\n") + 9:])
            results.append((time.perf_counter() - started) * 1000)
            terminal.read_until(PROMPT, seen)
    return results
