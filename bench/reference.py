"""The reference servers of `python3 -m bench`: bare Fastify + ws (npm) and bare Flask+waitress.

Both serve the bytes our server answered (so every server sends the same bodies) and run as
separate processes on 127.0.0.1. The npm packages (pinned in reference/package.json) are
installed once into ${MAESTRO_CI_CACHE:-~/.cache/maestro-web-ci}/bench-node, outside the clone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent / "reference"
START_TIMEOUT_S = 30


def cache_folder() -> Path:
    root = os.environ.get("MAESTRO_CI_CACHE") or os.path.expanduser("~/.cache/maestro-web-ci")
    return Path(root) / "bench-node"


def node_unavailable() -> str | None:
    """Why the Fastify reference cannot run here, or None once its packages are installed."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node/npm are not installed"
    folder = cache_folder()
    wanted = (HERE / "package.json").read_bytes()
    marker = folder / "installed-package.json"  # written once npm install has succeeded
    if not marker.exists() or marker.read_bytes() != wanted:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_bytes(wanted)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                              cwd=folder, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            return "npm install failed: " + done.stderr.strip()[-300:]
        marker.write_bytes(wanted)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Reference:
    """A reference server process; `url` is its base URL, `pid` what /proc is read for."""

    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process, self.port = process, port
        self.url = f"http://127.0.0.1:{port}"
        self.pid = process.pid


@contextlib.contextmanager
def _running(command: list[str], port: int,
             env: dict[str, str] | None = None) -> Iterator[Reference]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, **(env or {})})
    try:
        line = process.stdout.readline()  # "listening PORT" once it accepts connections
        if not line.startswith("listening"):
            raise RuntimeError(f"{command[0]} reference did not start: "
                               + line + process.stderr.read()[-500:])
        yield Reference(process, port)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@contextlib.contextmanager
def bodies(sessions: bytes, session: bytes, messages: list[str]) -> Iterator[list[str]]:
    """The three files the references serve, in a throw-away folder."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / name for name in ("sessions.json", "session.json", "messages.txt")]
        paths[0].write_bytes(sessions)
        paths[1].write_bytes(session)
        paths[2].write_text("\n".join(messages) + "\n")
        yield [str(path) for path in paths]


@contextlib.contextmanager
def fastify(files: list[str]) -> Iterator[Reference]:
    port = free_port()
    env = {"NODE_PATH": str(cache_folder() / "node_modules")}
    with _running(["node", str(HERE / "server.js"), str(port), *files], port, env) as ref:
        yield ref


@contextlib.contextmanager
def flask_waitress(files: list[str]) -> Iterator[Reference]:
    port = free_port()
    with _running([sys.executable, str(HERE / "flask_app.py"), str(port), *files[:2]],
                  port) as ref:
        yield ref
