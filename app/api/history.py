"""History blueprint: finished commands and agent turns, newest first."""

from __future__ import annotations

from flask import Blueprint, request

from . import API_PREFIX, int_arg, ok, services
from .limits import HISTORY_PAGE_MAX

bp = Blueprint("history", __name__, url_prefix=API_PREFIX)


@bp.get("/history")
def list_history():
    entries = services().store.list_history(
        session_id=request.args.get("sessionId") or None,
        project_path=request.args.get("projectPath") or None,
        limit=int_arg("limit", default=500, low=1, high=HISTORY_PAGE_MAX),
    )
    return ok({"entries": entries, "count": len(entries)})
