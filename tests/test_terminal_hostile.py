"""Hostile output and input against the terminal view, black-box: a real server, real bash,
the raw stream, the screen model, the key paths (see docs/terminal-protocol.md).
"""

from __future__ import annotations

import base64
import shlex
import sys
import threading
import time

import pyte
import pytest
import requests

from app.sessions.screen_model import _Screen
from tests.conftest import wait_for
from tests.test_terminal_sessions import history, ready_session, send, state
from tests.test_terminal_view import pty_client, screen, screen_text
from tests.wsclient import LiveClient


def python_output(code: str) -> str:
    """A shell command that runs `code` with this Python (hostile output made to measure)."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_a_flood_of_combining_marks_neither_stalls_the_shell_nor_the_screen(server, project):
    sid = ready_session(server, project)
    # 600 KB of accents on one letter: pyte re-normalised the whole cell at every mark.
    send(server, sid, python_output(
        "import sys; sys.stdout.write('a' + chr(0x301) * 300000 + chr(10)); print('after')"))
    entry = wait_for(lambda: history(server, sid), timeout=60)[0]
    assert entry["exitCode"] == 0
    assert server.api("POST", f"session/{sid}/resize", json={"cols": 100, "rows": 30}).ok
    lines = screen(server, sid)["lines"]
    accented = next(line for line in lines if line.startswith("a") or line.startswith("\u00e1"))
    assert len(accented) <= 16 and any(line == "after" for line in lines)


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_stop_still_works_after_a_key_and_resize_flood_used_the_key_budget(make_server, project,
                                                                          script):
    server = make_server("--key-rate", "2", "--interrupt-grace-s", "1", script=script)
    sid = ready_session(server, project)
    send(server, sid, "sleep 300")
    wait_for(lambda: state(server, sid) == "busy")
    resized = [server.api("POST", f"session/{sid}/resize", json={"cols": 80, "rows": 24})
               for _ in range(12)]
    assert resized[-1].status_code == 429  # a resize loop (or a stuck key) spent the budget
    client = LiveClient(server, session_id=sid)
    for _ in range(10):  # the socket's keys are refused as well
        client.send({"type": "input", "sessionId": sid, "data": "x"})
    client.wait_for(lambda m: m["type"] == "error" and m.get("code") == "rate_limited")
    assert server.api("POST", f"session/{sid}/input", json={"data": "x"}).status_code == 429
    stopped = server.api("POST", f"session/{sid}/interrupt")
    assert stopped.status_code == 200, stopped.text
    wait_for(lambda: state(server, sid) == "idle")
    send(server, sid, "sleep 300")
    wait_for(lambda: state(server, sid) == "busy")
    reply = client.request({"type": "interrupt", "sessionId": sid}, "interrupt_result")
    assert reply["success"] is True
    wait_for(lambda: state(server, sid) == "idle")


def test_a_twenty_megabyte_line_flows_like_a_line_flood(server, project):
    sid = ready_session(server, project)
    # Parsed character by character, one long line took the reader ~7 s per MB.
    send(server, sid, "head -c 20000000 /dev/zero | tr '\\0' x; echo; echo after")
    entry = wait_for(lambda: history(server, sid), timeout=60)[0]
    assert entry["exitCode"] == 0
    lines = screen(server, sid)["lines"]
    assert "x" * 100 in "".join(lines) and "after" in lines


def test_a_program_flipping_the_full_screen_fast_leaves_one_log_line(server, project):
    sid = ready_session(server, project)
    send(server, sid, python_output(
        "import sys, time\n"
        "for _ in range(300):\n"
        "    sys.stdout.write('\\x1b[?1049hX\\x1b[?1049l\\n')\n"
        "    sys.stdout.flush(); time.sleep(0.002)"))
    wait_for(lambda: history(server, sid), timeout=60)
    entries = server.api("GET", f"session/{sid}/logs?kind=shell&limit=1000").json()["entries"]
    notices = [entry for entry in entries if "full screen" in entry["text"]]
    assert len(notices) == 1 and notices[0]["source"] == "system"


def test_keys_a_program_does_not_read_get_a_409_and_stop_still_works(server, project):
    sid = ready_session(server, project)
    send(server, sid, python_output("import time, tty; tty.setraw(0); time.sleep(300)"))
    wait_for(lambda: state(server, sid) == "busy")
    flood = server.api("POST", f"session/{sid}/keys", json={"keys": ["Space"] * 100_000})
    assert flood.status_code == 409, flood.text
    assert "not reading" in flood.json()["message"]
    assert server.api("POST", f"session/{sid}/interrupt").status_code == 200
    wait_for(lambda: state(server, sid) == "idle")


def _painted_then_streamed(before: dict, viewer: LiveClient, end: int) -> list[str]:
    """What a client shows: the screen `before` painted, then the raw stream up to `end`."""
    viewer.wait_until(lambda _: sum(len(base64.b64decode(event["data"])) + event["offset"] >= end
                                    for event in viewer.events("session:pty")) > 0, timeout=60)
    raw = bytearray()
    for event in viewer.events("session:pty"):
        data = base64.b64decode(event["data"])
        raw += data[max(0, before["offset"] + len(raw) - event["offset"]):]
    terminal = _Screen(before["cols"], before["rows"])
    pyte.ByteStream(terminal).feed(before["ansi"].encode() + bytes(raw[:end - before["offset"]]))
    return [line.rstrip() for line in terminal.display]


def _settled_screen(server, sid: str) -> dict:
    """The screen once the output has stopped (the prompt is printed after the command ends)."""
    def settled() -> dict | None:
        first = screen(server, sid)
        time.sleep(0.3)
        return first if screen(server, sid)["offset"] == first["offset"] else None
    return wait_for(settled)


def test_line_floods_in_scroll_regions_show_what_the_terminal_shows(server, project):
    sid = ready_session(server, project)
    viewer = pty_client(server, sid)
    before = screen(server, sid)
    # Cursor above the region: the first lines stay on the rows above it. Cursor below it:
    # every line is written over the last row. The flood's skip assumed a whole-screen scroll.
    send(server, sid, r"printf '\033[10;20r'; seq 1 3000; printf '\033[1;10r\033[40;1H';"
                      r" seq 3000 -1 1; printf '\033[r'")
    wait_for(lambda: history(server, sid), timeout=60)
    after = _settled_screen(server, sid)
    assert after["lines"] == _painted_then_streamed(before, viewer, after["offset"])
    assert [line for line in after["lines"] if line.isdigit()][:3] == ["9", "8", "7"]


def test_images_and_other_escape_strings_never_reach_the_screen(server, project):
    sid = ready_session(server, project)
    go_on = project / "go-on"
    sixel = "\x1bPq#0;2;0;0;0#1;2;100;100;0#1~~@@vv@@~~@@~~$#2??}}GG}}??}}??-"
    # Printed in two parts, a GET screen between them: the image is cut by a parsing batch.
    (project / "images.py").write_text(
        "import os, sys, time\n"
        f"sys.stdout.write('before' + {sixel[:20]!r}); sys.stdout.flush()\n"
        f"while not os.path.exists({str(go_on)!r}): time.sleep(0.05)\n"
        f"sys.stdout.write({sixel[20:]!r} + '\\x1b\\\\')\n"
        "sys.stdout.write('\\x1b_Gf=100,a=T;iVBORw0KGgo=\\x1b\\\\\\x1b^private\\x1b\\\\')\n"
        "sys.stdout.write('\\x1bXsos-payload\\x1b\\\\\\x9fc1-apc\\x9c' + 'after' + chr(10))\n")
    send(server, sid, f"{shlex.quote(sys.executable)} images.py")
    wait_for(lambda: "before" in screen_text(server, sid))
    go_on.touch()
    wait_for(lambda: history(server, sid), timeout=30)
    text = wait_for(lambda: "after" in (t := screen_text(server, sid)) and t)
    assert "beforeafter" in text.splitlines()
    assert not any(payload in text for payload in ("~~@@", "}}GG", "iVBOR", "private",
                                                   "sos-payload", "c1-apc"))


def test_output_the_screen_model_cannot_parse_is_logged_once_and_parsing_goes_on(server,
                                                                                 project):
    sid = ready_session(server, project)
    for rounds in range(1, 5):  # pyte fails on a parameter of 5,000 digits (int's digit limit)
        send(server, sid, "printf '\\033[%s' $(printf '9%.0s' $(seq 5000)); echo")
        wait_for(lambda: len(history(server, sid)) == rounds, timeout=30)  # noqa: B023
        screen(server, sid)
    send(server, sid, "echo still-parsing")
    wait_for(lambda: "still-parsing" in screen_text(server, sid).replace("echo still-parsing", ""))
    log = server.log_text
    assert log.count("could not parse") == 1 and "Traceback" not in log


def test_stop_drops_what_was_typed_ahead_into_the_stopped_program(server, project):
    sid = ready_session(server, project)
    send(server, sid, "sleep 300")
    wait_for(lambda: state(server, sid) == "busy")
    # Typed into `sleep`, which never reads it: ^C in a terminal throws such type-ahead away;
    # Stop left it for bash, which ran it as a command once sleep had died.
    typed = server.api("POST", f"session/{sid}/input", json={"data": "touch typed-ahead\r"})
    assert typed.status_code == 200, typed.text
    assert server.api("POST", f"session/{sid}/interrupt").status_code == 200
    wait_for(lambda: state(server, sid) == "idle")
    send(server, sid, "echo after")
    wait_for(lambda: any(entry["summary"] == "echo after" for entry in history(server, sid)))
    assert not (project / "typed-ahead").exists()
    assert [entry["summary"] for entry in history(server, sid)] == ["echo after", "sleep 300"]


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_stop_is_not_held_up_by_input_waiting_for_a_program_that_does_not_read(
        make_server, project, script):
    server = make_server("--no-rate-limit", "--interrupt-grace-s", "1", script=script)
    sid = ready_session(server, project)
    send(server, sid, python_output(
        "import time, tty; tty.setraw(0); print('raw', flush=True); time.sleep(300)"))
    wait_for(lambda: "raw" in screen(server, sid)["lines"])
    chunk = {"data": "x" * 9000}
    assert server.api("POST", f"session/{sid}/input", json=chunk).status_code == 200
    replies: list[requests.Response] = []
    # Pastes from several clients that the terminal has no room for: each one waited 5 s for
    # room holding the terminal's lock, one after the other, and Stop waited behind all of them.
    writers = [threading.Thread(target=lambda: replies.append(
        server.api("POST", f"session/{sid}/input", json=chunk))) for _ in range(4)]
    for writer in writers:
        writer.start()
    time.sleep(1)  # let them reach the terminal (a setup delay: nothing is timed)
    stopped = server.api("POST", f"session/{sid}/interrupt")
    for writer in writers:
        writer.join()
    assert stopped.status_code == 200 and stopped.json()["wasRunning"] is True, stopped.text
    assert [reply.status_code for reply in replies] == [409] * 4
    assert all("dropped by Stop" in reply.json()["message"] for reply in replies), \
        [reply.text for reply in replies]
    wait_for(lambda: state(server, sid) == "idle")
    send(server, sid, "echo after")
    wait_for(lambda: any(entry["summary"] == "echo after" for entry in history(server, sid)))
    assert len(history(server, sid)) == 2  # none of the dropped input ran as a command
