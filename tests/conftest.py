"""Fixtures: the real server as a child process on 127.0.0.1, with a temporary data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.tmuxdesk import Desk

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20
# The base path (--base-path) between port and token is skipped.
LOCAL_URL = re.compile(r"Local:\s+(https?)://127\.0\.0\.1:(\d+)(?:/[\w.~-]+)*/([0-9a-f-]{36})/")


class ServerProcess:
    """`python run.py` (or wsgi.py) on a random free port, read back from its banner."""

    def __init__(self, data_dir: Path, home: Path, args: list[str], script: str = "run.py",
                 env: dict[str, str] | None = None, port: str | None = "0"):
        self.extra_env = env or {}
        self.port_args = [] if port is None else ["--port", port]  # None: no --port at all
        self.data_dir = data_dir
        self.home = home
        self.args = args
        self.script = script
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.token = ""
        self.scheme = "http"  # https when the banner says so (--tls...)
        self.verify: bool | str = True  # for requests over HTTPS: a CA file to trust
        self.output: list[str] = []
        self.errors: list[str] = []

    def start(self, extra: list[str] | None = None) -> ServerProcess:
        # MAESTRO_PLATFORM passes: CI runs the suites again with the portable layer forced.
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("MAESTRO_") or key == "MAESTRO_PLATFORM"}
        env.update(HOME=str(self.home), PYTHONUNBUFFERED="1", **self.extra_env)
        command = [sys.executable, str(ROOT / self.script), "--host", "127.0.0.1",
                   *self.port_args, "--data-dir", str(self.data_dir), *self.args,
                   *(extra or [])]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._collect, args=(self.process.stderr, self.errors),
                         daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        for line in self.process.stdout:
            self.output.append(line)
            match = LOCAL_URL.search(line)
            if match:
                self.scheme, self.port, self.token = (match.group(1), int(match.group(2)),
                                                      match.group(3))
                break
            if time.monotonic() > deadline:
                break
        if not self.port:
            self.process.kill()
            raise RuntimeError("server did not start: " + "".join(self.output + self.errors))
        threading.Thread(target=self._collect, args=(self.process.stdout, self.output),
                         daemon=True).start()
        return self

    @staticmethod
    def _collect(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        return f"{self.base}/{self.token}/{path.lstrip('/')}"

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("verify", self.verify)
        return requests.request(method, self.url("api/" + path.lstrip("/")), **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    @property
    def log_text(self) -> str:
        return "".join(self.errors)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def make_server(tmp_path: Path, home: Path) -> Iterator:
    """Start servers with given flags; every one is stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, script: str = "run.py",
              env: dict[str, str] | None = None, port: str | None = "0") -> ServerProcess:
        """Start a server; `env` adds to (or overrides) the inherited environment; `port`
        None starts it without --port."""
        server = ServerProcess(data_dir or tmp_path / "data", home, list(args), script, env,
                               port)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server) -> ServerProcess:
    """A server with a known token and no rate limits."""
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--interrupt-grace-s", "1")


@pytest.fixture
def push_service():
    """A stand-in push service on 127.0.0.1 (tests/push_service.py)."""
    from tests.push_service import PushService

    service = PushService()
    yield service
    service.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder to run sessions in."""
    path = tmp_path / "project"
    path.mkdir()
    return path


def wait_for(predicate, timeout: float = 15, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def desk(tmp_path: Path, home: Path) -> Iterator[Desk]:
    """tmux at the desk, on a server socket of its own (killed at the end)."""
    desk = Desk(tmp_path / "tmux.sock", home)
    yield desk
    desk.tmux("kill-server", check=False)


@pytest.fixture
def tmux_server(make_server, desk: Desk) -> ServerProcess:
    """A server whose terminal sessions attach to `desk`'s tmux server."""
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--tmux-socket", str(desk.socket))
