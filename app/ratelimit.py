"""Rate limits: a pooled GET quota and a pooled POST quota per client IP (flask-limiter).

WebSocket messages draw on the same quotas through quota_hit(): actions on the POST quota,
reads (get_sessions, subscribe) on the GET quota.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address
from limits import parse

from .config import Settings

GET_METHODS = ["GET", "HEAD"]
CHANGE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
OPEN_ENDPOINTS = frozenset({"meta.health"})
GET_SCOPE = "get"
POST_SCOPE = "post"
EXTENSION_KEY = "maestro.limiter"


def _quota(count: int, settings: Settings) -> str:
    return f"{count} per {settings.rate_limit_window_s} second"


def init_rate_limits(app: Flask, settings: Settings) -> Limiter:
    """Bind a limiter with the two pooled quotas; /health and OPTIONS are never counted."""

    def exempt() -> bool:
        return request.endpoint in OPEN_ENDPOINTS

    limiter = Limiter(
        key_func=get_remote_address,
        application_limits=[
            ApplicationLimit(_quota(settings.rate_limit_get, settings), scope=GET_SCOPE,
                             methods=GET_METHODS, exempt_when=exempt),
            ApplicationLimit(_quota(settings.rate_limit_post, settings), scope=POST_SCOPE,
                             methods=CHANGE_METHODS, exempt_when=exempt),
        ],
        headers_enabled=True,
        storage_uri="memory://",
        enabled=not settings.no_rate_limit,
    )
    limiter.init_app(app)
    app.extensions[EXTENSION_KEY] = limiter
    return limiter


def retry_after_seconds() -> int:
    """Seconds until the limit the current request broke resets (at least 1)."""
    current = current_app.extensions[EXTENSION_KEY].current_limit
    if current is None:
        return 1
    return _seconds_until(current.reset_at, current.limit.get_expiry())


def quota_hit(limiter: Limiter, settings: Settings, client_ip: str, scope: str) -> int | None:
    """Count one request against the client's GET_SCOPE or POST_SCOPE quota.

    :return: None when allowed, else the seconds to wait before retrying.
    """
    if settings.no_rate_limit:
        return None
    count = settings.rate_limit_post if scope == POST_SCOPE else settings.rate_limit_get
    item = parse(_quota(count, settings))
    if limiter.limiter.hit(item, client_ip, scope):
        return None
    reset_at = limiter.limiter.get_window_stats(item, client_ip, scope).reset_time
    return _seconds_until(reset_at, item.get_expiry())


def _seconds_until(reset_at: float, window_s: int) -> int:
    """Whole seconds to wait, between 1 and the window (the storage rounds its clock up)."""
    return min(window_s, max(1, math.ceil(reset_at - time.time())))
