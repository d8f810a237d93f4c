"""Whoami blueprint: the caller's role, so the UI can hide what a view-only token cannot do."""

from __future__ import annotations

from flask import Blueprint

from ..roles import caller_role
from . import API_PREFIX, ok

bp = Blueprint("whoami", __name__, url_prefix=API_PREFIX)


@bp.get("/whoami")
def whoami():
    return ok({"role": caller_role()})
