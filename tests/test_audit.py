"""The audit log: every remote action, from either channel, as one JSON line; paged by
GET audit for the owner only."""

from __future__ import annotations

import json
import re
import stat
import time
import uuid
from types import SimpleNamespace

import requests

from app.audit import COMMAND_CAP_BYTES, VALUE_CAP, AuditLog
from tests.conftest import wait_for
from tests.wsclient import LiveClient

ISO_MS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$"


def audit_entries(server, **params) -> list[dict]:
    response = server.api("GET", "audit", params=params)
    assert response.status_code == 200, response.text
    return response.json()["entries"]


def create(server, project, tool="terminal") -> dict:
    response = server.api("POST", "sessions", json={"name": "audited", "cwd": str(project),
                                                    "toolType": tool})
    assert response.status_code == 201, response.text
    return response.json()["session"]


def test_every_rest_action_is_one_audit_line(server, project):
    sid = create(server, project)["id"]
    ai = create(server, project, tool="claude-code")
    aid, first_tab = ai["id"], ai["aiTabs"][0]["id"]
    server.api("POST", f"session/{sid}/send", json={"command": "echo audited"})
    wait_for(lambda: server.api("GET", f"history?sessionId={sid}").json()["count"])
    server.api("POST", f"session/{sid}/keys", json={"keys": ["C-c"]})  # 409: nothing runs
    server.api("POST", f"session/{sid}/interrupt")
    server.api("PATCH", f"session/{sid}", json={"name": "renamed"})
    server.api("POST", f"session/{sid}/offline")
    server.api("POST", f"session/{sid}/live")
    tab = server.api("POST", f"session/{aid}/tabs", json={"name": "t"}).json()["tab"]["id"]
    server.api("PATCH", f"session/{aid}/tabs/{tab}", json={"starred": True})
    server.api("POST", f"session/{aid}/tabs/{first_tab}/select")
    server.api("DELETE", f"session/{aid}/tabs/{tab}")
    server.api("PUT", "theme", json={"id": "nord"})
    server.api("DELETE", f"session/{sid}")
    server.api("GET", "sessions")  # reads are not audited

    entries = audit_entries(server)[::-1]  # oldest first
    assert [(e["action"], e["status"]) for e in entries] == [
        ("create_session", 201), ("create_session", 201), ("send", 200), ("keys", 409),
        ("interrupt", 200), ("update_session", 200), ("offline", 200), ("live", 200),
        ("new_tab", 201), ("update_tab", 200), ("select_tab", 200), ("close_tab", 200),
        ("set_theme", 200), ("delete_session", 200)]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    for entry in entries:
        assert entry["channel"] == "http" and entry["role"] == "owner"
        assert entry["address"] == "127.0.0.1"
        assert entry["outcome"] == ("ok" if entry["status"] < 400 else "failed")
    by_action = {e["action"]: e for e in entries}
    assert [e["sessionId"] for e in entries[:2]] == [sid, aid]
    assert by_action["send"]["command"] == "echo audited"
    assert by_action["send"]["mode"] == "command" and by_action["send"]["sessionId"] == sid
    assert by_action["keys"]["keys"] == ["C-c"]
    assert by_action["new_tab"]["tabId"] == tab and by_action["close_tab"]["tabId"] == tab
    assert by_action["select_tab"]["tabId"] == first_tab
    assert "sessionId" not in by_action["set_theme"]
    assert all(re.match(ISO_MS, e["time"]) for e in entries)
    # What the setting actions set (their new values), and nothing for the others.
    assert entries[0]["values"] == {"name": "audited", "cwd": str(project),
                                    "toolType": "terminal"}
    assert entries[1]["values"]["toolType"] == "claude-code"
    assert by_action["update_session"]["values"] == {"name": "renamed"}
    assert by_action["set_theme"]["values"] == {"id": "nord"}
    assert by_action["new_tab"]["values"] == {"name": "t"}
    assert by_action["update_tab"]["values"] == {"starred": True}
    assert not any("values" in by_action[action] for action in ("send", "delete_session",
                                                                "live", "select_tab"))


