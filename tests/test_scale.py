"""wsgi.py serves hundreds of WebSocket clients past descriptor 1024 and stays up."""

from __future__ import annotations

import os
import resource
import uuid
from pathlib import Path

import pytest
import requests
import websocket

from tests.conftest import ROOT, wait_for
from tests.test_sessions_api import assert_error
from tests.test_terminal_sessions import ready_session
from tests.wsclient import LiveClient

CLIENTS = 600
SHELLS = 3
FDS_NEEDED = 4096  # ~3 per WebSocket on each side, plus shells and headroom
FEW_FDS = 200
SHELL_FDS = 80  # for the server and a dozen shells


@pytest.fixture
def fd_room():
    """This process needs a descriptor per client too: raise its soft limit (restored)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FDS_NEEDED:
        pytest.skip(f"hard RLIMIT_NOFILE {hard} < {FDS_NEEDED}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FDS_NEEDED), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_600_websocket_clients_and_shells_past_fd_1024(make_server, project, fd_room):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--max-clients", str(CLIENTS + 10), script="wsgi.py")
    sessions = [ready_session(server, project, name=f"shell-{n}") for n in range(SHELLS)]
    clients: list[LiveClient] = []
    try:
        for _ in range(CLIENTS):
            client = LiveClient(server, timeout=30)  # each waits for its `init`
            assert len(client.init["sessions"]) == SHELLS
            clients.append(client)
        fds = [int(fd) for fd in os.listdir(f"/proc/{server.process.pid}/fd")]
        assert max(fds) >= 1024, "the test never took the server past select()'s limit"
        assert server.process.poll() is None
        assert requests.get(server.base + "/health", timeout=10).status_code == 200
        listed = server.api("GET", "sessions")
        assert listed.status_code == 200 and listed.json()["count"] == SHELLS
        assert clients[-1].request({"type": "ping"}, "pong")
        assert clients[0].request({"type": "ping"}, "pong")
    finally:
        for client in clients:
            client.close()
    assert server.api("GET", f"session/{sessions[0]}").status_code == 200
    assert "filedescriptor out of range" not in server.log_text


def _with_few_fds(tmp_path: Path, script: str, limit: int) -> Path:
    """A launcher that runs `script` under a hard descriptor limit it cannot raise."""
    launcher = tmp_path / f"few_fds_{script}"
    launcher.write_text(
        "import resource, runpy, sys\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"runpy.run_path({str(ROOT / script)!r}, run_name='__main__')\n")
    return launcher


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_running_out_of_descriptors_refuses_connections_and_keeps_serving(
        make_server, tmp_path, script):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--max-clients", "1000",
                         script=str(_with_few_fds(tmp_path, script, FEW_FDS)))
    clients: list[LiveClient] = []
    refusals: list[str] = []
    try:
        for _ in range(FEW_FDS):  # ~3 descriptors each: the limit comes long before
            try:
                clients.append(LiveClient(server, timeout=10))
            except websocket.WebSocketBadStatusException as exc:
                refusals.append(exc.status_code)
            except websocket.WebSocketTimeoutException:
                pytest.fail(f"connection {len(clients) + 1} left hanging, not refused")
            if len(refusals) >= 5:
                break
        assert refusals == [503] * 5 and len(clients) >= 20, (len(clients), refusals)
        assert server.process.poll() is None
    finally:
        for client in clients:
            client.close()
    # The closed clients' descriptors come back as their handler threads notice (slower on a
    # loaded machine).
    wait_for(lambda: requests.get(server.base + "/health", timeout=10).status_code == 200,
             timeout=60)
    assert server.api("GET", "sessions").status_code == 200
    LiveClient(server).close()
    assert server.process.poll() is None


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_a_shell_that_cannot_get_descriptors_is_refused_with_507_and_the_server_goes_on(
        make_server, tmp_path, project, script):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         script=str(_with_few_fds(tmp_path, script, SHELL_FDS)))
    body = {"name": "one too many", "cwd": str(project), "toolType": "terminal"}
    created, refusal = [], None
    for _ in range(SHELL_FDS):  # each shell holds a few descriptors: the limit comes first
        response = server.api("POST", "sessions", json=body, timeout=10)
        if response.status_code == 201:
            created.append(response.json()["session"]["id"])
        elif response.status_code == 507:
            refusal = response
            break
        else:  # the one spare descriptor refuses a connection accept() could not take
            assert response.status_code == 503, response.text
    assert refusal is not None and created, f"{len(created)} created, never refused"
    assert_error(refusal, 507, "out of resources for another shell")
    sessions = server.api("GET", "sessions").json()["sessions"]
    assert sorted(s["id"] for s in sessions) == sorted(created)  # none half made
    assert all(s["state"] != "error" for s in sessions)
    assert server.api("DELETE", f"session/{created[0]}").status_code == 200
    wait_for(lambda: server.api("POST", "sessions", json=body, timeout=10).status_code == 201,
             timeout=30)  # its descriptors back, a shell starts again
    assert server.process.poll() is None
