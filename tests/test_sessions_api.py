"""The REST API over a real server: success and error paths of every endpoint."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.conftest import wait_for


def create(server, project, **fields):
    body = {"name": "build", "cwd": str(project), "toolType": "terminal", **fields}
    response = server.api("POST", "sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["session"]


def assert_error(response: requests.Response, status: int, fragment: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "message", "timestamp"}
    assert fragment in body["message"]
    return body


def test_create_list_get_and_delete_a_session(server, project):
    session = create(server, project, name="api")
    assert session["toolType"] == "terminal" and session["inputMode"] == "terminal"
    assert session["cwd"] == str(project) and session["isLive"] is True
    assert len(session["aiTabs"]) == 1 and session["activeTabId"] == session["aiTabs"][0]["id"]

    listed = server.api("GET", "sessions").json()
    assert listed["count"] == 1 and listed["sessions"][0]["id"] == session["id"]
    assert isinstance(listed["timestamp"], int)

    detail = server.api("GET", f"session/{session['id']}").json()["session"]
    assert detail["name"] == "api"
    assert detail["aiLogs"] == [] and isinstance(detail["shellLogs"], list)

    deleted = server.api("DELETE", f"session/{session['id']}")
    assert deleted.status_code == 200 and deleted.json()["success"] is True
    assert server.api("GET", "sessions").json()["count"] == 0
    assert_error(server.api("GET", f"session/{session['id']}"), 404,
                 f"Session with id '{session['id']}' not found")


def test_ai_session_defaults_to_ai_mode_with_a_tab(server, project):
    session = create(server, project, toolType="claude-code", groupName="Work",
                     groupEmoji="🛠")
    assert session["inputMode"] == "ai" and session["groupName"] == "Work"
    assert session["state"] == "idle"


@pytest.mark.parametrize("body, status, fragment", [
    ({"cwd": "{project}", "toolType": "terminal"}, 400, "'name' is required"),
    ({"name": "x", "toolType": "terminal"}, 400, "'cwd' is required"),
    ({"name": "x", "cwd": "{project}"}, 400, "'toolType' is required"),
    ({"name": "", "cwd": "{project}", "toolType": "terminal"}, 400, "non-empty"),
    ({"name": 5, "cwd": "{project}", "toolType": "terminal"}, 400, "'name'"),
    ({"name": "x", "cwd": "relative/dir", "toolType": "terminal"}, 400,
     "Folder must be a full path"),
    ({"name": "x", "cwd": "/no/such/dir", "toolType": "terminal"}, 400, "does not exist"),
    ({"name": "x", "cwd": "{project}", "toolType": "vim"}, 400, "Unknown toolType"),
    ({"name": "x", "cwd": "{project}", "toolType": "terminal", "inputMode": "voice"}, 400,
     "inputMode"),
])
def test_create_rejects_bad_bodies(server, project, body, status, fragment):
    body = {key: value.format(project=project) if isinstance(value, str) else value
            for key, value in body.items()}
    assert_error(server.api("POST", "sessions", json=body), status, fragment)
    assert server.api("GET", "sessions").json()["count"] == 0


def test_malformed_and_wrongly_typed_bodies_get_json_errors(server):
    assert_error(server.api("POST", "sessions", data="{not json",
                            headers={"Content-Type": "application/json"}), 400, "valid JSON")
    assert_error(server.api("POST", "sessions", data="name=x",
                            headers={"Content-Type": "application/x-www-form-urlencoded"}),
                 415, "JSON")
    assert_error(server.api("POST", "sessions", json=[1, 2]), 400, "object")


def test_body_over_the_limit_is_refused_with_413(make_server):
    server = make_server("--no-rate-limit", "--max-body-bytes", "2048")
    body = {"name": "x" * 4000, "cwd": "/", "toolType": "terminal"}
    assert_error(server.api("POST", "sessions", json=body), 413)
    assert server.api("GET", "sessions").json()["count"] == 0


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_a_chunked_body_over_the_limit_is_413_not_malformed(make_server, script):
    server = make_server("--no-rate-limit", "--max-body-bytes", "2048", script=script)
    body = json.dumps({"name": "x" * 4000, "cwd": "/", "toolType": "terminal"}).encode()
    chunks = (body[at:at + 1000] for at in range(0, len(body), 1000))  # no Content-Length
    response = server.api("POST", "sessions", data=chunks,
                          headers={"Content-Type": "application/json"})
    assert_error(response, 413)
    assert server.api("GET", "sessions").json()["count"] == 0
    fits = json.dumps({"name": "ok", "cwd": "/", "toolType": "terminal"}).encode()
    response = server.api("POST", "sessions", data=iter([fits[:10], fits[10:]]),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text


def test_unknown_routes_and_methods_get_json_errors(server):
    assert_error(server.api("GET", "nope"), 404)
    body = assert_error(server.api("PUT", "sessions"), 405)
    assert body["error"] == "Method Not Allowed"


def test_patch_renames_switches_mode_and_validates(server, project):
    session = create(server, project)
    sid = session["id"]
    renamed = server.api("PATCH", f"session/{sid}", json={"name": "renamed"}).json()["session"]
    assert renamed["name"] == "renamed"
    switched = server.api("PATCH", f"session/{sid}", json={"inputMode": "ai"}).json()["session"]
    assert switched["inputMode"] == "ai"
    assert_error(server.api("PATCH", f"session/{sid}", json={"cwd": "/no/such"}), 400,
                 "does not exist")
    assert_error(server.api("PATCH", f"session/{sid}", json={"toolType": "codex"}), 400,
                 "toolType")
    assert_error(server.api("PATCH", f"session/{sid}", json={}), 400, "Nothing to change")
    assert_error(server.api("PATCH", f"session/{uuid.uuid4()}", json={"name": "x"}), 404)
    assert server.api("GET", f"session/{sid}").json()["session"]["name"] == "renamed"


def test_offline_session_refuses_send_and_interrupt(server, project):
    sid = create(server, project)["id"]
    offline = server.api("POST", f"session/{sid}/offline").json()
    assert offline["session"]["isLive"] is False and "liveEnabledAt" not in offline["session"]
    assert_error(server.api("POST", f"session/{sid}/send", json={"command": "echo hi"}), 403)
    assert_error(server.api("POST", f"session/{sid}/interrupt"), 403)
    live = server.api("POST", f"session/{sid}/live").json()["session"]
    assert live["isLive"] is True and isinstance(live["liveEnabledAt"], int)
    sent = server.api("POST", f"session/{sid}/send", json={"command": "echo hi"})
    assert sent.status_code == 200


@pytest.mark.parametrize("body, status, message", [
    ({}, 400, "Command is required and must be a string"),
    ({"command": ""}, 400, "Command is required and must be a string"),
    ({"command": 42}, 400, "Command is required and must be a string"),
    ({"command": None}, 400, "Command is required and must be a string"),
])
def test_send_rejects_missing_or_bad_commands(server, project, body, status, message):
    sid = create(server, project)["id"]
    assert assert_error(server.api("POST", f"session/{sid}/send", json=body), status)[
        "message"] == message


def test_send_refuses_commands_over_the_limit(make_server, project):
    server = make_server("--no-rate-limit", "--max-command-chars", "10")
    sid = create(server, project)["id"]
    assert_error(server.api("POST", f"session/{sid}/send", json={"command": "echo " * 5}), 413)
    ok = server.api("POST", f"session/{sid}/send", json={"command": "echo ok"})
    assert ok.status_code == 200


def test_send_and_interrupt_on_unknown_session_are_404(server):
    sid = str(uuid.uuid4())
    assert_error(server.api("POST", f"session/{sid}/send", json={"command": "ls"}), 404,
                 f"Session with id '{sid}' not found")
    assert_error(server.api("POST", f"session/{sid}/interrupt"), 404)
    assert_error(server.api("POST", f"session/{sid}/keys", json={"keys": ["C-c"]}), 404)


def test_keys_are_validated(server, project):
    sid = create(server, project)["id"]
    assert_error(server.api("POST", f"session/{sid}/keys", json={"keys": "C-c"}), 400, "list")
    assert_error(server.api("POST", f"session/{sid}/keys", json={"keys": ["Hyper-Q"]}), 400,
                 "Hyper-Q")
    idle = server.api("POST", f"session/{sid}/keys", json={"keys": ["Enter"]})
    assert_error(idle, 409, "Nothing is running")


def test_tabs_lifecycle(server, project):
    session = create(server, project, toolType="codex")
    sid, first = session["id"], session["aiTabs"][0]["id"]
    made = server.api("POST", f"session/{sid}/tabs", json={"name": "refactor"})
    assert made.status_code == 201
    tab = made.json()["tab"]
    assert tab["name"] == "refactor"
    starred = server.api("PATCH", f"session/{sid}/tabs/{tab['id']}",
                         json={"starred": True, "name": "refactor 2"}).json()["tab"]
    assert starred["starred"] is True and starred["name"] == "refactor 2"
    detail = server.api("GET", f"session/{sid}").json()["session"]
    assert detail["activeTabId"] == tab["id"] and len(detail["aiTabs"]) == 2
    server.api("POST", f"session/{sid}/tabs/{first}/select")
    assert server.api("GET", f"session/{sid}").json()["session"]["activeTabId"] == first
    assert server.api("DELETE", f"session/{sid}/tabs/{tab['id']}").status_code == 200
    assert_error(server.api("DELETE", f"session/{sid}/tabs/{first}"), 409, "at least one tab")
    assert_error(server.api("POST", f"session/{sid}/tabs/{uuid.uuid4()}/select"), 404, "Tab")
    assert_error(server.api("PATCH", f"session/{sid}/tabs/{first}", json={"starred": "yes"}),
                 400, "starred")
    assert_error(server.api("GET", f"session/{sid}?tabId=nope"), 404, "Tab")


def test_themes_list_switch_and_validate(server):
    theme = server.api("GET", "theme").json()["theme"]
    assert theme["id"] == "dracula"
    themes = server.api("GET", "themes").json()
    ids = {item["id"] for item in themes["themes"]}
    assert {"dracula", "nord", "github-light", "ayu-light", "catppuccin-latte"} <= ids
    keys = {"bgMain", "bgSidebar", "bgActivity", "border", "textMain", "textDim", "accent",
            "accentDim", "accentText", "accentForeground", "success", "warning", "error"}
    assert all(set(item["colors"]) == keys for item in themes["themes"])
    changed = server.api("PUT", "theme", json={"id": "nord"})
    assert changed.status_code == 200 and changed.json()["theme"]["id"] == "nord"
    assert server.api("GET", "theme").json()["theme"]["id"] == "nord"
    assert_error(server.api("PUT", "theme", json={"id": "neon"}), 400, "Unknown theme")
    assert_error(server.api("PUT", "theme", json={}), 400, "'id'")


def test_commands_are_only_the_config_files_own(server, make_server, tmp_path):
    assert server.api("GET", "commands").json()["commands"] == []  # no fixed list of ours
    config = tmp_path / "config.toml"
    config.write_text('[[commands]]\ncommand = "/deploy"\ndescription = "Ship it"\n')
    configured = make_server("--config", str(config), data_dir=tmp_path / "configured")
    body = configured.api("GET", "commands").json()
    assert (body["commands"], body["count"]) == ([{"command": "/deploy",
                                                   "description": "Ship it"}], 1)


def test_history_filters_by_session(server, project):
    first = create(server, project, name="one")["id"]
    second = create(server, project, name="two")["id"]
    for sid, command in ((first, "true"), (second, "false")):
        server.api("POST", f"session/{sid}/send", json={"command": command})
    wait_for(lambda: server.api("GET", "history").json()["count"] == 2)
    mine = server.api("GET", f"history?sessionId={first}").json()
    assert mine["count"] == 1 and mine["entries"][0]["summary"] == "true"
    assert mine["entries"][0]["success"] is True and mine["entries"][0]["exitCode"] == 0
    by_path = server.api("GET", "history", params={"projectPath": str(project)}).json()
    assert by_path["count"] == 2
    assert_error(server.api("GET", "history?limit=zero"), 400, "limit")


def test_absurd_inputs_get_400_not_500(server, project):
    sid = create(server, project)["id"]
    for query in ("after=99999999999999999999", "before=-1", "limit=0", "after=x"):
        assert_error(server.api("GET", f"session/{sid}/logs?{query}"), 400, "Query parameter")
    nested = "[" * 100_000 + "]" * 100_000
    assert_error(server.api("POST", f"session/{sid}/send", data=nested,
                            headers={"Content-Type": "application/json"}), 400, "valid JSON")
    assert_error(server.api("POST", "sessions", data="null",
                            headers={"Content-Type": "application/json"}), 400, "object")


LONE_SURROGATE = "\ud800"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "theme", {"id": LONE_SURROGATE}),
    ("POST", "session/{sid}/interrupt", {"tabId": LONE_SURROGATE}),
    ("POST", "session/{sid}/send", {"command": "true", "inputMode": LONE_SURROGATE}),
    ("POST", "session/{sid}/send", {"command": "echo " + LONE_SURROGATE}),
    ("POST", "session/{sid}/keys", {"keys": [LONE_SURROGATE]}),
    ("PATCH", "session/{sid}", {"cwd": "/tmp/" + LONE_SURROGATE}),
    ("PATCH", "session/{sid}", {"name": "x" + LONE_SURROGATE}),
    ("POST", "sessions", {"name": "n", "cwd": "/tmp", "toolType": LONE_SURROGATE}),
    ("POST", "sessions", {"name": "bad" + LONE_SURROGATE, "cwd": "/tmp"}),
    ("POST", "session/{sid}/tabs", {"name": LONE_SURROGATE}),
    ("PATCH", "session/{sid}/tabs/{tab}", {"name": LONE_SURROGATE}),
])
def test_a_lone_surrogate_in_any_field_is_a_400_and_nothing_is_stored(
        server, project, method, path, body):
    session = create(server, project, name="keep")
    url = path.format(sid=session["id"], tab=session["aiTabs"][0]["id"])
    error = assert_error(server.api(method, url, json=body), 400, "invalid Unicode")
    assert error["message"].startswith("'")  # names the field
    sessions = server.api("GET", "sessions").json()["sessions"]
    assert [s["name"] for s in sessions] == ["keep"]
    detail = server.api("GET", f"session/{session['id']}").json()["session"]
    assert detail["cwd"] == str(project) and detail["name"] == "keep"
    assert [t["name"] for t in detail["aiTabs"]] == [t["name"] for t in session["aiTabs"]]
    assert server.api("GET", "theme").status_code == 200


def test_sessions_beyond_max_sessions_are_refused_and_nothing_is_half_made(make_server, project):
    server = make_server("--no-rate-limit", "--max-sessions", "2")
    first, _ = create(server, project, name="one"), create(server, project, name="two")
    error = assert_error(server.api("POST", "sessions", json={
        "name": "three", "cwd": str(project), "toolType": "terminal"}), 409, "--max-sessions")
    assert "2 sessions" in error["message"]
    assert [s["name"] for s in server.api("GET", "sessions").json()["sessions"]] == ["one", "two"]
    assert server.api("DELETE", f"session/{first['id']}").status_code == 200
    assert create(server, project, name="three")["name"] == "three"


def test_tabs_beyond_max_tabs_are_refused(make_server, project):
    server = make_server("--no-rate-limit", "--max-tabs", "2")
    session = create(server, project, toolType="claude-code")
    assert server.api("POST", f"session/{session['id']}/tabs", json={}).status_code == 201
    assert_error(server.api("POST", f"session/{session['id']}/tabs", json={}), 409, "--max-tabs")
    detail = server.api("GET", f"session/{session['id']}").json()["session"]
    assert len(detail["aiTabs"]) == 2


def test_history_keeps_the_newest_entries_and_goes_with_its_session(make_server, project):
    from tests.test_terminal_sessions import history, ready_session, send

    server = make_server("--no-rate-limit", "--history-cap", "10")
    sid = ready_session(server, project)
    for n in range(14):
        send(server, sid, f"echo run-{n}")
        wait_for(lambda n=n: any(e["summary"] == f"echo run-{n}" for e in history(server, sid)))
    summaries = [entry["summary"] for entry in history(server, sid)]
    assert summaries == [f"echo run-{n}" for n in range(13, 3, -1)]
    assert server.api("DELETE", f"session/{sid}").status_code == 200
    assert server.api("GET", "history").json()["entries"] == []


@pytest.mark.parametrize(("field", "limit"), [("groupId", 200), ("groupName", 200),
                                              ("groupEmoji", 16)])
def test_group_fields_longer_than_their_limit_are_a_400(server, project, field, limit):
    body = {"name": "g", "cwd": str(project), "toolType": "terminal"}
    assert_error(server.api("POST", "sessions", json={**body, field: "x" * (limit + 1)}), 400,
                 f"longer than {limit}")
    session = create(server, project, **{field: "x" * limit})
    assert_error(server.api("PATCH", f"session/{session['id']}",
                            json={field: "y" * 900_000}), 400, field)
    assert server.api("GET", "sessions").json()["sessions"][0][field] == "x" * limit


@pytest.mark.parametrize("value", ["m\u0000odel", "line\nbreak", "tab\there"])
def test_a_tab_model_with_control_characters_is_a_400(server, project, value):
    session = create(server, project, toolType="claude-code")
    tab = session["aiTabs"][0]["id"]
    assert_error(server.api("PATCH", f"session/{session['id']}/tabs/{tab}",
                            json={"model": value}), 400, "control characters")
    detail = server.api("GET", f"session/{session['id']}").json()["session"]
    assert detail["aiTabs"][0].get("model") is None
