"""What agents ask the user: the open approvals of a session, and the user's decisions.

Registered inside the sessions blueprint (endpoints `sessions.approvals.*`); deciding is audited
as `approve`, like the WebSocket action.
"""

from __future__ import annotations

from flask import Blueprint

from . import json_body, ok, services

bp = Blueprint("approvals", __name__)


@bp.get("/session/<session_id>/approvals")
def list_approvals(session_id: str):
    approvals = services().manager.approvals(session_id)
    return ok({"sessionId": session_id, "approvals": approvals, "count": len(approvals)})


@bp.post("/session/<session_id>/approvals/<approval_id>", endpoint="approve")
def approve(session_id: str, approval_id: str):
    approval = services().manager.decide_approval(session_id, approval_id, json_body())
    return ok({"success": True, "sessionId": session_id, "approval": approval})
