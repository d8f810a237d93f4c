"""Sessions' processes in cgroups: found however they escape, ended, and their cgroups removed.

Where this machine lets us create cgroups (as root, or in a delegated cgroup v2 subtree);
skipped elsewhere. The fallback (process groups and the environment mark) is covered here
with cgroups turned off, and in test_procs.py and test_terminal_sessions.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from app.sessions import cgroups, procs
from app.sessions.oslayer import LAYER
from app.sessions.procs import OWNER_VAR, ProcessTable, child_setup, end_marked
from tests.conftest import wait_for
from tests.test_agents import alive
from tests.test_sessions_api import create
from tests.test_terminal_sessions import _processes_named, ready_session, send

TEST_SERVER = f"cgroup-tests-{os.getpid()}"
USABLE = [tree for tree in cgroups.candidates() if cgroups.can_move_children(tree, TEST_SERVER)
          ] if LAYER.has_cgroups else []
needs_cgroups = pytest.mark.skipif(not USABLE, reason="no cgroup hierarchy we may write to"
                                   if LAYER.has_cgroups else "the portable layer has no cgroups")

# Forks twice, leaves its session, ignores SIGHUP and runs with an empty environment: neither
# its process group nor an environment mark leads back to the session that started it.
VANISHING = (
    "import os, signal, sys\n"
    "if os.fork(): os._exit(0)\n"
    "os.setsid()\n"
    "if os.fork(): os._exit(0)\n"
    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    "print(os.getpid(), flush=True)\n"
    "null = os.open('/dev/null', os.O_RDWR)\n"
    "for fd in (0, 1, 2): os.dup2(null, fd)\n"
    "os.execve('/bin/sleep', ['sleep', '60'], {})\n"
)


# The same from a shell, tagged so the test can find it.
def vanishing_command(tag: int) -> str:
    return (f"env -i setsid sh -c 'trap \"\" HUP; exec sleep {tag}' "
            "</dev/null >/dev/null 2>&1 &")


@needs_cgroups
@pytest.mark.parametrize("tree", USABLE, ids=lambda tree: tree.kind)
def test_a_child_that_clears_its_environment_and_leaves_its_session_is_still_ended(
        tree, monkeypatch):
    table = ProcessTable(max_age=0)
    table.cgroups = tree
    monkeypatch.setattr(procs, "PROCESS_TABLE", table)
    tag = f"{TEST_SERVER}/session-{tree.key or 'v2'}/shell"
    env = {**os.environ, OWNER_VAR: tag}
    starter = subprocess.run([sys.executable, "-c", VANISHING], env=env, check=True, timeout=10,
                             capture_output=True, text=True, preexec_fn=child_setup("/", env))
    pid = int(starter.stdout)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        (found,) = [proc for proc in table.snapshot() if proc.pid == pid]
        assert found.owner == "" and found.session != os.getsid(0)  # no mark, a session of its own
        assert os.path.isdir(tree.directory(tag))
        end_marked(f"{TEST_SERVER}/", grace=0.5)
        wait_for(lambda: not alive(pid), timeout=10)
        assert bystander.poll() is None
        assert not os.path.exists(tree.directory(f"{TEST_SERVER}/"))  # removed once empty
    finally:
        bystander.kill()
        bystander.wait()
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        tree.release(f"{TEST_SERVER}/")


def test_without_cgroups_a_child_starts_with_its_mark_alone(monkeypatch):
    table = ProcessTable(max_age=0)
    monkeypatch.setattr(procs, "PROCESS_TABLE", table)
    assert table.track(TEST_SERVER, use_cgroups=False).startswith("process groups")
    env = {**os.environ, OWNER_VAR: f"{TEST_SERVER}/s/shell"}
    child = subprocess.Popen(["sleep", "60"], env=env, preexec_fn=child_setup("/", env))
    try:
        (found,) = [proc for proc in table.snapshot() if proc.pid == child.pid]
        assert found.owner == f"{TEST_SERVER}/s/shell" and found.cgroup == ""
        end_marked(f"{TEST_SERVER}/s/", grace=0.5)
        assert child.wait(10) is not None
    finally:
        child.kill()
        child.wait()


@needs_cgroups
def test_deleting_a_session_ends_what_cleared_its_environment_and_removes_its_cgroup(
        make_server, project):
    server = make_server("--no-rate-limit")
    assert "tracked by cgroup" in server.log_text
    sid = ready_session(server, project)
    other = ready_session(server, project, name="bystander")
    send(server, sid, vanishing_command(7171))
    send(server, other, vanishing_command(7172))
    wait_for(lambda: all(_processes_named(f"sleep {tag}", exact=True) for tag in (7171, 7172)))
    cgroup_dirs = wait_for(lambda: session_cgroups(sid))
    assert server.api("DELETE", f"session/{sid}").status_code == 200
    assert not _processes_named("sleep 7171")
    assert not any(os.path.exists(path) for path in cgroup_dirs)
    assert _processes_named("sleep 7172", exact=True)  # another session's are left alone
    assert server.stop() == 0
    assert not _processes_named("sleep 7172")
    assert not session_cgroups(other)


@needs_cgroups
def test_a_start_after_a_crash_ends_what_cleared_its_environment(make_server, project,
                                                                 tmp_path):
    data = tmp_path / "crashed"
    first = make_server("--no-rate-limit", data_dir=data)
    sid = ready_session(first, project)
    send(first, sid, vanishing_command(7474))
    wait_for(lambda: _processes_named("sleep 7474", exact=True))
    first.stop(signal.SIGKILL)
    time.sleep(0.5)
    assert _processes_named("sleep 7474", exact=True)  # nothing else would ever end it
    second = make_server("--no-rate-limit", data_dir=data)
    assert second.api("GET", f"session/{sid}").status_code == 200
    assert not _processes_named("sleep 7474")
    wait_for(lambda: state_of(second, sid) == "idle")
    assert {os.path.basename(path) for path in session_cgroups(sid)} == {sid, "shell"}  # new


def test_cgroups_can_be_turned_off(make_server, project):
    server = make_server("--no-rate-limit", "--no-cgroups")
    assert "tracked by process groups and the MAESTRO_OWNER environment mark" in server.log_text
    sid = create(server, project)["id"]
    wait_for(lambda: state_of(server, sid) == "idle")
    assert not session_cgroups(sid)


def state_of(server, sid: str) -> str:
    return server.api("GET", f"session/{sid}").json()["session"]["state"]


def session_cgroups(session_id: str) -> list[str]:
    """The cgroup folders of a session, in every hierarchy."""
    found = []
    for tree in cgroups.candidates():
        for directory, _, _ in os.walk(tree.directory("any/").rpartition("/")[0]):
            if f"/{session_id}/" in directory + "/" and "/maestro-" in directory:
                found.append(directory)
    return found
