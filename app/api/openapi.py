"""The OpenAPI 3.1 description of the REST API, written as data: one `_route` entry per route.

Request bodies are exact (required fields, lengths, enums, ranges, no unknown fields), and the
server holds to them: `json_body()` refuses a field that the route's body schema does not
list, and the views check the rest. tests/test_openapi.py walks Flask's url_map against these
entries (a route served but not written here, or written but not served, fails by name),
validates real responses against the response schemas and runs schemathesis on the server.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ..push.subscription import CATEGORIES, ENDPOINT_MAX_CHARS, KEY_MAX_CHARS
from ..sessions.agents.approvals import DECISIONS, MESSAGE_MAX
from ..sessions.manager import MAX_COLS, MAX_ROWS
from ..sessions.model import INPUT_MODES, TERMINAL_TOOL
from ..sessions.shell_protocol import KEYS
from ..sessions.tmux import NAME_MAX as TMUX_NAME_MAX
from .limits import (
    AUDIT_PAGE_MAX,
    GROUP_FIELD_MAX,
    HISTORY_PAGE_MAX,
    LOGS_PAGE_MAX,
    NAME_MAX,
    PATH_MAX,
    THEME_ID_MAX,
)

INT64_MAX = 2**63 - 1
TEXT_MAX = 1000  # text_field's default

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_TS = {"type": "integer", "description": "milliseconds since the epoch"}
_OPEN = {"type": "object"}  # a JSON object whose keys are not fixed
_NULLABLE_OPEN = {"type": ["object", "null"]}
# What text_field() takes: a string with something other than whitespace in it.
_NOT_BLANK = r"\S"


def _text(max_length: int = TEXT_MAX, nullable: bool = False) -> dict[str, Any]:
    """A text_field(): not empty, not blank, at most `max_length`; null counts as absent."""
    return {"type": ["string", "null"] if nullable else "string", "minLength": 1,
            "maxLength": max_length, "pattern": _NOT_BLANK}


def _printable() -> dict[str, Any]:
    """A tab's permissionMode or model: text without control characters (a CLI argument)."""
    return {**_text(NAME_MAX, nullable=True),
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$"}


def _enum(values: tuple[str, ...] | list[str], nullable: bool = False) -> dict[str, Any]:
    return {"enum": [*values, None] if nullable else list(values)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), *,
            closed: bool = False) -> dict[str, Any]:
    """An object schema; `closed`: no other property (request bodies)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _ok(*fields: str, **typed: Any) -> dict[str, Any]:
    """A success body: `typed` fields, plus `fields` of a generic type, plus timestamp."""
    properties = {"timestamp": _TS, **typed}
    for name in fields:
        properties.setdefault(name, {})
    return _object(properties, (*typed, *fields, "timestamp"))


_SUCCESS = {"success": {"const": True}}
_SESSION_ID = {"sessionId": _STR}

# -- the error answers; each route lists the statuses it can give ------------------------------

_ERRORS = {
    "400": "Invalid input (the message names the field)",
    "403": "A view-only token, or the session is offline",
    "404": "No such session, tab or approval",
    "409": "Conflicts with the session's state (nothing running, last tab, a limit reached...)",
    "413": "The body or the text is over its limit",
    "415": "The body is not declared as JSON",
    "501": "A program the request needs is not installed (the message says how to install it)",
    "503": "The session's shell could not start or has just ended",
    "507": "The server is out of resources for another shell",
}
_BODY_ERRORS = ("400", "413", "415")
_SESSION_ERRORS = ("404",)


def _param(name: str, where: str = "query", schema: dict | None = None,
           description: str = "") -> dict[str, Any]:
    # A text query argument left empty counts as not given; a path segment is never empty.
    text = {"type": "string", "minLength": 1} if where == "path" else {"type": "string"}
    param = {"name": name, "in": where, "required": where == "path", "schema": schema or text}
    if description:
        param["description"] = description
    return param


SID = _param("sessionId", "path", description="session id")
TID = _param("tabId", "path", description="tab id")
AID = _param("approvalId", "path", description="approval id")


def _route(summary: str, response: dict[str, Any], *, status: str = "200",
           errors: tuple[str, ...] = (), params: tuple[dict, ...] = (),
           body: dict[str, Any] | None = None, body_required: bool = True) -> dict[str, Any]:
    """One operation: its success answer, the errors it can give, parameters and body."""
    responses: dict[str, Any] = {status: {"description": "OK", "content": {
        "application/json": {"schema": response}}}}
    codes = set(errors) | ({"403"} if body is not None else set())
    if body is not None:
        codes |= set(_BODY_ERRORS)
    for code in sorted(codes):
        responses[code] = {"$ref": f"#/components/responses/E{code}"}
    responses["429"] = {"$ref": "#/components/responses/RateLimited"}
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": {
            "application/json": {"schema": body}}}
    return operation


def _actions(summary: str, response: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A state-changing route with no body: a view-only token gets 403."""
    kwargs["errors"] = (*kwargs.get("errors", ()), "403")
    return _route(summary, response, **kwargs)


