"""The portable OS layer (oslayer.py, forced with MAESTRO_PLATFORM=portable): what macOS
runs. A server whose pidfd, eventfd and /proc all fail (tests/portable_guard) still runs
terminal and AI sessions end to end, and never even tries them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.sessions.oslayer import PLATFORM_VAR, LinuxLayer, PortableLayer, choose
from app.sessions.procs import OWNER_VAR, server_id
from tests.conftest import wait_for
from tests.test_agents import agent_env, prompt, turns_done
from tests.test_sessions_api import create
from tests.test_terminal_sessions import (
    _processes_named,
    history,
    ready_session,
    send,
    shell_text,
    state,
)

GUARD = Path(__file__).resolve().parent / "portable_guard"


@pytest.fixture
def guarded(make_server, tmp_path):
    """A portable-layer server with the stand-in agents on PATH, and the log of its
    attempts to use pidfd, eventfd or /proc."""
    log = tmp_path / "guard.log"
    env = {**agent_env(), PLATFORM_VAR: "portable", "PORTABLE_GUARD_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")])}
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--interrupt-grace-s", "1", env=env)
    return server, log


def test_without_pidfd_eventfd_or_proc_terminal_and_ai_sessions_work(guarded, project):
    server, log = guarded
    sid = ready_session(server, project)
    send(server, sid, "echo portable-$((6*7))")
    wait_for(lambda: "portable-42\n" in shell_text(server, sid))
    (entry,) = wait_for(lambda: history(server, sid))
    assert entry["exitCode"] == 0
    send(server, sid, "cat > typed.txt")
    wait_for(lambda: state(server, sid) == "waiting_input")  # the degraded detection works
    send(server, sid, "a line")
    server.api("POST", f"session/{sid}/keys", json={"keys": ["C-d"]})
    wait_for(lambda: len(history(server, sid)) == 2)
    assert (project / "typed.txt").read_text() == "a line\n"
    send(server, sid, "sleep 4711 & sleep 4712")
    wait_for(lambda: _processes_named("sleep 4712", sid))
    assert server.api("DELETE", f"session/{sid}").status_code == 200
    wait_for(lambda: not _processes_named("sleep 471", sid))  # found and ended without /proc

    ai = create(server, project, toolType="claude-code")["id"]
    prompt(server, ai, "hello")
    (turn,) = turns_done(server, ai, 1)
    assert turn["fullResponse"] == "Echo: hello" and turn["exitCode"] == 0
    assert not log.exists(), log.read_text()


def test_the_layer_is_chosen_by_the_environment_variable():
    assert isinstance(choose("portable"), PortableLayer)
    assert isinstance(choose("linux"), LinuxLayer)
    with pytest.raises(ValueError, match="MAESTRO_PLATFORM"):
        choose("windows")


@pytest.fixture
def pretenders(tmp_path):
    """Start processes (not ours) that look like they carry a mark; stop them afterwards."""
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *args],
                                   env={"PATH": os.environ["PATH"], **(env or {})},
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait(timeout=30)


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_the_portable_layer_never_ends_a_process_that_only_names_a_mark_in_its_arguments(
        make_server, tmp_path, pretenders, script) -> None:
    """A mark in a process's command line is not in its environment: ps prints both on one
    line, the server must tell them apart."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    mark = f"{OWNER_VAR}={server_id(str(data_dir))}/session/shell"
    in_arguments = pretenders(mark)
    # Ended at start, as what a crashed run of this server left behind would be.
    server = make_server("--token", str(uuid.uuid4()), data_dir=data_dir, script=script,
                         env={PLATFORM_VAR: "portable"})
    assert server.api("GET", "sessions").status_code == 200
    assert in_arguments.poll() is None


def test_the_portable_scan_reads_the_mark_from_the_environment_only(pretenders) -> None:
    owned = pretenders(f"{OWNER_VAR}=decoy/a/shell", env={OWNER_VAR: "real/b/shell"})
    named = pretenders(f"{OWNER_VAR}=decoy/a/shell")
    owners = {proc.pid: proc.owner for proc in PortableLayer().scan(None)}
    assert owners[owned.pid] == "real/b/shell"
    assert owners[named.pid] == ""


def test_rows_a_process_adds_with_a_newline_in_its_arguments_carry_no_mark(
        pretenders, tmp_path, monkeypatch) -> None:
    """BSD and macOS ps print a newline in an argument as is: a process can list a row with
    another's pid and its own environment's mark. procps (Linux) prints a space, so a ps
    that prints as BSD's does stands in, showing the real ps's rows plus that forged one."""
    victim = pretenders()
    forged = f"{victim.pid} {victim.pid} S - x"
    real_ps = shutil.which("ps")
    stand_in = tmp_path / "bin" / "ps"
    stand_in.parent.mkdir()
    stand_in.write_text(f"#!/bin/sh\n{real_ps} \"$@\"\ncase \"$*\" in\n"
                        f"  *' e '*) echo '{forged} {OWNER_VAR}=ours/a/shell' ;;\n"
                        f"  *) echo '{forged}' ;;\nesac\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}")
    listed = [proc for proc in PortableLayer().scan(None) if proc.pid == victim.pid]
    assert [proc.owner for proc in listed] == [""]
