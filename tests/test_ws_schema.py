"""docs/ws-schema.json against real WebSocket traffic: every message a test client sends fits
`clientMessage`, and every message the server sends back fits exactly one `serverMessage`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.api.messages import ACTION_FIELDS, MESSAGE_FIELDS
from tests.conftest import ROOT, wait_for
from tests.test_sessions_api import create
from tests.wsclient import LiveClient

# The schema's $refs to openapi.json resolve against the server's own document.
BASE = "https://maestro-web.invalid/docs/"


class SchemaClient(LiveClient):
    """A LiveClient that checks each message it sends against the client schema."""

    def __init__(self, server, validators: dict[str, jsonschema.Validator], **kwargs) -> None:
        self.validators = validators
        super().__init__(server, **kwargs)

    def send(self, message: dict[str, Any]) -> None:
        self.validators["clientMessage"].validate(message)
        super().send(message)


@pytest.fixture
def validators(server) -> dict[str, jsonschema.Validator]:
    document = server.api("GET", "openapi.json").json()
    ws_schema = {**json.loads((ROOT / "docs" / "ws-schema.json").read_text()),
                 "$id": BASE + "ws-schema.json"}
    registry = Registry().with_resources([
        (BASE + "openapi.json", Resource.from_contents(document,
                                                       default_specification=DRAFT202012)),
        (BASE + "ws-schema.json", Resource.from_contents(ws_schema)),
    ])
    jsonschema.Draft202012Validator.check_schema(ws_schema)
    return {name: jsonschema.Draft202012Validator(
        {"$ref": f"{BASE}ws-schema.json#/$defs/{name}"}, registry=registry)
        for name in ("clientMessage", "serverMessage")}


def seen(kind: str):
    """For LiveClient.wait_until: a message of `kind` came (before or after the last reply)."""
    return lambda messages: any(message["type"] == kind for message in messages)


def assert_server_messages_fit(client: LiveClient,
                               validators: dict[str, jsonschema.Validator]) -> set[str]:
    """Validate everything the server sent; the kinds seen (type, and success for replies)."""
    kinds = set()
    for message in client.messages:
        errors = list(validators["serverMessage"].iter_errors(message))
        assert not errors, f"{json.dumps(message)[:500]} does not fit: {errors[0].message[:500]}"
        kinds.add(message["type"] + ("!" if message.get("success") is False else ""))
    return kinds


def test_real_traffic_fits_the_websocket_schema(server, project, validators):
    terminal = create(server, project, name="ws")
    agent = create(server, project, name="agent", toolType="claude-code")
    sid, aid = terminal["id"], agent["id"]
    client = SchemaClient(server, validators)
    watcher = SchemaClient(server, validators, session_id=sid)
    client.request({"type": "ping", "requestId": 1}, "pong")
    client.request({"type": "get_sessions"}, "sessions_list")
    client.request({"type": "presence", "sessionId": sid, "visible": False}, "presence_result")
    client.request({"type": "subscribe", "sessionId": sid, "pty": True}, "subscribed")
    client.request({"type": "resize", "sessionId": sid, "cols": 100, "rows": 30},
                   "resize_result")
    sent = client.request({"type": "send_command", "sessionId": sid, "command": "echo ws-ok",
                           "requestId": "a"}, "command_result")
    assert sent["success"] is True
    client.wait_until(seen("history:added"))
    client.wait_until(seen("session:pty"))
    client.request({"type": "input", "sessionId": sid, "data": "sleep 30\r"}, "input_result")
    wait_for(lambda: server.api("GET", f"session/{sid}").json()["session"]["state"] == "busy")
    client.request({"type": "keys", "sessionId": sid, "keys": ["C-c"]}, "keys_result")
    client.request({"type": "interrupt", "sessionId": sid}, "interrupt_result")
    client.request({"type": "subscribe", "sessionId": None}, "subscribed")
    client.request({"type": "switch_mode", "sessionId": aid, "mode": "ai"},
                   "mode_switch_result")
    tab = client.request({"type": "new_tab", "sessionId": aid, "name": "t"},
                         "new_tab_result")["tab"]["id"]
    client.request({"type": "rename_tab", "sessionId": aid, "tabId": tab, "name": "u"},
                   "rename_tab_result")
    client.request({"type": "select_tab", "sessionId": aid, "tabId": tab}, "select_tab_result")
    client.request({"type": "close_tab", "sessionId": aid, "tabId": tab}, "close_tab_result")
    client.request({"type": "approve", "sessionId": aid, "approvalId": str(uuid.uuid4()),
                    "decision": "deny"}, "approve_result")  # 404: a failed reply
    client.request({"type": "send_command", "sessionId": str(uuid.uuid4()), "command": "x"},
                   "command_result")  # 404
    client.ws.send(json.dumps({"type": "teleport"}))  # not a client message: sent raw
    client.wait_for(lambda m: m["type"] == "error")
    client.ws.send("{not json")
    client.wait_for(lambda m: m["type"] == "error")
    for change in (lambda: server.api("PUT", "theme", json={"id": "nord"}),
                   lambda: server.api("POST", f"session/{sid}/offline"),
                   lambda: server.api("POST", f"session/{sid}/live"),
                   lambda: server.api("PATCH", f"session/{sid}", json={"name": "renamed"}),
                   lambda: server.api("DELETE", f"session/{aid}"),
                   lambda: server.api("POST", "sessions", json={
                       "name": "late", "cwd": str(project), "toolType": "claude-code"})):
        assert change().status_code in (200, 201)
    client.wait_until(seen("session:added"))
    kinds = assert_server_messages_fit(client, validators)
    kinds |= assert_server_messages_fit(watcher, validators)
    expected = {"init", "pong", "sessions_list", "subscribed", "resize_result",
                "command_result", "command_result!", "input_result", "keys_result",
                "interrupt_result", "mode_switch_result", "new_tab_result",
                "rename_tab_result", "select_tab_result", "close_tab_result", "approve_result!",
                "error", "session:state", "session:added", "session:removed", "session:live",
                "session:offline", "tabs:change", "theme:change", "session:output",
                "session:exit", "history:added", "session:pty"}
    assert expected <= kinds, f"never seen: {sorted(expected - kinds)}"
    client.close()
    watcher.close()


@pytest.mark.parametrize("message", [
    {"type": "send_command", "sessionId": "s"},
    {"type": "resize", "sessionId": "s", "cols": 0, "rows": 10},
    {"type": "switch_mode", "sessionId": "s", "mode": "voice"},
    {"type": "interrupt", "sessionId": "s", "tabID": "t"},
    {"sessionId": "s"},
])
def test_the_client_schema_refuses_malformed_messages(validators, message):
    assert not validators["clientMessage"].is_valid(message)


def test_the_schema_and_the_server_agree_on_each_actions_fields():
    schema = json.loads((ROOT / "docs" / "ws-schema.json").read_text())["$defs"]
    for kind, fields in ACTION_FIELDS.items():
        described = schema[f"client.{kind}"]
        assert described["additionalProperties"] is False
        assert set(described["properties"]) == fields | MESSAGE_FIELDS, kind


def test_an_action_with_an_unknown_field_is_refused_and_not_run(server, project):
    sid = create(server, project, toolType="terminal")["id"]
    client = LiveClient(server)
    try:
        reply = client.request({"type": "rename_tab", "sessionId": sid, "nmae": "typo"},
                               "rename_tab_result")
        assert (reply["success"], reply["statusCode"]) == (False, 400)
        assert reply["error"].startswith("Unknown field 'nmae'; rename_tab takes")
        pong = client.request({"type": "ping", "extra": 1}, "pong")  # reads stay lenient
        assert pong["type"] == "pong"
    finally:
        client.close()