def _subscribe() -> dict[str, Any]:
    """POST push/subscriptions: 201 for a new browser, 200 for one sent again (updated)."""
    key = {"type": "string", "minLength": 1, "maxLength": KEY_MAX_CHARS}
    operation = _route(
        "Keep a browser's PushSubscription and the categories it wants (409 beyond "
        "--push-max-subscriptions)", _ok(subscription=_ref("PushSubscription")), status="201",
        errors=("409",), body=_object({
            "subscription": _object({
                "endpoint": {"type": "string", "minLength": 1, "maxLength": ENDPOINT_MAX_CHARS},
                "expirationTime": {"type": ["number", "null"]},
                "keys": _object({"p256dh": key, "auth": key}, ("p256dh", "auth"))},
                ("endpoint", "keys")),
            "categories": {"type": "array", "items": _enum(CATEGORIES), "minItems": 1}},
            ("subscription",), closed=True))
    operation["responses"]["200"] = operation["responses"]["201"]
    return operation


@functools.lru_cache(maxsize=8)
def paths(tool_types: tuple[str, ...] = (TERMINAL_TOOL,),
          max_command_chars: int = 100_000) -> dict[str, dict[str, Any]]:
    """Every route, keyed by its path under /api: one entry per served route."""
    groups = {name: {"type": ["string", "null"], "maxLength": limit}
              for name, limit in GROUP_FIELD_MAX.items()}
    session = _ref("Session")
    tab = _ref("Tab")
    return {
        "/sessions": {
            "get": _route("List every session", _ok(
                sessions={"type": "array", "items": session}, count=_INT)),
            "post": _route(
                "Create a session (a terminal session starts its shell)",
                _ok(session=session), status="201", errors=("404", "409", "501", "503", "507"),
                body=_object({"name": _text(NAME_MAX), "cwd": {
                    **_text(PATH_MAX), "description": "an existing folder: absolute, or ~/..."},
                    "toolType": _enum(tool_types),
                    "inputMode": _enum(INPUT_MODES, nullable=True), **groups,
                    "tmux": {**_text(TMUX_NAME_MAX, nullable=True),
                             "description": "a terminal session attaches to this tmux "
                                            "session (404 when it does not exist)"}},
                    ("name", "cwd", "toolType"), closed=True)),
        },
        "/tmux": {
            "get": _route("The host's tmux sessions and their windows, to attach to",
                          _ok(sessions={"type": "array", "items": {"type": "object"}},
                              count=_INT),
                          errors=("403", "501")),
        },
        "/dirs": {
            "get": _route("The sub-folders of a folder inside the home folder (the folder "
                          "picker)", _ok(
                              path=_STR, home=_STR, parent={"type": ["string", "null"]},
                              folders={"type": "array", "items": _object(
                                  {"name": _STR, "path": _STR}, ("name", "path"))},
                              count=_INT, truncated={"type": "boolean"}),
                          errors=("400", "403", "404"),
                          params=(_param("path", description="the folder (default: home; "
                                         "~ expanded)"),)),
        },
        "/session/{sessionId}": {
            "get": _route("A session with its newest logs", _ok(session=_ref("SessionDetail")),
                          errors=_SESSION_ERRORS,
                          params=(SID, _param("tabId", description="AI tab whose logs to "
                                              "include (default: the active tab)"))),
            "patch": _route(
                "Rename, change folder, mode or group", _ok(session=session),
                errors=(*_SESSION_ERRORS, "503", "507"), params=(SID,),
                body={**_object({"name": _text(NAME_MAX), "cwd": _text(PATH_MAX),
                                 "inputMode": _enum(INPUT_MODES), **groups}, closed=True),
                      "minProperties": 1}),
            "delete": _actions("Delete a session and end its processes",
                               _ok(**_SUCCESS, **_SESSION_ID), errors=_SESSION_ERRORS,
                               params=(SID,)),
        },
        "/session/{sessionId}/send": {
            "post": _route(
                "Run a command or type into the running program (terminal mode); prompt the "
                "tab's agent, or queue the prompt while it answers (AI mode)",
                _ok("message", **_SUCCESS, **_SESSION_ID),
                errors=(*_SESSION_ERRORS, "409", "503", "507"), params=(SID,),
                body=_object({"command": {"type": "string", "minLength": 1,
                                          "maxLength": max_command_chars,
                                          "pattern": "^[^\\u0000]*$",
                                          "description": "413 when longer"},
                              "tabId": _text(nullable=True),
                              "inputMode": _enum(INPUT_MODES, nullable=True)},
                             ("command",), closed=True)),
        },
        "/session/{sessionId}/interrupt": {
            "post": _route(
                "Stop the running command or agent turn (SIGINT, then SIGTERM, then SIGKILL)",
                _ok("message", **_SUCCESS, **_SESSION_ID, wasRunning=_BOOL,
                    stoppedBy={"type": ["string", "null"]}),
                errors=_SESSION_ERRORS, params=(SID,),
                body=_object({"tabId": _text(nullable=True)}, closed=True),
                body_required=False),
        },
        "/session/{sessionId}/keys": {
            "post": _route(
                "Send special keys to the running program", _ok(
                    **_SUCCESS, **_SESSION_ID, keys={"type": "array", "items": _STR}),
                errors=(*_SESSION_ERRORS, "409"), params=(SID,),
                body=_object({"keys": {"type": "array", "minItems": 1,
                                       "items": _enum(tuple(KEYS))}}, ("keys",), closed=True)),
        },
        "/session/{sessionId}/screen": {
            "get": _route("The terminal's current screen (docs/terminal-protocol.md)",
                          _ref("Screen"), errors=_SESSION_ERRORS, params=(SID,)),
        },
        "/session/{sessionId}/input": {
            "post": _route(
                "Type raw keys into the terminal, whatever runs (key budget, not the POST "
                "quota)", _ok(**_SUCCESS, **_SESSION_ID),
                errors=(*_SESSION_ERRORS, "409", "503", "507"), params=(SID,),
                body=_object({"data": {"type": "string", "minLength": 1,
                                       "maxLength": max_command_chars}},
                             ("data",), closed=True)),
        },
        "/session/{sessionId}/resize": {
            "post": _route(
                "Set the terminal's size; the last client to resize wins (key budget)",
                _ok(**_SUCCESS, **_SESSION_ID, cols=_INT, rows=_INT),
                errors=_SESSION_ERRORS, params=(SID,),
                body=_object({"cols": {"type": "integer", "minimum": 1, "maximum": MAX_COLS},
                              "rows": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS}},
                             ("cols", "rows"), closed=True)),
        },
        "/session/{sessionId}/live": {
            "post": _actions("Allow remote control of the session",
                             _ok(**_SUCCESS, session=session), errors=_SESSION_ERRORS,
                             params=(SID,)),
        },
        "/session/{sessionId}/offline": {
            "post": _actions("Refuse remote control (send, interrupt, keys: 403)",
                             _ok(**_SUCCESS, session=session), errors=_SESSION_ERRORS,
                             params=(SID,)),
        },
        "/session/{sessionId}/logs": {
            "get": _route(
                "A page of log entries, oldest first within the page",
                _ok("tabId", **_SESSION_ID, entries={"type": "array", "items": _ref("LogEntry")},
                    count=_INT, hasMore=_BOOL, kind=_enum(("ai", "shell"))),
                errors=("400", *_SESSION_ERRORS), params=(
                    SID, _param("kind", schema=_enum(("ai", "shell")),
                                description="default: the session's mode"),
                    _param("tabId", description="AI tab (default: the active tab)"),
                    _param("after", schema={"type": "integer", "minimum": 0,
                                            "maximum": INT64_MAX},
                           description="entries after this id (not with before)"),
                    _param("before", schema={"type": "integer", "minimum": 0,
                                             "maximum": INT64_MAX},
                           description="entries before this id (not with after)"),
                    _param("limit", schema={"type": "integer", "minimum": 1,
                                            "maximum": LOGS_PAGE_MAX}))),
        },
        "/session/{sessionId}/tabs": {
            "post": _route("Open a new AI tab", _ok(**_SUCCESS, tab=tab), status="201",
                           errors=(*_SESSION_ERRORS, "409"), params=(SID,),
                           body=_object({"name": _text(NAME_MAX, nullable=True)}, closed=True),
                           body_required=False),
        },
        "/session/{sessionId}/tabs/{tabId}": {
            "patch": _route(
                "Rename or star a tab; set its agent's permission mode and model (from the "
                "next turn; null: the agent's default)", _ok(**_SUCCESS, tab=tab),
                errors=_SESSION_ERRORS, params=(SID, TID),
                body={**_object({
                    "name": _text(NAME_MAX, nullable=True), "starred": _BOOL,
                    "permissionMode": {**_printable(), "description": "one of the agent's "
                                                                     "modes"},
                    "model": {**_printable(), "description": "for agents that take a model"}},
                    closed=True), "minProperties": 1}),
            "delete": _actions("Close a tab (a session keeps at least one)",
                               _ok(**_SUCCESS, **_SESSION_ID, tabId=_STR),
                               errors=(*_SESSION_ERRORS, "409"), params=(SID, TID)),
        },
        "/session/{sessionId}/tabs/{tabId}/select": {
            "post": _actions("Make a tab active", _ok(**_SUCCESS, tab=tab),
                             errors=_SESSION_ERRORS, params=(SID, TID)),
        },
        "/session/{sessionId}/approvals": {
            "get": _route("What the session's agents ask and wait for (open approvals)",
                          _ok(**_SESSION_ID, approvals={"type": "array",
                                                        "items": _ref("Approval")},
                              count=_INT), errors=_SESSION_ERRORS, params=(SID,)),
        },
        "/session/{sessionId}/approvals/{approvalId}": {
            "post": _route(
                "Decide an approval ('allow_session' for permissions only; a question's "
                "'allow' needs answers)", _ok(**_SUCCESS, **_SESSION_ID,
                                             approval=_ref("Approval")),
                errors=(*_SESSION_ERRORS, "409"), params=(SID, AID),
                body=_object({"decision": _enum(DECISIONS),
                              "message": {"type": ["string", "null"],
                                          "maxLength": MESSAGE_MAX},
                              "answers": {"type": ["object", "null"], "additionalProperties": {
                                  "type": "string", "maxLength": MESSAGE_MAX}}},
                             ("decision",), closed=True)),
        },
        "/history": {
            "get": _route(
                "Finished commands and turns, newest first",
                _ok(entries={"type": "array", "items": _ref("HistoryEntry")}, count=_INT),
                errors=("400",), params=(
                    _param("sessionId"), _param("projectPath"),
                    _param("limit", schema={"type": "integer", "minimum": 1,
                                            "maximum": HISTORY_PAGE_MAX}))),
        },
        "/theme": {
            "get": _route("The active theme", _ok(theme=_ref("Theme"))),
            "put": _route("Switch to a built-in theme", _ok(**_SUCCESS, theme=_ref("Theme")),
                          body=_object({"id": {**_text(THEME_ID_MAX),
                                               "description": "see GET themes"}},
                                       ("id",), closed=True)),
        },
        "/themes": {
            "get": _route("The built-in themes", _ok(
                themes={"type": "array", "items": _ref("Theme")}, count=_INT,
                activeThemeId=_STR)),
        },
        "/commands": {
            "get": _route("The config file's commands (agents' own come with each tab)", _ok(
                commands={"type": "array", "items": _object(
                    {"command": _STR, "description": _STR}, ("command",))}, count=_INT)),
        },
        "/agents": {
            "get": _route("The agents: their protocol, whether they ask, permission modes and "
                          "model choice", _ok(agents={"type": "array", "items": _object({
                              "id": _STR, "protocol": _STR, "canAsk": _BOOL,
                              "permissionModes": {"type": "array", "items": _STR},
                              "permissionMode": {"type": ["string", "null"]},
                              "model": {"type": ["string", "null"]}, "canChooseModel": _BOOL},
                              ("id", "protocol", "canAsk", "permissionModes",
                               "canChooseModel"))}, count=_INT)),
        },
        "/whoami": {
            "get": _route("The caller's role: owner, or viewer (a view-only token), and the id "
                          "under which a browser keeps its copies of logs",
                          _ok(role=_enum(("owner", "viewer")), cacheId=_STR)),
        },
        "/audit": {
            "get": _route(
                "Audit log entries, newest first (owner only)",
                _ok(entries={"type": "array", "items": _ref("AuditEntry")}, count=_INT,
                    hasMore=_BOOL), errors=("400", "403"), params=(
                    _param("limit", schema={"type": "integer", "minimum": 1,
                                            "maximum": AUDIT_PAGE_MAX}),
                    _param("before", schema={"type": "integer", "minimum": 0,
                                             "maximum": INT64_MAX},
                           description="only entries with a lower id (the next page)"))),
        },
        "/push/key": {
            "get": _route("The server's VAPID public key (base64url), the "
                          "applicationServerKey of pushManager.subscribe()",
                          _ok(publicKey=_STR)),
        },
        "/push/subscriptions": {
            "get": _route("The kept push subscriptions (never their keys or whole endpoint)",
                          _ok(subscriptions={"type": "array", "items": _ref("PushSubscription")},
                              count=_INT)),
            "post": _subscribe(),
        },
        "/push/subscriptions/{subscriptionId}": {
            "delete": _actions("Forget a push subscription",
                               _ok(**_SUCCESS, id=_STR), errors=("404",),
                               params=(_param("subscriptionId", "path",
                                              description="subscription id"),)),
        },
        "/openapi.json": {
            "get": _route("This document", _object({"openapi": {"const": "3.1.0"}},
                                                   ("openapi", "paths"))),
        },
    }


