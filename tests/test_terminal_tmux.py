"""Terminal sessions attached to tmux: the phone and the desk share one tmux session.

Real tmux on its own server socket in the test's temp dir (fixtures `desk` and
`tmux_server` in tests/conftest.py), so the user's own tmux is never touched.
"""

from __future__ import annotations

import shutil
import uuid

import pytest
import requests

from tests.conftest import wait_for
from tests.test_sessions_api import assert_error, create
from tests.test_terminal_view import screen_text, type_keys
from tests.tmuxdesk import Desk

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def attached_session(server, project, desk: Desk, name: str = "desk") -> str:
    """A terminal session attached to tmux session `name`, once tmux shows our client."""
    sid = create(server, project, tmux=name)["id"]
    wait_for(lambda: desk.clients(name))
    return sid


def test_phone_and_desk_share_one_tmux_session(tmux_server, project, desk):
    desk.new_session("desk")
    sid = attached_session(tmux_server, project, desk)
    type_keys(tmux_server, sid, "echo from-$((6*7))-phone\r")
    wait_for(lambda: "from-42-phone" in desk.capture("desk"))
    desk.tmux("send-keys", "-t", "=desk:", "echo typed-at-$((2*3))-desk", "Enter")
    wait_for(lambda: "typed-at-6-desk" in screen_text(tmux_server, sid))
    session = tmux_server.api("GET", f"session/{sid}").json()["session"]
    assert session["tmux"] == "desk"


def test_a_name_with_spaces_attaches_to_exactly_that_session(tmux_server, project, desk):
    desk.new_session("my work")
    desk.new_session("my work 2")  # a prefix match would be ambiguous; =name never is
    sid = attached_session(tmux_server, project, desk, "my work")
    assert not desk.clients("my work 2")
    type_keys(tmux_server, sid, "echo in-$((2+2))-my-work\r")
    wait_for(lambda: "in-4-my-work" in desk.capture("my work"))

def test_deleting_the_session_detaches_and_tmux_keeps_running(tmux_server, project, desk):
    desk.new_session("desk")
    sid = attached_session(tmux_server, project, desk)
    type_keys(tmux_server, sid, "sleep 1000 &\r")
    wait_for(lambda: "sleep 1000" in desk.capture("desk"))
    assert tmux_server.api("DELETE", f"session/{sid}").status_code == 200
    wait_for(lambda: not desk.clients("desk"))
    assert desk.alive("desk")
    jobs = desk.tmux("send-keys", "-t", "=desk:", "jobs", "Enter")
    assert jobs.returncode == 0
    wait_for(lambda: "Running" in desk.capture("desk"))  # what ran there still runs


def test_a_server_restart_detaches_and_attaches_again(tmux_server, project, desk):
    desk.new_session("desk")
    sid = attached_session(tmux_server, project, desk)
    tmux_server.stop()
    wait_for(lambda: not desk.clients("desk"))
    assert desk.alive("desk")  # the shutdown ended our client, not the tmux session
    tmux_server.start()
    wait_for(lambda: desk.clients("desk"))
    desk.tmux("send-keys", "-t", "=desk:", "echo back-$((40+2))", "Enter")
    wait_for(lambda: "back-42" in screen_text(tmux_server, sid))

def test_get_tmux_lists_sessions_and_their_windows(tmux_server, desk):
    assert tmux_server.api("GET", "tmux").json()["sessions"] == []  # no tmux server yet
    desk.new_session("desk")
    desk.tmux("new-window", "-d", "-t", "=desk:", "-n", "logs")
    desk.new_session("odd.name")  # tmux stores it as odd_name
    listed = tmux_server.api("GET", "tmux").json()
    by_name = {session["name"]: session for session in listed["sessions"]}
    assert set(by_name) == {"desk", "odd_name"}
    windows = by_name["desk"]["windows"]
    assert [window["index"] for window in windows] == [0, 1]
    assert windows[1]["name"] == "logs"
    assert [window["active"] for window in windows] == [True, False]
    assert by_name["desk"]["attachable"] is True
    assert by_name["desk"]["attached"] == 0


def test_a_tmux_session_that_does_not_exist_is_404(tmux_server, project, desk):
    desk.new_session("desk")
    body = {"name": "t", "cwd": str(project), "toolType": "terminal", "tmux": "deks"}
    assert_error(tmux_server.api("POST", "sessions", json=body), 404, "No tmux session named")
    assert tmux_server.api("GET", "sessions").json()["count"] == 0
    assert not desk.alive("deks")  # never created behind the user's back


@pytest.mark.parametrize("name", [
    "desk:1", "desk.0", "-t", "=desk", "$0", "@1", "%0", "de\nsk", "desk*", "x" * 65, " desk",
    "desk ", "",
])
def test_hostile_tmux_names_are_400(tmux_server, project, desk, name):
    desk.new_session("desk")
    body = {"name": "t", "cwd": str(project), "toolType": "terminal", "tmux": name}
    assert_error(tmux_server.api("POST", "sessions", json=body), 400)
    assert desk.alive("desk") and not desk.clients("desk")


def test_only_terminal_sessions_attach_to_tmux(tmux_server, project, desk):
    desk.new_session("desk")
    body = {"name": "t", "cwd": str(project), "toolType": "claude-code", "tmux": "desk"}
    assert_error(tmux_server.api("POST", "sessions", json=body), 400, "attaches to tmux")


def test_without_tmux_installed_the_answer_says_how_to_install_it(make_server, project,
                                                                  tmp_path):
    empty = tmp_path / "no-tmux-bin"
    empty.mkdir()
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={"PATH": str(empty)})
    assert_error(server.api("GET", "tmux"), 501, "apt-get install tmux")
    body = {"name": "t", "cwd": str(project), "toolType": "terminal", "tmux": "desk"}
    assert_error(server.api("POST", "sessions", json=body), 501, "install")
    assert server.api("GET", "sessions").json()["count"] == 0


def test_a_view_only_link_cannot_list_the_desks_tmux_sessions(make_server, desk):
    desk.new_session("desk")
    viewer = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--tmux-socket",
                         str(desk.socket), env={"MAESTRO_VIEWER_TOKEN": viewer})
    response = requests.get(f"{server.base}/{viewer}/api/tmux", timeout=30)
    assert_error(response, 403, "view-only")
    assert server.api("GET", "tmux").json()["count"] == 1
