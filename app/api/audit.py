"""Audit blueprint: pages of the audit log, newest first, for the owner only."""

from __future__ import annotations

from flask import Blueprint

from ..errors import ApiError
from ..roles import OWNER, caller_role
from . import API_PREFIX, int_arg, ok, services
from .limits import AUDIT_PAGE_MAX

bp = Blueprint("audit", __name__, url_prefix=API_PREFIX)

PAGE_DEFAULT = 100


@bp.get("/audit")
def list_audit():
    if caller_role() != OWNER:
        raise ApiError(403, "The audit log is for the owner's token only")
    limit = int_arg("limit", default=PAGE_DEFAULT, low=1, high=AUDIT_PAGE_MAX)
    entries, has_more = services().audit.page(limit, int_arg("before"))
    return ok({"entries": entries, "count": len(entries), "hasMore": has_more})
