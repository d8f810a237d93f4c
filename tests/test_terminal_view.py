"""The terminal view's server side: the raw PTY stream, the screen, input and resize, the
key budget, secrets, full-screen programs in the log, slow start-up files, polling programs.

Real server, real bash, real WebSocket (see tests/test_terminal_sessions.py for the log view).
"""

from __future__ import annotations

import base64
import itertools
import json
import shlex
import sys
import time
import uuid

from tests.conftest import wait_for
from tests.test_sessions_api import create
from tests.test_terminal_sessions import _processes_named, history, ready_session, send, state
from tests.wsclient import LiveClient


def pty_client(server, sid: str) -> LiveClient:
    """A socket scoped to the session that asked for the raw stream."""
    client = LiveClient(server, session_id=sid)
    reply = client.request({"type": "subscribe", "sessionId": sid, "pty": True}, "subscribed")
    assert reply["pty"] is True
    return client


def pty_bytes(client: LiveClient) -> bytes:
    return b"".join(base64.b64decode(event["data"]) for event in client.events("session:pty"))


def screen(server, sid: str) -> dict:
    response = server.api("GET", f"session/{sid}/screen")
    assert response.status_code == 200, response.text
    return response.json()


def screen_text(server, sid: str) -> str:
    return "\n".join(screen(server, sid)["lines"])


def log_entries(server, sid: str) -> list[dict]:
    return server.api("GET", f"session/{sid}/logs?kind=shell&limit=1000").json()["entries"]


def type_keys(server, sid: str, data: str) -> None:
    response = server.api("POST", f"session/{sid}/input", json={"data": data})
    assert response.status_code == 200, response.text


# -- 1. the raw stream ------------------------------------------------------------------------


def test_raw_output_reaches_pty_subscribers_in_order_with_offsets(server, project):
    sid = ready_session(server, project)
    viewer = pty_client(server, sid)
    log_only = LiveClient(server, session_id=sid)
    send(server, sid, r"printf '\033[31mred\033[0m\n'; seq 1 3000")
    viewer.wait_until(lambda _: b"3000\r\n" in pty_bytes(viewer))
    events = viewer.events("session:pty")
    assert all(event["sessionId"] == sid for event in events)
    for before, after in itertools.pairwise(events):  # no gap, no overlap
        assert after["offset"] == before["offset"] + len(base64.b64decode(before["data"]))
    raw = pty_bytes(viewer)
    assert b"\x1b[31mred\x1b[0m\r\n" in raw  # raw bytes, escapes and CRLF as bash wrote them
    assert len(events) < 60  # coalesced, not one event per read
    wait_for(lambda: history(server, sid))
    time.sleep(0.2)
    log_only.wait_until(lambda messages: any(m["type"] == "session:exit" for m in messages))
    assert not log_only.events("session:pty")


def test_a_new_shell_starts_the_stream_again_at_offset_zero(server, project):
    sid = ready_session(server, project)
    send(server, sid, "exit")
    wait_for(lambda: "Shell exited" in server.api("GET", f"session/{sid}").text)
    viewer = LiveClient(server, session_id=sid)
    viewer.request({"type": "subscribe", "sessionId": sid, "pty": True}, "subscribed")
    send(server, sid, "echo again")
    first = viewer.wait_for(lambda m: m["type"] == "session:pty")
    assert first["offset"] == 0 and first["reset"] is True


# -- 2. the screen ----------------------------------------------------------------------------


def test_the_screen_shows_the_terminal_as_it_is_now(server, project):
    sid = ready_session(server, project)
    send(server, sid, "seq 1 5000")
    wait_for(lambda: history(server, sid))
    body = wait_for(lambda: (s := screen(server, sid)) and "5000" in s["lines"] and s)
    assert (body["cols"], body["rows"]) == (120, 40)
    lines = body["lines"]
    assert lines[lines.index("5000") - 1] == "4999" and "1" not in lines
    assert body["alternate"] is False and body["cursor"]["visible"] is True
    assert body["offset"] > 20000 and "5000" in body["ansi"]


