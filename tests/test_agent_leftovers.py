"""An agent's children that escaped as daemons do (setsid, a double fork, SIGHUP ignored)
end with its session, with the server, and at the next start after a crash."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

from tests.conftest import wait_for
from tests.test_agents import agent_env, alive, hanging_pids, prompt
from tests.test_sessions_api import create
from tests.test_terminal_sessions import TRACKING


def escaped_pid(project: Path) -> int:
    """The stand-in's escaped child, alive and no longer the agent's (init adopted it)."""
    pid_file = project / ".standin-escaped"
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    assert fields[1] == "1" or alive(pid)  # reparented (or to a subreaper): out of reach
    return pid


def agent_server(make_server, tracking: list[str], data_dir: Path | None = None):
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--interrupt-grace-s",
                       "1", *tracking, env=agent_env(), data_dir=data_dir)


def escaping_agent(server, project: Path) -> tuple[str, int]:
    """A claude session whose agent left an escaped child and still works (hangs)."""
    sid = create(server, project, toolType="claude-code")["id"]
    prompt(server, sid, "escape hang")
    hanging_pids(project)  # the agent is past escape() and running
    return sid, escaped_pid(project)


@TRACKING
def test_deleting_a_session_ends_what_its_agent_let_escape(make_server, project, tracking):
    server = agent_server(make_server, tracking)
    sid, pid = escaping_agent(server, project)
    assert alive(pid)
    assert server.api("DELETE", f"session/{sid}").status_code == 200
    wait_for(lambda: not alive(pid), timeout=10)


@TRACKING
def test_stopping_the_server_ends_what_agents_let_escape(make_server, project, tracking):
    server = agent_server(make_server, tracking)
    _, pid = escaping_agent(server, project)
    assert server.stop() == 0
    assert not alive(pid)


@TRACKING
def test_a_start_after_a_crash_ends_what_the_crashed_servers_agents_let_escape(
        make_server, project, tmp_path, tracking):
    data = tmp_path / "crashed"
    first = agent_server(make_server, tracking, data)
    _, pid = escaping_agent(first, project)
    left = [pid, *hanging_pids(project)]  # the escapee, the agent and its child
    first.stop(signal.SIGKILL)
    assert all(alive(each) for each in left)  # a crashed server ends nothing
    second = agent_server(make_server, tracking, data)
    assert second.api("GET", "sessions").status_code == 200
    wait_for(lambda: not any(alive(each) for each in left), timeout=10)