def test_socket_actions_are_audited_like_rest_ones(server, project):
    ai = create(server, project, tool="claude-code")
    aid, first_tab = ai["id"], ai["aiTabs"][0]["id"]
    client = LiveClient(server)
    try:
        tab = client.request({"type": "new_tab", "sessionId": aid, "name": "t"},
                             "new_tab_result")["tab"]["id"]
        client.request({"type": "rename_tab", "sessionId": aid, "tabId": tab, "name": "u"},
                       "rename_tab_result")
        client.request({"type": "select_tab", "sessionId": aid, "tabId": first_tab},
                       "select_tab_result")
        client.request({"type": "close_tab", "sessionId": aid, "tabId": tab},
                       "close_tab_result")
        client.request({"type": "switch_mode", "sessionId": aid, "mode": "terminal"},
                       "mode_switch_result")
        client.request({"type": "send_command", "sessionId": aid, "command": "echo sock",
                        "inputMode": "terminal"}, "command_result")
        client.request({"type": "interrupt", "sessionId": aid}, "interrupt_result")
        client.request({"type": "send_command", "sessionId": "nope", "command": "x"},
                       "command_result")
        client.request({"type": "get_sessions"}, "sessions_list")  # a read: not audited
    finally:
        client.close()
    entries = [e for e in audit_entries(server) if e["channel"] == "ws"][::-1]
    assert [(e["action"], e["status"]) for e in entries] == [
        ("new_tab", 200), ("rename_tab", 200), ("select_tab", 200), ("close_tab", 200),
        ("switch_mode", 200), ("send", 200), ("interrupt", 200), ("send", 404)]
    assert all(e["role"] == "owner" and e["address"] == "127.0.0.1" for e in entries)
    assert entries[0]["tabId"] == tab and entries[2]["tabId"] == first_tab
    assert entries[0]["values"] == {"name": "t"} and entries[1]["values"] == {"name": "u"}
    assert entries[4]["values"] == {"mode": "terminal"}
    assert entries[5]["command"] == "echo sock" and entries[5]["sessionId"] == aid
    assert entries[7]["outcome"] == "failed" and entries[7]["sessionId"] == "nope"


def test_the_file_is_private_and_never_holds_a_token(make_server, project, tmp_path):
    viewer = str(uuid.uuid4())
    server = make_server("--no-rate-limit", "--viewer-token", viewer)
    sid = create(server, project)["id"]
    server.api("POST", f"session/{sid}/send", json={"command": "echo private"})
    requests.post(f"{server.base}/{viewer}/api/session/{sid}/send", json={"command": "x"},
                  timeout=10)
    path = tmp_path / "data" / "audit.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert server.token not in text and viewer not in text
    assert len(text.splitlines()) == 3
    assert all(json.loads(line)["id"] for line in text.splitlines())


def test_viewer_refusals_are_audited_and_the_audit_is_for_the_owner_only(make_server,
                                                                           project):
    viewer = str(uuid.uuid4())
    server = make_server("--no-rate-limit", "--viewer-token", viewer)
    sid = create(server, project)["id"]
    base = f"{server.base}/{viewer}/api"
    assert requests.post(f"{base}/session/{sid}/send", json={"command": "rm -rf x"},
                         timeout=10).status_code == 403
    client = LiveClient(SimpleNamespace(port=server.port, token=viewer))
    try:
        client.request({"type": "interrupt", "sessionId": sid}, "error")
    finally:
        client.close()
    refused = requests.get(f"{base}/audit", timeout=10)
    assert refused.status_code == 403
    assert refused.json()["message"] == "The audit log is for the owner's token only"

    newest = audit_entries(server, limit=2)
    assert [(e["channel"], e["action"], e["role"], e["status"], e["outcome"])
            for e in newest] == [("ws", "interrupt", "viewer", 403, "forbidden"),
                                 ("http", "send", "viewer", 403, "forbidden")]
    assert newest[1]["command"] == "rm -rf x" and newest[1]["sessionId"] == sid


def test_audit_pages_newest_first(server):
    for theme in ("nord", "dracula", "monokai", "nord", "dracula"):
        server.api("PUT", "theme", json={"id": theme})
    first = server.api("GET", "audit", params={"limit": 2}).json()
    assert first["count"] == 2 and first["hasMore"] is True
    ids = [e["id"] for e in first["entries"]]
    assert ids == sorted(ids, reverse=True)
    second = server.api("GET", "audit", params={"limit": 2, "before": ids[-1]}).json()
    last = server.api("GET", "audit", params={"limit": 2,
                                              "before": second["entries"][-1]["id"]}).json()
    assert last["count"] == 1 and last["hasMore"] is False
    every = [e["id"] for page in (first, second, last) for e in page["entries"]]
    assert every == sorted(every, reverse=True) and len(set(every)) == 5
    assert server.api("GET", "audit", params={"limit": 0}).status_code == 400
    assert server.api("GET", "audit", params={"before": "x"}).status_code == 400


def test_long_commands_are_kept_to_their_first_4_kib(server, project):
    sid = create(server, project)["id"]
    command = "echo " + "é" * 5000
    server.api("POST", f"session/{sid}/send", json={"command": command})
    entry = audit_entries(server, limit=1)[0]
    assert entry["commandTruncated"] is True
    kept = entry["command"].encode()
    assert COMMAND_CAP_BYTES - 1 <= len(kept) <= COMMAND_CAP_BYTES
    assert command.startswith(entry["command"])