_USAGE = {"type": ["object", "null"]}
_TAB = _object({
    "id": _STR, "agentSessionId": {"type": ["string", "null"]},
    "name": {"type": ["string", "null"]}, "starred": _BOOL, "state": _enum(("idle", "busy")),
    "createdAt": _TS, "usageStats": _USAGE, "thinkingStartTime": {"type": ["integer", "null"]},
    "hasUnread": _BOOL, "queuedPrompts": {"type": "array"},
    "permissionMode": {"type": ["string", "null"]}, "model": {"type": ["string", "null"]}},
    ("id", "name", "starred", "state", "createdAt", "hasUnread"))
_SESSION_PROPERTIES = {
    "id": _STR, "name": _STR, "toolType": _STR,
    "state": _enum(("idle", "busy", "waiting_input", "connecting", "error")),
    "inputMode": _enum(INPUT_MODES), "cwd": _STR,
    "groupId": {"type": ["string", "null"]}, "groupName": {"type": ["string", "null"]},
    "groupEmoji": {"type": ["string", "null"]}, "usageStats": _USAGE,
    "lastResponse": _NULLABLE_OPEN, "agentSessionId": {"type": ["string", "null"]},
    "aiTabs": {"type": "array", "items": _ref("Tab")}, "activeTabId": _STR,
    "isLive": _BOOL, "liveEnabledAt": _TS, "createdAt": _TS}
