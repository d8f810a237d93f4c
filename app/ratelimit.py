"""Rate limits: a pooled GET quota and a pooled POST quota per client IP (flask-limiter),
and a key budget per client IP for keystrokes, resizes and interrupts.

WebSocket messages draw on the same quotas through quota_hit(): actions on the POST quota,
reads (get_sessions, subscribe) on the GET quota, keys on the key budget. Keys never draw on
the POST quota: a user typing in the terminal view must not lose Stop to it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from flask import Flask, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug.exceptions import TooManyRequests

from .config import Settings
from .roles import OWNER, caller_role

GET_METHODS = ["GET", "HEAD"]
CHANGE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
OPEN_ENDPOINTS = frozenset({"meta.health"})
GET_SCOPE = "get"
POST_SCOPE = "post"
EXTENSION_KEY = "maestro.limiter"
KEY_BUDGET_KEY = "maestro.key_budget"
# REST endpoints that spend the key budget instead of the POST quota.
KEY_ENDPOINTS = frozenset({"commands.interrupt", "commands.keys", "commands.terminal.input",
                           "commands.terminal.resize"})
STOP_ENDPOINT, STOP_ACTION = "commands.interrupt", "interrupt"
MAX_TRACKED_ADDRESSES = 10_000


class KeyBudget:
    """A token bucket per client address: `rate` keys per second, bursts of `burst`.

    Memory is bounded: at most `max_addresses` buckets, the least recently used dropped
    first (a dropped bucket starts full again). Thread-safe.
    """

    def __init__(self, rate: float, burst: int, max_addresses: int = MAX_TRACKED_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._max_addresses = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when
        self._lock = threading.Lock()

    def take(self, address: str) -> int | None:
        """Spend one key; None when allowed, else the whole seconds to wait (at least 1)."""
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            allowed = tokens >= 1
            self._buckets[address] = (tokens - 1 if allowed else tokens, now)
            while len(self._buckets) > self._max_addresses:
                self._buckets.popitem(last=False)
        return None if allowed else max(1, math.ceil((1 - tokens) / self.rate))


def _quota(count: int, settings: Settings) -> str:
    return f"{count} per {settings.rate_limit_window_s} second"


def init_rate_limits(app: Flask, settings: Settings) -> Limiter:
    """Bind a limiter with the two pooled quotas; /health and OPTIONS are never counted."""

    def exempt() -> bool:
        return request.endpoint in OPEN_ENDPOINTS

    def exempt_from_post_quota() -> bool:
        return request.endpoint in OPEN_ENDPOINTS or request.endpoint in KEY_ENDPOINTS

    limiter = Limiter(
        key_func=client_key,
        application_limits=[
            ApplicationLimit(_quota(settings.rate_limit_get, settings), scope=GET_SCOPE,
                             methods=GET_METHODS, exempt_when=exempt),
            ApplicationLimit(_quota(settings.rate_limit_post, settings), scope=POST_SCOPE,
                             methods=CHANGE_METHODS, exempt_when=exempt_from_post_quota),
        ],
        headers_enabled=True,
        storage_uri="memory://",
        enabled=not settings.no_rate_limit,
    )
    limiter.init_app(app)
    app.extensions[EXTENSION_KEY] = limiter
    budget = KeyBudget(settings.key_rate, 2 * settings.key_rate)
    app.extensions[KEY_BUDGET_KEY] = budget

    @app.before_request
    def spend_key_budget() -> None:
        if settings.no_rate_limit or request.endpoint not in KEY_ENDPOINTS:
            return
        wait = budget.take(key_bucket(client_key(), request.endpoint == STOP_ENDPOINT))
        if wait is not None:
            g.maestro_key_wait = wait
            raise TooManyRequests()

    return limiter


def client_key() -> str:
    """Whose quotas a request spends: its address, and apart from the owner's a viewer's
    (a view-only token on the same address, or behind the same tunnel, must not be able
    to use up the owner's quota, or its Stop)."""
    address = get_remote_address()
    return address if caller_role() in (OWNER, None) else f"{address} ({caller_role()})"


def key_bucket(client: str, stop: bool) -> str:
    """The key budget's bucket for a client: Stop (interrupt) has a bucket of its own, so
    a flood of keystrokes or resizes (a stuck key, a resize loop) can never refuse it."""
    return f"{client} (stop)" if stop else client


def key_hit(budget: KeyBudget, settings: Settings, client_ip: str, stop: bool = False
            ) -> int | None:
    """Spend one unit of the client's key budget: None when allowed, else seconds to wait."""
    return None if settings.no_rate_limit else budget.take(key_bucket(client_ip, stop))


def retry_after_seconds() -> int:
    """Seconds until the limit the current request broke resets (at least 1)."""
    if "maestro_key_wait" in g:
        return g.maestro_key_wait
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