def test_new_values_are_capped_and_only_the_fields_an_action_sets_are_kept(server, project):
    long_name = "n" * 200
    server.api("POST", "sessions", json={
        "name": long_name, "cwd": "/" + "d" * 5000, "toolType": "terminal",
        "token": server.token, "groupName": {"nested": "object"}})  # 400: no such folder
    entry = audit_entries(server, limit=1)[0]
    assert (entry["action"], entry["status"]) == ("create_session", 400)
    assert entry["values"] == {"name": long_name, "toolType": "terminal",
                               "cwd": ("/" + "d" * 5000)[:VALUE_CAP]}
    assert server.token not in json.dumps(entry)


def test_a_body_too_large_to_read_is_audited_with_its_413(make_server, project):
    server = make_server("--no-rate-limit", "--max-body-bytes", "100")
    response = server.api("POST", "sessions", json={"name": "x" * 500, "cwd": str(project),
                                                    "toolType": "terminal"})
    assert response.status_code == 413, response.text
    entry = audit_entries(server)[0]
    assert (entry["action"], entry["status"], entry["outcome"]) == (
        "create_session", 413, "failed")


def test_requests_refused_by_the_rate_limit_are_not_audited(make_server):
    server = make_server("--rate-limit-post", "2")
    statuses = [server.api("PUT", "theme", json={"id": "nord"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert len(audit_entries(server)) == 2


def test_the_log_rotates_and_pages_read_across_both_files(tmp_path):
    path = str(tmp_path / "audit.log")
    audit = AuditLog(path, rotate_bytes=2000)
    for number in range(40):
        audit.record_action(channel="http", action="send", address="10.0.0.1", role="owner",
                            status=200, sent={"sessionId": "s", "command": f"echo {number}"},
                            reply={})
    rotated = tmp_path / "audit.log.1"
    assert rotated.exists() and (tmp_path / "audit.log").stat().st_size <= 2000
    assert stat.S_IMODE(rotated.stat().st_mode) == 0o600
    entries, has_more = audit.page(1000)
    assert [e["id"] for e in entries] == list(range(40, 40 - len(entries), -1))
    assert len(entries) > 10 and has_more is False
    assert AuditLog(path).page(1)[0][0]["id"] == 40  # ids go on after a restart


def test_a_flood_of_refused_attempts_cannot_push_real_entries_out(make_server, project):
    viewer = str(uuid.uuid4())
    server = make_server("--no-rate-limit", "--viewer-token", viewer)
    sid = create(server, project)["id"]
    server.api("POST", f"session/{sid}/send", json={"command": "echo the-owners-entry"})
    client = LiveClient(SimpleNamespace(port=server.port, token=viewer))
    started = time.monotonic()
    try:
        for _ in range(200):  # huge ids, refused: written once a second, ids cut
            client.send({"type": "resize", "sessionId": "x" * 900_000, "cols": 1, "rows": 1})
        client.request({"type": "ping"}, "pong")
    finally:
        client.close()
    seconds = time.monotonic() - started  # long on a loaded machine: one line per second
    audit = (server.data_dir / "audit.log").read_text()
    assert len(audit) < 20_000 and not (server.data_dir / "audit.log.1").exists()
    entries = [json.loads(line) for line in audit.splitlines()]
    refused = [e for e in entries if e["outcome"] == "forbidden"]
    assert 1 <= len(refused) <= seconds + 1 < 200
    assert all(len(e["sessionId"]) == 128 for e in refused)
    assert any(e.get("command") == "echo the-owners-entry" for e in entries)
    time.sleep(1.1)
    client = LiveClient(SimpleNamespace(port=server.port, token=viewer))
    client.request({"type": "resize", "sessionId": sid, "cols": 1, "rows": 1}, "error")
    client.close()
    refused = [e for e in audit_entries(server, limit=100) if e["outcome"] == "forbidden"]
    assert sum(1 + e.get("leftOut", 0) for e in refused) == 201  # every attempt accounted for


def test_a_line_cut_short_by_a_crash_does_not_swallow_the_next_entry(make_server, project,
                                                                    tmp_path):
    server = make_server("--no-rate-limit")
    create(server, project)
    server.stop()
    path = tmp_path / "data" / "audit.log"
    with open(path, "ab") as log:  # a write the machine's crash (or a full disk) cut short
        log.write(b'{"id": 2, "time": "2026-')
    restarted = server.start()
    sid = create(restarted, project)["id"]
    newest = audit_entries(restarted)
    assert [entry["action"] for entry in newest] == ["create_session", "create_session"]
    assert newest[0]["sessionId"] == sid and newest[0]["id"] > newest[1]["id"]