_SESSION_REQUIRED = ("id", "name", "toolType", "state", "inputMode", "cwd", "aiTabs",
                     "activeTabId", "isLive", "createdAt")
_LOG_ENTRY = _object({"id": _INT, "timestamp": _TS, "source": _enum(
    ("user", "stdout", "stderr", "system", "ai", "thinking", "tool", "error")), "text": _STR},
    ("id", "timestamp", "source", "text"))
_ERROR = _object({"error": _STR, "message": _STR, "timestamp": _TS},
                 ("error", "message", "timestamp"))

COMPONENTS: dict[str, Any] = {
    "schemas": {
        "Session": _object(_SESSION_PROPERTIES, _SESSION_REQUIRED),
        "SessionDetail": _object({
            **_SESSION_PROPERTIES, "aiLogs": {"type": "array", "items": _ref("LogEntry")},
            "shellLogs": {"type": "array", "items": _ref("LogEntry")},
            "aiLogsHasMore": _BOOL, "shellLogsHasMore": _BOOL},
            (*_SESSION_REQUIRED, "aiLogs", "shellLogs")),
        "Tab": _TAB,
        "LogEntry": _LOG_ENTRY,
        "HistoryEntry": _object({
            "id": _STR, "type": _STR, "timestamp": _TS, "summary": _STR,
            "fullResponse": {"type": ["string", "null"]}, "sessionId": _STR,
            "sessionName": _STR, "projectPath": _STR, "success": {"type": ["boolean", "null"]},
            "elapsedTimeMs": {"type": ["integer", "null"]},
            "exitCode": {"type": ["integer", "null"]}},
            ("id", "type", "timestamp", "summary", "sessionId")),
        "Theme": _object({"id": _STR, "name": _STR, "mode": _enum(("dark", "light", "vibe")),
                          "colors": {"type": "object", "additionalProperties": _STR}},
                         ("id", "name", "mode", "colors")),
        "Screen": _ok(**_SESSION_ID, cols=_INT, rows=_INT,
                      lines={"type": "array", "items": _STR},
                      cursor=_object({"x": _INT, "y": _INT, "visible": _BOOL},
                                     ("x", "y", "visible")),
                      title=_STR, offset=_INT, alternate=_BOOL, ansi=_STR),
        "Approval": _object({
            "id": _STR, "sessionId": _STR, "tabId": _STR,
            "kind": _enum(("permission", "question", "plan")), "tool": _STR, "title": _STR,
            # input: the call's object, or its JSON text cut at 64 KiB (then inputCut)
            "input": {"type": ["object", "string"]}, "inputCut": _BOOL,
            "diff": {"type": ["string", "null"]},
            "options": {"type": "array", "items": _OPEN}, "optionsCut": _BOOL,
            "createdAt": _TS},
            ("id", "sessionId", "tabId", "kind", "tool", "title", "input", "createdAt")),
        "AuditEntry": _object({
            "id": _INT, "time": _STR, "address": _STR, "role": _enum(("owner", "viewer")),
            "channel": _enum(("http", "ws")), "action": _STR, "sessionId": _STR,
            "tabId": _STR, "command": _STR, "commandTruncated": _BOOL, "mode": _STR,
            "keys": {"type": "array", "items": _STR}, "status": _INT,
            "outcome": _enum(("ok", "forbidden", "failed"))},
            ("id", "time", "address", "role", "channel", "action", "status", "outcome")),
        "PushSubscription": _object({
            "id": _STR, "categories": {"type": "array", "items": _enum(CATEGORIES)},
            "pushService": _STR, "createdAt": _TS},
            ("id", "categories", "pushService", "createdAt")),
        "Error": _ERROR,
        "RateLimited": _object({"statusCode": {"const": 429}, "error": _STR, "message": _STR,
                                "retryAfter": _INT, "timestamp": _TS},
                               ("statusCode", "error", "message", "retryAfter", "timestamp")),
    },
    "responses": {
        **{f"E{code}": {"description": text, "content": {"application/json": {
            "schema": _ref("Error")}}} for code, text in _ERRORS.items()},
        "RateLimited": {"description": "Over the GET or POST quota (or the key budget)",
                        "content": {"application/json": {"schema": _ref("RateLimited")}}},
    },
}


def document(server_url: str, tool_types: tuple[str, ...],
             max_command_chars: int) -> dict[str, Any]:
    """The whole OpenAPI document, with the API's base URL (token included) as its server."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Maestro Web API", "version": "1.0.0",
                 "description": "Every path lives under /<token>/api. See docs/API.md; the "
                                "WebSocket's messages: docs/ws-schema.json."},
        "servers": [{"url": server_url}],
        "paths": paths(tool_types, max_command_chars),
        "components": COMPONENTS,
    }


def spec_path(rule: str) -> str:
    """A Flask rule under /api as an OpenAPI path: `/api/session/<session_id>` →
    `/session/{sessionId}`."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: "{" + _camel(match.group(1)) + "}",
                  rule.removeprefix("/api"))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def body_fields(rule: str, method: str) -> frozenset[str] | None:
    """The fields a route's body may hold (None: the route is not described here)."""
    operation = paths().get(spec_path(rule), {}).get(method.lower())
    if operation is None or "requestBody" not in operation:
        return None if operation is None else frozenset()
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return frozenset(schema["properties"])
