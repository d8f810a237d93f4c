"""Terminal sessions through the real server: real bash, real commands, real signals."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import wait_for
from tests.test_sessions_api import create


def shell_text(server, sid: str) -> str:
    """Everything the session's shell printed, as one transcript."""
    entries = server.api("GET", f"session/{sid}/logs?kind=shell&limit=1000").json()["entries"]
    return "".join(entry["text"] for entry in entries if entry["source"] == "stdout")


def state(server, sid: str) -> str:
    return server.api("GET", f"session/{sid}").json()["session"]["state"]


def send(server, sid: str, command: str) -> dict:
    response = server.api("POST", f"session/{sid}/send", json={"command": command})
    assert response.status_code == 200, response.text
    return response.json()


def history(server, sid: str) -> list[dict]:
    return server.api("GET", f"history?sessionId={sid}").json()["entries"]


def ready_session(server, project, **fields) -> str:
    sid = create(server, project, **fields)["id"]
    wait_for(lambda: state(server, sid) == "idle")
    return sid


def test_echo_runs_and_its_output_is_logged(server, project):
    sid = ready_session(server, project)
    body = send(server, sid, "echo hello")
    assert body["success"] is True and body["message"] == "Command sent successfully"
    assert body["mode"] == "command"
    wait_for(lambda: "hello\n" in shell_text(server, sid))
    entries = server.api("GET", f"session/{sid}/logs?kind=shell").json()["entries"]
    assert entries[0]["source"] == "user" and entries[0]["text"] == "echo hello"
    entry = wait_for(lambda: history(server, sid))[0]
    assert entry["summary"] == "echo hello" and entry["exitCode"] == 0
    assert entry["success"] is True and entry["elapsedTimeMs"] >= 0
    assert entry["projectPath"] == str(project) and entry["type"] == "USER"
    assert "hello" in entry["fullResponse"]
    assert state(server, sid) == "idle"


def test_cd_and_export_carry_over_between_commands(server, project, tmp_path):
    sid = ready_session(server, project)
    (tmp_path / "sub dir").mkdir()
    send(server, sid, f"cd '{tmp_path / 'sub dir'}' && export GREETING=howdy")
    wait_for(lambda: history(server, sid))
    send(server, sid, "pwd; echo $GREETING")
    wait_for(lambda: "howdy" in shell_text(server, sid))
    assert f"{tmp_path / 'sub dir'}\nhowdy\n" in shell_text(server, sid)


def test_virtualenv_activation_carries_over(server, project):
    venv = project / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "activate").write_text('export VIRTUAL_ENV_MARK=active\nalias hi="echo hi-there"\n')
    sid = ready_session(server, project)
    send(server, sid, "source .venv/bin/activate")
    wait_for(lambda: history(server, sid))
    send(server, sid, "echo mark=$VIRTUAL_ENV_MARK")
    wait_for(lambda: "mark=active" in shell_text(server, sid))


def test_pipes_end_when_the_reader_stops(server, project):
    """`yes | head` ends: the shell's programs get default SIGPIPE handling, not Python's."""
    sid = ready_session(server, project)
    send(server, sid, "yes | head -n 2; echo pipe-status ${PIPESTATUS[0]}")
    entry = wait_for(lambda: history(server, sid), timeout=20)[0]
    assert entry["exitCode"] == 0
    assert "y\ny\npipe-status 141\n" in shell_text(server, sid)


def test_exit_in_the_shell_is_recorded_with_its_status(server, project):
    sid = ready_session(server, project)
    send(server, sid, "exit 3")
    entry = wait_for(lambda: history(server, sid))[0]
    assert entry["summary"] == "exit 3" and entry["exitCode"] == 3
    wait_for(lambda: "Shell exited" in server.api("GET", f"session/{sid}").text)


def test_exit_codes_and_failures_reach_history(server, project):
    sid = ready_session(server, project)
    send(server, sid, "exit_with() { return $1; }; exit_with 3")
    entry = wait_for(lambda: history(server, sid))[0]
    assert entry["exitCode"] == 3 and entry["success"] is False
    send(server, sid, "ls /definitely/not/here")
    entries = wait_for(lambda: (h := history(server, sid)) and len(h) == 2 and h)
    assert entries[0]["exitCode"] == 2 and "No such file" in entries[0]["fullResponse"]


