"""Commands blueprint: send text, interrupt, special keys, the slash-command list, and (from
app/api/terminal.py) the terminal view's screen, input and resize."""

from __future__ import annotations

from flask import Blueprint

from ..errors import ApiError
from . import API_PREFIX, json_body, ok, services, terminal, text_field

bp = Blueprint("commands", __name__, url_prefix=API_PREFIX)
bp.register_blueprint(terminal.bp)

# Offered when the config file lists none: the agents' common built-ins.
DEFAULT_COMMANDS = (
    {"command": "/help", "description": "Show the agent's help"},
    {"command": "/clear", "description": "Start a fresh conversation"},
    {"command": "/compact", "description": "Summarise the conversation to save context"},
    {"command": "/cost", "description": "Show token usage and cost"},
    {"command": "/model", "description": "Show or change the model"},
    {"command": "/review", "description": "Review the current changes"},
)


@bp.post("/session/<session_id>/send")
def send(session_id: str):
    body = json_body()
    result = services().manager.send(
        session_id, body.get("command"),
        tab_id=text_field(body, "tabId"),
        input_mode=text_field(body, "inputMode"),
    )
    return ok({"success": True, "message": "Command sent successfully",
               "sessionId": session_id, **result})


@bp.post("/session/<session_id>/interrupt")
def interrupt(session_id: str):
    body = json_body()
    stopped_by = services().manager.interrupt(session_id, text_field(body, "tabId"))
    return ok({"success": True, "message": "Interrupt signal sent successfully",
               "sessionId": session_id, "wasRunning": stopped_by is not None,
               "stoppedBy": stopped_by})


@bp.post("/session/<session_id>/keys")
def keys(session_id: str):
    body = json_body()
    names = body.get("keys")
    if not isinstance(names, list) or not names or not all(isinstance(k, str) for k in names):
        raise ApiError(400, "'keys' must be a non-empty list of key names such as \"C-c\"")
    services().manager.send_keys(session_id, names)
    return ok({"success": True, "sessionId": session_id, "keys": names})


@bp.get("/commands")
def list_commands():
    commands = services().settings.commands or [dict(item) for item in DEFAULT_COMMANDS]
    return ok({"commands": commands, "count": len(commands)})
