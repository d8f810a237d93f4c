"""The OpenAPI 3 description of the REST API, written as data.

A test compares the routes the app serves with the paths listed here, so keep them together.
"""

from __future__ import annotations

from typing import Any

_ID = {"type": "string", "format": "uuid"}
_TS = {"type": "integer", "description": "milliseconds since the epoch"}
_OBJ = {"type": "object", "additionalProperties": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: str = "query", required: bool = False,
           schema: dict | None = None, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema or {"type": "string"}, "description": description}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": required}}}}


def _ok(description: str, schema: dict | None = None, status: str = "200") -> dict[str, Any]:
    errors = {code: {"$ref": f"#/components/responses/{name}"} for code, name in (
        ("400", "BadRequest"), ("404", "NotFound"), ("429", "RateLimited"),
        ("default", "OtherError"))}
    return {status: {"description": description,
                     "content": {"application/json": {"schema": schema or _OBJ}}}, **errors}


def _op(summary: str, responses: dict, parameters: list | None = None,
        body: dict | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    return op


SID = _param("sessionId", "path", description="session id")
TID = _param("tabId", "path", description="tab id")
_STR = {"type": "string"}
_ERROR = {"type": "object", "required": ["error", "message", "timestamp"], "properties": {
    "error": _STR, "message": _STR, "timestamp": _TS}}

PATHS: dict[str, dict[str, Any]] = {
    "/sessions": {
        "get": _op("List every session", _ok("The sessions", {"type": "object", "properties": {
            "sessions": {"type": "array", "items": _ref("Session")}, "count": {"type": "integer"},
            "timestamp": _TS}})),
        "post": _op("Create a session (a terminal session starts its shell)",
                    _ok("Created", {"type": "object", "properties": {"session": _ref("Session")}},
                        "201"),
                    body=_body({"name": _STR, "cwd": _STR, "toolType": _STR,
                                "inputMode": {"enum": ["ai", "terminal"]}, "groupId": _STR,
                                "groupName": _STR, "groupEmoji": _STR},
                               ["name", "cwd", "toolType"])),
    },
    "/session/{sessionId}": {
        "get": _op("A session with its newest logs", _ok("The session"),
                   [SID, _param("tabId", description="AI tab whose logs to include")]),
        "patch": _op("Rename, change folder, mode or group", _ok("The session"), [SID],
                     _body({"name": _STR, "cwd": _STR, "inputMode": _STR, "groupId": _STR,
                            "groupName": _STR, "groupEmoji": _STR}, [])),
        "delete": _op("Delete a session and end its processes", _ok("Deleted"), [SID]),
    },
    "/session/{sessionId}/send": {
        "post": _op("Run a command or type into the running program (terminal mode); "
                    "prompt the tab's agent, or queue the prompt while it answers (AI mode)",
                    _ok("Sent (queued: true and the position when queued)"), [SID],
                    _body({"command": _STR, "tabId": _STR,
                           "inputMode": {"enum": ["ai", "terminal"]}}, ["command"])),
    },
    "/session/{sessionId}/interrupt": {
        "post": _op("Stop the running command or agent turn (SIGINT, then SIGTERM, then SIGKILL)",
                    _ok("Stopped; stoppedBy names the signal that did it"), [SID],
                    {"required": False, "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"tabId": _STR}}}}}),
    },
    "/session/{sessionId}/keys": {
        "post": _op("Send special keys (Escape, Tab, S-Tab, C-c, C-d, arrows, Enter...)",
                    _ok("Sent"), [SID],
                    _body({"keys": {"type": "array", "items": _STR}}, ["keys"])),
    },
    "/session/{sessionId}/screen": {
        "get": _op("The terminal's current screen (terminal view; see docs/terminal-protocol.md)",
                   _ok("cols, rows, lines, cursor, title, offset, alternate, ansi"), [SID]),
    },
    "/session/{sessionId}/input": {
        "post": _op("Type raw keys into the terminal, whatever runs (key budget, not the POST "
                    "quota)", _ok("Typed"), [SID], _body({"data": _STR}, ["data"])),
    },
    "/session/{sessionId}/resize": {
        "post": _op("Set the terminal's size; the last client to resize wins (key budget)",
                    _ok("Resized"), [SID],
                    _body({"cols": {"type": "integer", "minimum": 1, "maximum": 1000},
                           "rows": {"type": "integer", "minimum": 1, "maximum": 500}},
                          ["cols", "rows"])),
    },
    "/session/{sessionId}/live": {
        "post": _op("Allow remote control of the session", _ok("Live"), [SID]),
    },
    "/session/{sessionId}/offline": {
        "post": _op("Refuse remote send and interrupt (403)", _ok("Offline"), [SID]),
    },
    "/session/{sessionId}/logs": {
        "get": _op("A page of log entries, oldest first within the page", _ok("Entries"), [
            SID, _param("kind", schema={"enum": ["ai", "shell"]}),
            _param("tabId"), _param("after", schema={"type": "integer"}),
            _param("before", schema={"type": "integer"}),
            _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000})]),
    },
    "/session/{sessionId}/tabs": {
        "post": _op("Open a new AI tab", _ok("The tab", status="201"), [SID],
                    _body({"name": _STR}, [])),
    },
    "/session/{sessionId}/tabs/{tabId}": {
        "patch": _op("Rename or star a tab; set its agent's permission mode and model (from "
                     "the next turn; null: the agent's default)", _ok("The tab"), [SID, TID],
                     _body({"name": _STR, "starred": {"type": "boolean"},
                            "permissionMode": _STR, "model": _STR}, [])),
        "delete": _op("Close a tab (a session keeps at least one)", _ok("Closed"), [SID, TID]),
    },
    "/session/{sessionId}/tabs/{tabId}/select": {
        "post": _op("Make a tab active", _ok("Selected"), [SID, TID]),
    },
    "/session/{sessionId}/approvals": {
        "get": _op("What the session's agents ask the user and wait for (open approvals)",
                   _ok("Approvals", {"type": "object", "properties": {
                       "approvals": {"type": "array", "items": _ref("Approval")},
                       "count": {"type": "integer"}, "timestamp": _TS}}), [SID]),
    },
    "/session/{sessionId}/approvals/{approvalId}": {
        "post": _op("Decide an approval (409 when already decided)", _ok("Decided"),
                    [SID, _param("approvalId", "path", description="approval id")],
                    _body({"decision": {"enum": ["allow", "allow_session", "deny"]},
                           "message": _STR, "answers": _OBJ}, ["decision"])),
    },
    "/history": {
        "get": _op("Finished commands and turns, newest first", _ok("Entries"), [
            _param("sessionId"), _param("projectPath"),
            _param("limit", schema={"type": "integer"})]),
    },
    "/theme": {
        "get": _op("The active theme", _ok("The theme")),
        "put": _op("Switch to a built-in theme", _ok("The new theme"),
                   body=_body({"id": _STR}, ["id"])),
    },
    "/themes": {"get": _op("The built-in themes", _ok("Themes"))},
    "/commands": {"get": _op("Configured slash commands", _ok("Commands"))},
    "/whoami": {"get": _op("The caller's role: owner, or viewer (a view-only token)",
                           _ok("The role", {"type": "object", "properties": {
                               "role": {"enum": ["owner", "viewer"]}, "timestamp": _TS}}))},
    "/audit": {"get": _op("Audit log entries, newest first (owner only: 403 for a viewer)",
                          _ok("Entries", {"type": "object", "properties": {
                              "entries": {"type": "array", "items": _ref("AuditEntry")},
                              "count": {"type": "integer"}, "hasMore": {"type": "boolean"},
                              "timestamp": _TS}}), [
        _param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
        _param("before", schema={"type": "integer"},
               description="only entries with a lower id (the next page)")])},
    "/push/key": {"get": _op("The server's VAPID public key (base64url), the "
                             "applicationServerKey of pushManager.subscribe()",
                             _ok("publicKey"))},
    "/push/subscriptions": {
        "get": _op("The kept push subscriptions (id, categories, pushService, createdAt; "
                   "never their keys or whole endpoint)", _ok("Subscriptions")),
        "post": _op("Keep a browser's PushSubscription and the categories it wants (201 new; "
                    "200 the same endpoint again, updated; 409 beyond "
                    "--push-max-subscriptions)",
                    _ok("The subscription: id, categories, pushService, createdAt", status="201"),
                    body=_body({"subscription": _OBJ, "categories": {
                        "type": "array", "items": {"enum": ["needs_input", "finished",
                                                           "failed"]}}}, ["subscription"])),
    },
    "/push/subscriptions/{subscriptionId}": {
        "delete": _op("Forget a push subscription", _ok("Deleted"),
                      [_param("subscriptionId", "path", description="subscription id")]),
    },
    "/openapi.json": {"get": _op("This document", _ok("OpenAPI 3 document"))},
}


def document(server_url: str) -> dict[str, Any]:
    """The whole OpenAPI document, with the API's base URL (token included) as its server."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Maestro Web API", "version": "1.0.0",
                 "description": "Every path lives under /<token>/api. See docs/API.md."},
        "servers": [{"url": server_url}],
        "paths": PATHS,
        "components": {
            "schemas": {
                "Session": {"type": "object", "required": ["id", "name", "toolType", "state"],
                            "properties": {"id": _ID, "name": _STR, "toolType": _STR,
                                           "state": {"enum": ["idle", "busy", "waiting_input",
                                                              "connecting", "error"]},
                                           "inputMode": {"enum": ["ai", "terminal"]},
                                           "cwd": _STR, "isLive": {"type": "boolean"}}},
                "Error": _ERROR,
                "Approval": {"type": "object", "required": [
                    "id", "sessionId", "tabId", "kind", "tool", "title", "input", "createdAt"],
                    "properties": {"id": _ID, "sessionId": _ID, "tabId": _ID,
                                   "kind": {"enum": ["permission", "question", "plan"]},
                                   "tool": _STR, "title": _STR, "input": _OBJ,
                                   "diff": {"type": "string", "nullable": True},
                                   "options": {"type": "array", "items": _OBJ},
                                   "createdAt": _TS}},
                "AuditEntry": {"type": "object", "required": [
                    "id", "time", "address", "role", "channel", "action", "status", "outcome"],
                    "properties": {"id": {"type": "integer"}, "time": _STR, "address": _STR,
                                   "role": {"enum": ["owner", "viewer"]},
                                   "channel": {"enum": ["http", "ws"]}, "action": _STR,
                                   "sessionId": _STR, "tabId": _STR, "command": _STR,
                                   "commandTruncated": {"type": "boolean"}, "mode": _STR,
                                   "keys": {"type": "array", "items": _STR},
                                   "status": {"type": "integer"},
                                   "outcome": {"enum": ["ok", "forbidden", "failed"]}}},
            },
            "responses": {
                "BadRequest": {"description": "Invalid input",
                               "content": {"application/json": {"schema": _ref("Error")}}},
                "NotFound": {"description": "No such session or tab",
                             "content": {"application/json": {"schema": _ref("Error")}}},
                "OtherError": {"description": "403 offline or read-only token, 409 conflict, "
                                              "413 too large, 415 not JSON, 503 unavailable",
                               "content": {"application/json": {"schema": _ref("Error")}}},
                "RateLimited": {"description": "Over the GET or POST quota",
                                "content": {"application/json": {"schema": _OBJ}}},
            },
        },
    }
