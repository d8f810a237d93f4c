"""The terminal view's endpoints: the current screen, raw input and the terminal's size.

Registered inside the commands blueprint (endpoints `commands.terminal.*`); input and resize
spend the key budget, not the POST quota (see app/ratelimit.py).
"""

from __future__ import annotations

from flask import Blueprint

from . import json_body, ok, services

bp = Blueprint("terminal", __name__)


@bp.get("/session/<session_id>/screen")
def screen(session_id: str):
    return ok(services().manager.screen(session_id))


@bp.post("/session/<session_id>/input", endpoint="input")
def write_input(session_id: str):
    services().manager.write_input(session_id, json_body().get("data"))
    return ok({"success": True, "sessionId": session_id})


@bp.post("/session/<session_id>/resize")
def resize(session_id: str):
    body = json_body()
    cols, rows = services().manager.resize(session_id, body.get("cols"), body.get("rows"))
    return ok({"success": True, "sessionId": session_id, "cols": cols, "rows": rows})