def test_the_screen_of_a_full_screen_program_is_one_screen(server, project):
    sid = ready_session(server, project)
    script = project / "fullscreen.sh"
    script.write_text("printf '\\033[?1049h'\n"
                      "for n in $(seq 1 60); do printf '\\033[H\\033[2Jframe %s\\n' $n; done\n"
                      "sleep 30\n")
    send(server, sid, "bash fullscreen.sh")
    body = wait_for(lambda: (s := screen(server, sid)) and s["lines"][0] == "frame 60" and s)
    assert body["alternate"] is True
    assert [line for line in body["lines"] if line] == ["frame 60"]
    assert "\x1b[?1049h" in body["ansi"]
    server.api("POST", f"session/{sid}/interrupt")


# -- 3. input and resize ----------------------------------------------------------------------


def test_keys_go_straight_to_bash_tab_completion_and_history(server, project):
    (project / "uniquely-named-file.txt").write_text("completed-content\n")
    sid = ready_session(server, project)
    send(server, sid, "echo from-the-log-view")
    wait_for(lambda: history(server, sid))
    client = LiveClient(server, session_id=sid)
    reply = client.request({"type": "input", "sessionId": sid, "data": "cat uniquely\t\r"},
                           "input_result")
    assert reply["success"] is True
    wait_for(lambda: "completed-content" in screen_text(server, sid))
    type_keys(server, sid, "\x1b[A\x1b[A\r")  # the command before `cat`: the log view's
    wait_for(lambda: screen_text(server, sid).count("from-the-log-view") >= 4)
    text = screen_text(server, sid)
    assert "$ echo from-the-log-view" in text or "# echo from-the-log-view" in text  # a prompt


def test_resize_sets_the_terminal_size_and_the_last_one_wins(server, project):
    sid = ready_session(server, project)
    response = server.api("POST", f"session/{sid}/resize", json={"cols": 100, "rows": 30})
    assert response.status_code == 200 and response.json()["cols"] == 100
    client = LiveClient(server, session_id=sid)
    reply = client.request({"type": "resize", "sessionId": sid, "cols": 90, "rows": 20},
                           "resize_result")
    assert reply["success"] is True and (reply["cols"], reply["rows"]) == (90, 20)
    send(server, sid, "stty size")
    wait_for(lambda: history(server, sid))
    assert history(server, sid)[0]["fullResponse"] == "20 90\n"
    assert (screen(server, sid)["cols"], screen(server, sid)["rows"]) == (90, 20)
    bad = server.api("POST", f"session/{sid}/resize", json={"cols": 0, "rows": 30})
    assert bad.status_code == 400 and "'cols'" in bad.json()["message"]


def test_only_the_view_that_resized_last_answers_the_programs_queries(server, project):
    """Two views of one session both answer a query (DA, cursor position): the program would
    read two answers. Only the answers of the socket whose size is in force get through."""
    sid = ready_session(server, project)
    phone, desk = LiveClient(server, session_id=sid), LiveClient(server, session_id=sid)
    for view, cols in ((phone, 40), (desk, 100)):
        view.request({"type": "resize", "sessionId": sid, "cols": cols, "rows": 20},
                     "resize_result")
    (project / "ask.py").write_text(
        "import os, select, sys, tty\n"
        "tty.setraw(0); print('asking', end='', flush=True)\n"
        "answers = b''\n"
        "while select.select([0], [], [], 3)[0]:\n"
        "    answers += os.read(0, 100)\n"
        "    if answers.endswith(b'done'): break\n"
        "print(repr(answers.decode()), end='\\r\\n', flush=True)\n")
    send(server, sid, f"{shlex.quote(sys.executable)} ask.py")
    wait_for(lambda: "asking" in screen_text(server, sid))
    for view, answer in ((phone, "\x1b[?1;2c"), (desk, "\x1b[?6c")):
        reply = view.request({"type": "input", "sessionId": sid, "data": answer, "reply": True},
                             "input_result")
        assert reply["success"] is True and reply.get("ignored", False) is (view is phone)
    desk.request({"type": "input", "sessionId": sid, "data": "done"}, "input_result")
    wait_for(lambda: history(server, sid))
    assert "'\\x1b[?6cdone'" in history(server, sid)[0]["fullResponse"]
    bad = desk.request({"type": "input", "sessionId": sid, "data": "x", "reply": "yes"},
                       "input_result")
    assert bad["statusCode"] == 400 and "'reply'" in bad["error"]
    desk.close()  # the view whose size was in force went away: the other one answers again
    wait_for(lambda: "ignored" not in phone.request(
        {"type": "input", "sessionId": sid, "data": "\x1b[?1;2c", "reply": True}, "input_result"))