def test_answering_a_prompt_while_a_command_waits(server, project):
    sid = ready_session(server, project)
    send(server, sid, "read -p 'Continue? [y/N] ' answer; echo you said $answer")
    wait_for(lambda: state(server, sid) == "waiting_input")
    wait_for(lambda: "Continue? [y/N]" in shell_text(server, sid))
    reply = send(server, sid, "y")
    assert reply["mode"] == "input"
    wait_for(lambda: "you said y" in shell_text(server, sid))
    wait_for(lambda: state(server, sid) == "idle")
    assert [entry["summary"] for entry in history(server, sid)] == [
        "read -p 'Continue? [y/N] ' answer; echo you said $answer"]


def test_interrupt_stops_a_runaway_command(server, project):
    sid = ready_session(server, project)
    send(server, sid, "sleep 100")
    wait_for(lambda: state(server, sid) == "busy")
    started = time.monotonic()
    response = server.api("POST", f"session/{sid}/interrupt")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Interrupt signal sent successfully"
    assert body["stoppedBy"] == "SIGINT" and body["wasRunning"] is True
    assert time.monotonic() - started < 30
    entry = wait_for(lambda: history(server, sid))[0]
    assert entry["exitCode"] == 130 and entry["success"] is False
    assert state(server, sid) == "idle"
    assert not _processes_named("sleep 100", sid)


def test_interrupt_escalates_to_sigterm_and_sigkill(server, project):
    sid = ready_session(server, project)
    send(server, sid, "bash -c 'trap \"\" INT; sleep 100'")
    wait_for(lambda: _processes_named("sleep 100", sid))  # the trap is set by then
    assert server.api("POST", f"session/{sid}/interrupt").json()["stoppedBy"] == "SIGTERM"
    wait_for(lambda: state(server, sid) == "idle")
    send(server, sid, "bash -c 'trap \"\" INT TERM; sleep 100'")
    wait_for(lambda: _processes_named("sleep 100", sid))
    assert server.api("POST", f"session/{sid}/interrupt").json()["stoppedBy"] == "SIGKILL"
    wait_for(lambda: state(server, sid) == "idle")
    send(server, sid, "echo still-alive")
    wait_for(lambda: "still-alive" in shell_text(server, sid))


def test_interrupt_with_nothing_running_says_so(server, project):
    sid = ready_session(server, project)
    body = server.api("POST", f"session/{sid}/interrupt").json()
    assert body["success"] is True and body["stoppedBy"] is None and body["wasRunning"] is False


def test_special_keys_reach_the_program(server, project):
    sid = ready_session(server, project)
    send(server, sid, "sleep 101")
    wait_for(lambda: _processes_named("sleep 101", sid))  # a C-c sooner would reach bash only
    assert server.api("POST", f"session/{sid}/keys", json={"keys": ["C-c"]}).status_code == 200
    entry = wait_for(lambda: history(server, sid))[0]
    assert entry["exitCode"] == 130
    send(server, sid, "cat > typed.txt")
    wait_for(lambda: state(server, sid) == "waiting_input")
    send(server, sid, "first line")
    server.api("POST", f"session/{sid}/keys", json={"keys": ["C-d"]})
    wait_for(lambda: len(history(server, sid)) == 2)
    assert (project / "typed.txt").read_text() == "first line\n"


def test_progress_bars_collapse_and_cursor_noise_is_removed(server, project):
    sid = ready_session(server, project)
    send(server, sid, r"printf 'load 10%%\rload 50%%\rload 100%%\n'; "
                      r"printf '\033[2J\033[Hdone \033[31mred\033[0m\n'")
    wait_for(lambda: "done" in shell_text(server, sid))
    text = shell_text(server, sid)
    assert "load 100%\n" in text and "load 10%" not in text
    assert "\x1b[2J" not in text and "\x1b[H" not in text
    assert "\x1b[31mred\x1b[0m" in text


def test_fast_output_is_coalesced_into_few_entries(server, project):
    sid = ready_session(server, project)
    send(server, sid, "seq 1 5000")
    wait_for(lambda: history(server, sid))
    entries = server.api("GET", f"session/{sid}/logs?kind=shell&limit=1000").json()["entries"]
    output = [entry for entry in entries if entry["source"] == "stdout"]
    assert "".join(entry["text"] for entry in output) == "".join(f"{n}\n" for n in range(1, 5001))
    assert len(output) < 100
    assert all(len(entry["text"]) <= 16 * 1024 + 100 for entry in output)


