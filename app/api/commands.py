"""Commands blueprint: send text, interrupt, special keys, the configured commands, the agents
and what each can be told (modes, model), and (from app/api/terminal.py) the terminal view's
screen, input and resize."""

from __future__ import annotations

from flask import Blueprint

from ..errors import ApiError
from . import API_PREFIX, json_body, ok, services, terminal, text_field

bp = Blueprint("commands", __name__, url_prefix=API_PREFIX)
bp.register_blueprint(terminal.bp)


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
    """The config file's own commands; an agent's slash commands are those it advertises
    (a tab's `slashCommands`), never a list of ours."""
    commands = [dict(item) for item in services().settings.commands]
    return ok({"commands": commands, "count": len(commands)})


@bp.get("/agents")
def list_agents():
    agents = [{"id": spec.id, "protocol": spec.protocol, "canAsk": bool(spec.permission_modes),
               "permissionModes": list(spec.permission_modes),
               "permissionMode": spec.permission_mode, "model": spec.model,
               "canChooseModel": spec.model_flag is not None}
              for spec in services().settings.agents.values()]
    return ok({"agents": agents, "count": len(agents)})