def test_a_typed_command_makes_the_session_busy_and_is_stoppable(server, project):
    sid = ready_session(server, project)
    type_keys(server, sid, "sleep 7373\r")
    wait_for(lambda: state(server, sid) == "busy")
    assert server.api("POST", f"session/{sid}/interrupt").json()["wasRunning"] is True
    wait_for(lambda: state(server, sid) == "idle")
    assert not _processes_named("sleep 7373")
    assert history(server, sid) == []  # typed in the terminal: not a log-view command


# -- 4. the key budget ------------------------------------------------------------------------


def test_keys_and_interrupt_never_draw_on_the_post_quota(make_server, project):
    server = make_server("--rate-limit-post", "4", "--interrupt-grace-s", "1")
    sid = create(server, project)["id"]
    wait_for(lambda: state(server, sid) == "idle")
    send(server, sid, "sleep 100")
    for _ in range(20):  # use the POST quota up
        if server.api("PATCH", f"session/{sid}", json={"name": "x"}).status_code == 429:
            break
    else:
        raise AssertionError("the POST quota never ran out")
    client = LiveClient(server, session_id=sid)
    refused = client.request({"type": "switch_mode", "sessionId": sid, "mode": "terminal"},
                             "error")
    assert refused["code"] == "rate_limited"
    for n in range(40):  # 40 key taps in 10 s
        response = server.api("POST", f"session/{sid}/input", json={"data": "x"})
        assert response.status_code == 200, (n, response.text)
        time.sleep(0.2)
    stopped = server.api("POST", f"session/{sid}/interrupt")
    assert stopped.status_code == 200 and stopped.json()["stoppedBy"] == "SIGINT"
    assert not _processes_named("sleep 100", sid)


def test_a_key_flood_gets_its_own_429(make_server, project):
    server = make_server("--key-rate", "2")
    sid = create(server, project)["id"]
    statuses = [server.api("POST", f"session/{sid}/input", json={"data": "x"}).status_code
                for _ in range(8)]
    assert statuses[:4] == [200] * 4 and 429 in statuses
    refused = server.api("POST", f"session/{sid}/input", json={"data": "x"})
    assert refused.json()["retryAfter"] >= 1 and refused.headers["Retry-After"]
    assert server.api("PATCH", f"session/{sid}", json={"name": "y"}).status_code == 200


# -- 5. secrets -------------------------------------------------------------------------------


def test_input_to_a_password_prompt_stays_out_of_the_log(server, project):
    sid = ready_session(server, project)
    client = LiveClient(server)
    send(server, sid, "read -s -p 'Password: ' pw; echo; echo length ${#pw}")
    wait_for(lambda: state(server, sid) == "waiting_input")
    client.wait_for(lambda m: m["type"] == "session:state" and m.get("echo") is False)
    assert server.api("GET", f"session/{sid}").json()["session"]["echo"] is False
    reply = send(server, sid, "hunter2-secret")
    assert reply["mode"] == "input" and reply["secret"] is True
    wait_for(lambda: history(server, sid))
    assert "length 14" in history(server, sid)[0]["fullResponse"]
    texts = [entry["text"] for entry in log_entries(server, sid)]
    assert "••••••" in texts
    everything = server.api("GET", f"session/{sid}").text + str(history(server, sid))
    assert "hunter2" not in everything
    audit = (server.data_dir / "audit.log").read_text()
    sent = [json.loads(line).get("command") for line in audit.splitlines()]
    assert "hunter2" not in audit and "••••••" in sent
    client.wait_for(lambda m: m["type"] == "session:state" and m.get("echo") is True)