def test_logs_are_capped_and_paged(make_server, project):
    server = make_server("--no-rate-limit", "--log-cap", "20")
    sid = ready_session(server, project)
    for n in range(25):
        send(server, sid, f": {n}")  # each command logs one user entry and no output
        wait_for(lambda n=n: len(history(server, sid)) == n + 1)
    newest = server.api("GET", f"session/{sid}/logs?kind=shell&limit=8").json()
    assert newest["count"] == 8 and newest["hasMore"] is True
    assert newest["entries"][-1]["text"] == ": 24"
    older = server.api("GET", f"session/{sid}/logs?kind=shell&limit=1000"
                              f"&before={newest['entries'][0]['id']}").json()
    assert older["hasMore"] is False
    kept = older["entries"] + newest["entries"]
    assert [entry["text"] for entry in kept] == [f": {n}" for n in range(5, 25)]
    forward = server.api("GET", f"session/{sid}/logs?kind=shell&limit=5"
                                f"&after={kept[0]['id']}").json()
    assert [entry["id"] for entry in forward["entries"]] == [e["id"] for e in kept[1:6]]
    assert forward["hasMore"] is True
    bad = server.api("GET", f"session/{sid}/logs?after=1&before=5")
    assert bad.status_code == 400


def test_exiting_the_shell_starts_a_new_one_with_the_next_command(server, project):
    sid = ready_session(server, project)
    send(server, sid, "exit")
    wait_for(lambda: "Shell exited" in server.api("GET", f"session/{sid}").text)
    assert state(server, sid) == "idle"
    send(server, sid, "echo back")
    wait_for(lambda: "back\n" in shell_text(server, sid))


def test_bad_shell_leaves_session_in_error_with_a_system_entry(make_server, project):
    server = make_server("--no-rate-limit", "--shell", "/no/such/shell")
    sid = create(server, project)["id"]
    wait_for(lambda: state(server, sid) == "error")
    entries = server.api("GET", f"session/{sid}/logs?kind=shell").json()["entries"]
    assert entries[-1]["source"] == "system" and "/no/such/shell" in entries[-1]["text"]
    failed = server.api("POST", f"session/{sid}/send", json={"command": "ls"})
    assert failed.status_code == 503 and "could not start" in failed.json()["message"]


def test_deleting_a_session_ends_its_processes(server, project):
    sid = ready_session(server, project)
    send(server, sid, "sleep 4242 & sleep 4243")
    wait_for(lambda: _processes_named("sleep 4243"))
    assert server.api("DELETE", f"session/{sid}").status_code == 200
    wait_for(lambda: not _processes_named("sleep 424"), timeout=10)


def test_restart_brings_back_sessions_logs_history_and_theme(make_server, project, tmp_path):
    data = tmp_path / "persist"
    first = make_server("--no-rate-limit", "--persistent-token", data_dir=data)
    sid = ready_session(first, project, name="survivor")
    send(first, sid, "echo before-restart")
    wait_for(lambda: history(first, sid))
    first.api("PUT", "theme", json={"id": "gruvbox-dark"})
    assert first.stop() == 0

    second = make_server("--no-rate-limit", "--persistent-token", data_dir=data)
    assert second.token == first.token
    session = second.api("GET", f"session/{sid}").json()["session"]
    assert session["name"] == "survivor"
    assert "before-restart" in shell_text(second, sid)
    assert history(second, sid)[0]["summary"] == "echo before-restart"
    assert second.api("GET", "theme").json()["theme"]["id"] == "gruvbox-dark"
    wait_for(lambda: state(second, sid) == "idle")
    send(second, sid, "echo after-restart")
    wait_for(lambda: "after-restart" in shell_text(second, sid))


def test_command_running_when_the_server_died_is_marked_interrupted(make_server, project,
                                                                     tmp_path):
    data = tmp_path / "crash"
    first = make_server("--no-rate-limit", data_dir=data)
    sid = ready_session(first, project)
    send(first, sid, "sleep 4711")
    wait_for(lambda: state(first, sid) == "busy")
    first.stop(signal.SIGKILL)
    for pid in _processes_named("sleep 4711"):
        os.kill(pid, signal.SIGKILL)  # the killed server could not clean up after itself

    second = make_server("--no-rate-limit", data_dir=data)
    entries = second.api("GET", f"session/{sid}/logs?kind=shell").json()["entries"]
    assert any(e["source"] == "system" and "interrupted" in e["text"] and "sleep 4711" in
               e["text"] for e in entries)
    entry = history(second, sid)[0]
    assert entry["summary"] == "sleep 4711" and entry["success"] is False


def test_stopping_the_server_ends_every_shell(make_server, project):
    server = make_server("--no-rate-limit")
    sid = ready_session(server, project)
    send(server, sid, "sleep 5151")
    wait_for(lambda: _processes_named("sleep 5151"))
    assert server.stop() == 0
    wait_for(lambda: not _processes_named("sleep 5151"), timeout=10)


