"""Sessions blueprint: list, create, read, change, delete, live/offline, tabs and logs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from ..errors import ApiError, now_ms
from ..folders import expand_folder
from ..roles import VIEWER, caller_role
from ..sessions import tmux
from . import API_PREFIX, approvals, int_arg, json_body, ok, query_arg, services, text_field
from .limits import GROUP_FIELD_MAX, LOGS_PAGE_MAX, NAME_MAX, PATH_MAX

bp = Blueprint("sessions", __name__, url_prefix=API_PREFIX)
bp.register_blueprint(approvals.bp)

LOGS_PAGE_DEFAULT = 100
GROUP_FIELDS = ("groupId", "groupName", "groupEmoji")


@bp.get("/sessions")
def list_sessions() -> Response:
    """The list's JSON is kept between changes (SerializedList); only the count and the
    timestamp are added per request, in the order ok() would give them."""
    sessions, count = services().manager.list_public_json()
    body = b'{"sessions":%s,"count":%d,"timestamp":%d}\n' % (sessions, count, now_ms())
    return Response(body, mimetype="application/json")


@bp.post("/sessions")
def create_session():
    body = json_body()
    session = services().manager.create(
        name=text_field(body, "name", required=True, max_length=NAME_MAX),
        cwd=expand_folder(text_field(body, "cwd", required=True, max_length=PATH_MAX)),
        tool_type=text_field(body, "toolType", required=True),
        input_mode=text_field(body, "inputMode"),
        groups=_groups(body),
        tmux=text_field(body, "tmux", max_length=tmux.NAME_MAX),
    )
    return ok({"session": session.public()}, 201)


@bp.get("/tmux")
def list_tmux():
    """The host's tmux sessions with their windows, to attach a terminal session to."""
    if caller_role() == VIEWER:  # what runs at the desk is not for a view-only link
        raise ApiError(403, "A view-only link cannot list the machine's tmux sessions")
    sessions = services().manager.tmux.sessions()
    return ok({"sessions": sessions, "count": len(sessions)})


@bp.get("/session/<session_id>")
def get_session(session_id: str):
    detail = services().manager.detail(session_id, request.args.get("tabId") or None)
    return ok({"session": detail})


@bp.patch("/session/<session_id>")
def update_session(session_id: str):
    body = json_body()
    changes: dict[str, Any] = {}
    for field, limit in (("name", NAME_MAX), ("cwd", PATH_MAX), ("inputMode", 20)):
        if field in body:
            changes[field] = text_field(body, field, required=True, max_length=limit)
    if "cwd" in changes:
        changes["cwd"] = expand_folder(changes["cwd"])
    changes.update(_groups(body, only_present=True))
    unknown = set(body) - set(changes)
    if unknown:
        raise ApiError(400, f"Cannot change {', '.join(sorted(unknown))}; "
                            "PATCH takes name, cwd, inputMode, groupId, groupName, groupEmoji")
    if not changes:
        raise ApiError(400, "Nothing to change: give name, cwd, inputMode or a group field")
    session = services().manager.update(session_id, changes)
    return ok({"session": session.public()})


@bp.delete("/session/<session_id>")
def delete_session(session_id: str):
    services().manager.delete(session_id)
    return ok({"success": True, "sessionId": session_id})


@bp.post("/session/<session_id>/live")
def make_live(session_id: str):
    session = services().manager.set_live(session_id, True)
    return ok({"success": True, "session": session.public()})


@bp.post("/session/<session_id>/offline")
def make_offline(session_id: str):
    session = services().manager.set_live(session_id, False)
    return ok({"success": True, "session": session.public()})


@bp.get("/session/<session_id>/logs")
def get_logs(session_id: str):
    after = int_arg("after")
    before = int_arg("before")
    if after is not None and before is not None:
        raise ApiError(400, "Give either 'after' or 'before', not both")
    limit = int_arg("limit", default=LOGS_PAGE_DEFAULT, low=1, high=LOGS_PAGE_MAX)
    tab_id = request.args.get("tabId") or None
    manager = services().manager
    kind = query_arg("kind")
    if kind is None:
        kind = _default_kind(session_id, tab_id)
    if kind not in ("ai", "shell"):
        raise ApiError(400, "Query parameter 'kind' must be 'ai' or 'shell'")
    page = manager.logs(session_id, kind, tab_id, after=after, before=before, limit=limit)
    return ok({"sessionId": session_id, **page})


def _default_kind(session_id: str, tab_id: str | None) -> str:
    if tab_id:
        return "ai"
    return "shell" if services().manager.get(session_id).input_mode == "terminal" else "ai"


# -- tabs -------------------------------------------------------------------------------------

@bp.post("/session/<session_id>/tabs")
def new_tab(session_id: str):
    name = text_field(json_body(), "name", max_length=NAME_MAX)
    tab = services().manager.new_tab(session_id, name)
    return ok({"success": True, "tab": tab.public()}, 201)


@bp.patch("/session/<session_id>/tabs/<tab_id>")
def update_tab(session_id: str, tab_id: str):
    body = json_body()
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = text_field(body, "name", max_length=NAME_MAX)
    if "starred" in body:
        if not isinstance(body["starred"], bool):
            raise ApiError(400, "'starred' must be true or false")
        changes["starred"] = body["starred"]
    for field in ("permissionMode", "model"):  # null: back to the agent's default
        if field in body:
            value = text_field(body, field, max_length=NAME_MAX)
            if value is not None and not value.isprintable():  # it becomes a CLI argument
                raise ApiError(400, f"'{field}' must not contain control characters")
            if value is not None and value.startswith("-"):  # ... never an option of its own
                raise ApiError(400, f"'{field}' must not start with '-'")
            changes[field] = value
    if not changes or set(body) - set(changes):
        raise ApiError(400, "PATCH a tab with 'name', 'starred', 'permissionMode' and/or "
                            "'model'")
    tab = services().manager.update_tab(session_id, tab_id, changes)
    return ok({"success": True, "tab": tab.public()})


@bp.delete("/session/<session_id>/tabs/<tab_id>")
def close_tab(session_id: str, tab_id: str):
    services().manager.close_tab(session_id, tab_id)
    return ok({"success": True, "sessionId": session_id, "tabId": tab_id})


@bp.post("/session/<session_id>/tabs/<tab_id>/select")
def select_tab(session_id: str, tab_id: str):
    tab = services().manager.select_tab(session_id, tab_id)
    return ok({"success": True, "tab": tab.public()})


def _groups(body: dict[str, Any], only_present: bool = False) -> dict[str, str | None]:
    """The group fields of a body (all of them, or only those present), each a string or null."""
    groups = {}
    for field in GROUP_FIELDS:
        if field in body or not only_present:
            value = body.get(field)
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"'{field}' must be a string or null")
            if value is not None and len(value) > GROUP_FIELD_MAX[field]:
                raise ApiError(400, f"'{field}' is longer than {GROUP_FIELD_MAX[field]} "
                                    "characters")
            groups[field] = value
    return groups