# -- 6. full-screen programs in the log view --------------------------------------------------


def test_full_screen_redraws_become_one_system_line_in_the_log(server, project):
    sid = ready_session(server, project)
    script = project / "redraw.sh"
    script.write_text("echo before-full-screen\nprintf '\\033[?1049h'\n"
                      "for n in $(seq 1 200); do printf '\\033[Hredraw %s\\n' $n; done\n"
                      "printf '\\033[?1049l'\necho after-full-screen\n")
    send(server, sid, "bash redraw.sh")
    wait_for(lambda: history(server, sid))
    entries = log_entries(server, sid)
    text = "".join(entry["text"] for entry in entries)
    assert "before-full-screen" in text and "after-full-screen" in text
    assert "redraw" not in text.replace("bash redraw.sh", "")
    notes = [e["text"] for e in entries if e["source"] == "system" and "full screen" in e["text"]]
    # Named when it still runs as the output is read; on a loaded machine the short script
    # may have ended by then (vim, below, is always named).
    assert notes in (["bash is using the full screen; open the terminal view"],
                     ["A program is using the full screen; open the terminal view"])


def test_vim_in_the_log_view_is_one_line_and_works_through_input(server, project):
    sid = ready_session(server, project)
    send(server, sid, "vim -u NONE -N note.txt")
    wait_for(lambda: screen(server, sid)["alternate"])
    type_keys(server, sid, "iwritten in vim\x1b:wq\r")
    wait_for(lambda: history(server, sid))
    assert (project / "note.txt").read_text() == "written in vim\n"
    notes = [e["text"] for e in log_entries(server, sid) if e["source"] == "system"]
    assert notes == ["vim is using the full screen; open the terminal view"]
    assert screen(server, sid)["alternate"] is False


# -- 7. slow start-up files -------------------------------------------------------------------


def test_a_slow_bashrc_queues_the_command_instead_of_failing(make_server, project, home):
    (home / ".bashrc").write_text("sleep 3; echo rc-says-hello\n")
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--shell-ready-timeout-s", "0.5")
    sid = create(server, project)["id"]
    started = time.monotonic()
    reply = send(server, sid, "echo ran-when-ready")
    assert reply["mode"] == "command" and time.monotonic() - started < 2.5
    entries = log_entries(server, sid)
    assert any(e["source"] == "system" and "Starting the shell" in e["text"] for e in entries)
    entry = wait_for(lambda: history(server, sid), timeout=20)[0]
    assert entry["fullResponse"] == "ran-when-ready\n"
    assert "rc-says-hello" in "".join(e["text"] for e in log_entries(server, sid))


# -- 8. programs that poll the terminal -------------------------------------------------------


def test_a_repl_waiting_in_select_is_waiting_input(server, project):
    sid = ready_session(server, project)
    send(server, sid, f"{shlex.quote(sys.executable)} -q")
    wait_for(lambda: state(server, sid) == "waiting_input")
    send(server, sid, "print(6 * 7)")
    wait_for(lambda: "42" in "".join(e["text"] for e in log_entries(server, sid)))
    send(server, sid, "exit()")
    wait_for(lambda: history(server, sid))


def test_the_screen_stays_bounded_whatever_the_output_and_size(server, project):
    sid = ready_session(server, project)
    too_big = server.api("POST", f"session/{sid}/resize", json={"cols": 100_000, "rows": 5})
    assert too_big.status_code == 400
    assert server.api("POST", f"session/{sid}/resize", json={"cols": 400, "rows": 200}).ok
    send(server, sid, "printf '\\033]0;'; head -c 3000000 /dev/zero | tr '\\0' a; "
                      "printf '\\007'; echo done")
    wait_for(lambda: history(server, sid))
    screen = server.api("GET", f"session/{sid}/screen").json()
    assert len(screen["title"]) <= 1024 and (screen["cols"], screen["rows"]) == (400, 200)