# Escapes the shell's session (setsid) and ignores SIGHUP, as daemons and `nohup` do.
def _escaper(tag: int) -> str:
    return f"setsid sh -c 'trap \"\" HUP; exec sleep {tag}' </dev/null >/dev/null 2>&1 &"


# The process groups and environment marks find these alone, and with cgroups.
TRACKING = pytest.mark.parametrize("tracking", [[], ["--no-cgroups"]],
                                   ids=["default", "no-cgroups"])


@TRACKING
def test_deleting_a_session_ends_processes_that_left_its_terminal(make_server, project,
                                                                  tracking):
    server = make_server("--no-rate-limit", "--interrupt-grace-s", "1", *tracking)
    sid = ready_session(server, project)
    send(server, sid, _escaper(6161) + " (setsid sleep 6162 &); sleep 6163")
    wait_for(lambda: all(_processes_named(f"sleep {tag}") for tag in (6161, 6162, 6163)))
    other = ready_session(server, project, name="bystander")
    send(server, other, _escaper(6164))
    wait_for(lambda: _processes_named("sleep 6164"))
    assert server.api("DELETE", f"session/{sid}").status_code == 200
    wait_for(lambda: not any(_processes_named(f"sleep {tag}") for tag in (6161, 6162, 6163)),
             timeout=10)
    assert _processes_named("sleep 6164")  # another session's processes are left alone


@TRACKING
def test_stopping_the_server_ends_processes_that_left_the_terminal(make_server, project,
                                                                   tracking):
    server = make_server("--no-rate-limit", *tracking)
    sid = ready_session(server, project)
    send(server, sid, _escaper(6262))
    wait_for(lambda: _processes_named("sleep 6262"))
    assert server.stop() == 0
    assert not _processes_named("sleep 6262")


@TRACKING
def test_a_start_after_a_crash_ends_what_the_crashed_server_left_running(
        make_server, project, tmp_path, tracking):
    data = tmp_path / "crashed"
    first = make_server("--no-rate-limit", *tracking, data_dir=data)
    sid = ready_session(first, project)
    send(first, sid, _escaper(6363))
    wait_for(lambda: _processes_named("sleep 6363", exact=True))  # its trap is set
    first.stop(signal.SIGKILL)
    time.sleep(0.5)
    assert _processes_named("sleep 6363")  # nothing else would ever end it
    elsewhere = make_server("--no-rate-limit", data_dir=tmp_path / "another")
    assert elsewhere.api("GET", "sessions").status_code == 200
    assert _processes_named("sleep 6363")  # a server with another data dir leaves it alone
    second = make_server("--no-rate-limit", *tracking, data_dir=data)
    assert second.api("GET", f"session/{sid}").status_code == 200
    assert not _processes_named("sleep 6363")


def _processes_named(fragment: str, session_id: str | None = None,
                     exact: bool = False) -> list[int]:
    """Pids of live processes whose command line contains `fragment` (is it, with `exact`)
    (and, with `session_id`, that a session of that id started: other tests may run the same
    command)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as handle:
                if handle.read().split(")")[-1].split()[0] == "Z":
                    continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        if session_id is not None and f"MAESTRO_SESSION_ID={session_id}".encode() not in environ:
            continue
        if (cmdline.strip() == fragment if exact else fragment in cmdline
                and "pytest" not in cmdline):
            pids.append(int(entry))
    return pids


def test_a_command_sent_while_the_shell_starts_keeps_its_output_in_history(server, project):
    for n in range(3):
        sid = create(server, project, name=f"early {n}")["id"]  # still connecting
        send(server, sid, f"echo early-bird-{n}")
        entry = wait_for(lambda sid=sid: history(server, sid))[0]
        assert entry["fullResponse"] == f"early-bird-{n}\n"


def test_hostile_escape_sequences_in_output_leave_the_session_usable(server, project):
    sid = ready_session(server, project)
    send(server, sid, r"printf 'x\e[99999999999999999999Cy\e[50000000Cz\n'; echo survived")
    wait_for(lambda: "survived\n" in shell_text(server, sid))
    wait_for(lambda: history(server, sid) and state(server, sid) == "idle")
    assert history(server, sid)[0]["exitCode"] == 0
    send(server, sid, "echo still-here")
    wait_for(lambda: "still-here\n" in shell_text(server, sid))
    assert server.api("DELETE", f"session/{sid}").status_code == 200
