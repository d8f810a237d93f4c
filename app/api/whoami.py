"""Whoami blueprint: the caller's role, so the UI can hide what a view-only token cannot do,
and the id under which the browser keeps its copies of logs (static/js/logcache.js)."""

from __future__ import annotations

import hashlib
import hmac

from flask import Blueprint

from ..roles import VIEWER, caller_role
from . import API_PREFIX, ok, services

bp = Blueprint("whoami", __name__, url_prefix=API_PREFIX)

_CACHE_LABEL = b"maestro-web browser cache id v1"


def browser_cache_id(token: str) -> str:
    """An id of the token (each server has its own) that reveals neither the token nor the
    pairing cookie: another token (a view-only link, a rotated token) gets another id, so a
    browser never shows one token's kept copies to another."""
    return hmac.new(token.encode(), _CACHE_LABEL, hashlib.sha256).hexdigest()[:32]


@bp.get("/whoami")
def whoami():
    role = caller_role()
    svc = services()
    token = svc.viewer_token if role == VIEWER else svc.token
    return ok({"role": role, "cacheId": browser_cache_id(token)})
