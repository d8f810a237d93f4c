"""The token guard: the one place that decides who the caller is.

It runs as WSGI middleware in front of Flask, so it sees every request (HTTP and WebSocket
handshakes alike, any path) before routing. A request whose first path segment is a token
(the owner's, or the view-only one) is passed on with that segment moved into SCRIPT_NAME,
so the app's routes are token-free (`/api/sessions`, `/ws`) and URLs the app builds carry
the token; its role ("owner" or "viewer") goes in environ[ROLE_KEY]. The first load of a UI
page with the token exchanges it for a pairing cookie (pairing.py); a request without a
token but with a valid cookie is passed on unchanged, with the cookie's role. Anything else
(a wrong cookie too) is sent to the redirect URL (429 once an address has sent too many wrong
tokens), except the open paths (`/health`). Before all that, a Host we do not serve gets 400
(DNS rebinding), and a WebSocket handshake from another site's page gets 403.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable

from flask import request
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from .errors import ApiError, now_ms
from .hosts import HostPolicy
from .pairing import cookie_value, is_page_load, presented_cookies, set_cookie_header
from .roles import OWNER, ROLE_KEY, VIEWER, caller_role
from .throttle import FailedTokenThrottle

VIA_COOKIE_KEY = "maestro.via_cookie"  # set when the pairing cookie, not the path, admitted it
REDACTED = "<redacted>"
OPEN_PATHS = frozenset({"/health"})
STATIC_PREFIX = "/static/"  # the UI's files, below the token
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ONLY_MESSAGE = "This is a read-only token: it can watch sessions but not act on them"
SHOWN_HEADER_CHARS = 100  # of a refused Host or Origin, in the error message

access_log = logging.getLogger("maestro.access")
auth_log = logging.getLogger("maestro.auth")

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def refuse_viewer_changes() -> None:
    """Flask before_request hook: a viewer's POST/PUT/PATCH/DELETE gets 403.

    A hook rather than a check in the guard, so the refusal is routed and audited like
    any other answer to an action.
    """
    if request.method not in READ_METHODS and caller_role() == VIEWER:
        raise ApiError(403, READ_ONLY_MESSAGE)


class TokenGuard:
    """WSGI middleware that admits requests under `/<token>/` and redirects all others."""

    def __init__(self, app: WSGIApp, token: str, redirect_url: str, *,
                 hosts: HostPolicy, throttle: FailedTokenThrottle,
                 viewer_token: str | None = None) -> None:
        self.app = app
        self._token = token.encode()
        self._viewer_token = viewer_token.encode() if viewer_token else None
        self._tokens = {OWNER: token, VIEWER: viewer_token}
        self._cookies = [(OWNER, cookie_value(token).encode())]
        if viewer_token:
            self._cookies.append((VIEWER, cookie_value(viewer_token).encode()))
        self.redirect_url = redirect_url
        self.hosts = hosts
        self.throttle = throttle

    def role_for(self, candidate: str) -> str | None:
        """The caller's role for a presented token, each compared in constant time."""
        presented = candidate.encode("utf-8", "surrogateescape")
        is_owner = hmac.compare_digest(presented, self._token)
        is_viewer = (self._viewer_token is not None
                     and hmac.compare_digest(presented, self._viewer_token))
        return OWNER if is_owner else VIEWER if is_viewer else None

    def cookie_role(self, environ: dict) -> str | None:
        """The role of the request's pairing cookie, each compared in constant time; None
        without one or for a wrong one."""
        role = None
        for presented in presented_cookies(environ):
            candidate = presented.encode("utf-8", "surrogateescape")
            for cookie_role, expected in self._cookies:
                if hmac.compare_digest(candidate, expected):
                    role = cookie_role
        return role

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.monotonic()
        path = environ.get("PATH_INFO", "") or "/"
        status_holder: list[str] = []

        def logging_start_response(status: str, headers: list, exc_info=None):
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        try:
            host = environ.get("HTTP_HOST")
            if host is not None and not self.hosts.host_allowed(host):
                message = f"Host '{_shown(host)}' is not served here; add it with --allowed-hosts"
                return json_error(400, message)(environ, logging_start_response)
            if path in OPEN_PATHS:
                return self.app(environ, logging_start_response)
            segment, _, rest = path.lstrip("/").partition("/")
            role = self.role_for(segment)
            if role is None:
                role = self.cookie_role(environ)
                if role is None:
                    return self._refuse(environ)(environ, logging_start_response)
                if not self._from_our_pages(environ):
                    message = ("A change or a WebSocket made with the pairing cookie must come "
                               "from this server's own pages (Origin)")
                    return json_error(403, message)(environ, logging_start_response)
                environ[ROLE_KEY] = role
                environ[VIA_COOKIE_KEY] = True
                return self.app(environ, logging_start_response)
            if not rest and not path.endswith("/"):
                # `/<token>` → `/<token>/`, so the UI's relative URLs resolve under the token.
                location = environ.get("SCRIPT_NAME", "") + "/" + segment + "/"
                if environ.get("QUERY_STRING"):
                    location += "?" + environ["QUERY_STRING"]
                return _redirect(308, location)(environ, logging_start_response)
            origin = self._foreign_socket_origin(environ)
            if origin is not None:
                message = (f"Origin '{_shown(origin)}' may not open the WebSocket; add it with "
                           "--allowed-origins")
                return json_error(403, message)(environ, logging_start_response)
            if is_page_load(environ, rest):
                return self._pair(environ, role, rest)(environ, logging_start_response)
            environ[ROLE_KEY] = role
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + segment
            environ["PATH_INFO"] = "/" + rest
            return self.app(environ, logging_start_response)
        finally:
            self._log_access(environ, path, status_holder, started)

    def _from_our_pages(self, environ: dict) -> bool:
        """May a request admitted by the pairing cookie act? A browser sends the cookie from
        every page of the same site (any port of `localhost`, say), so a WebSocket
        handshake or a change must carry an Origin we serve; reads need none (CORS keeps
        other pages from reading the answer)."""
        changes = environ.get("REQUEST_METHOD", "GET") not in READ_METHODS
        if not (changes or _is_websocket_handshake(environ)):
            return True
        origin = environ.get("HTTP_ORIGIN")
        return origin is not None and self._served_origin(environ, origin)

    def _served_origin(self, environ: dict, origin: str) -> bool:
        """Is `origin` this server's own (same origin) or one --allowed-origins lists?"""
        return self.hosts.origin_allowed(origin, environ.get("HTTP_HOST", ""),
                                         environ.get("wsgi.url_scheme", "http"))

    def _foreign_socket_origin(self, environ: dict) -> str | None:
        """The Origin of a WebSocket handshake from a page we may not serve, else None.

        No Origin (a non-browser client) is fine: only browsers carry other sites' pages.
        """
        origin = environ.get("HTTP_ORIGIN")
        if origin is None or not _is_websocket_handshake(environ):
            return None
        return None if self._served_origin(environ, origin) else origin

    def _pair(self, environ: dict, role: str, rest: str) -> Response:
        """303 to the same page without the token, setting the pairing cookie."""
        location = environ.get("SCRIPT_NAME", "") + "/" + rest
        if environ.get("QUERY_STRING"):
            location += "?" + environ["QUERY_STRING"]
        response = _redirect(303, location)
        response.headers["Set-Cookie"] = set_cookie_header(environ, self._tokens[role])
        response.headers["Cache-Control"] = "no-store"
        return response

    def _refuse(self, environ: dict) -> Response:
        """A wrong token: the redirect, or 429 while the address is locked out."""
        address = environ.get("REMOTE_ADDR", "-")
        retry_after = self.throttle.retry_after(address)
        if retry_after is not None:
            return _too_many_requests(retry_after)
        if self.throttle.count_failure(address):
            auth_log.warning("%s sent %d wrong-token requests within %d s: its wrong-token "
                             "requests get 429 for %d s", _printable(address),
                             self.throttle.limit, self.throttle.window_s,
                             self.throttle.lockout_s)
        return _redirect(302, self.redirect_url)

    def redact(self, text: str) -> str:
        """Replace the tokens wherever they appear in a string meant for a log."""
        for token in (self._token, self._viewer_token):
            if token is not None:
                text = text.replace(token.decode(), REDACTED)
        return text

    def _log_access(self, environ: dict, path: str, status: list[str], started: float) -> None:
        code = status[0].split(" ", 1)[0] if status else "-"
        # The UI's own files, served fine, are routine: only at DEBUG.
        level = (logging.DEBUG if environ.get("PATH_INFO", "").startswith(STATIC_PREFIX)
                 and code in ("200", "304") else logging.INFO)
        if not access_log.isEnabledFor(level):
            return
        segment = path.lstrip("/").partition("/")[0]
        shown = (path if path in OPEN_PATHS or environ.get(VIA_COOKIE_KEY)
                 else "/" + REDACTED + path[len(segment) + 1 :])
        access_log.log(
            level,
            '%s "%s %s" %s %.1fms',
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD", "-"),
            _printable(self.redact(shown)),
            code,
            (time.monotonic() - started) * 1000,
        )


def _printable(text: str) -> str:
    """Escape control and non-ASCII characters, so a URL cannot forge or garble log lines."""
    return text.encode("unicode_escape").decode("ascii")


def _shown(header: str) -> str:
    return _printable(header[:SHOWN_HEADER_CHARS])


def _is_websocket_handshake(environ: dict) -> bool:
    return environ.get("HTTP_UPGRADE", "").strip().lower() == "websocket"


def _redirect(status: int, location: str) -> Response:
    return Response(status=status, headers={"Location": location,
                                            "Referrer-Policy": "no-referrer"})


def json_error(status: int, message: str) -> Response:
    """The app's JSON error shape, for answers the guard gives before Flask runs."""
    return _json(status, {"error": HTTP_STATUS_CODES[status], "message": message,
                          "timestamp": now_ms()})


def _too_many_requests(retry_after: int) -> Response:
    """The contract's 429, with Retry-After equal to the body's retryAfter."""
    response = _json(429, {"statusCode": 429, "error": HTTP_STATUS_CODES[429],
                           "message": "Rate limit exceeded. Try again later.",
                           "retryAfter": retry_after, "timestamp": now_ms()})
    response.headers["Retry-After"] = str(retry_after)
    return response


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status,
                    mimetype="application/json", headers={"Referrer-Policy": "no-referrer"})


class RedactingFilter(logging.Filter):
    """Scrub the tokens from every log record, whoever wrote it (werkzeug, waitress, us).

    Logging starts before the server knows every token (a persistent one is read when the
    data dir opens): add() each as soon as it is known.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = message
        for secret in self._secrets:
            scrubbed = scrubbed.replace(secret, REDACTED)
        # Keep the formatted text: the handler's formatter then does not format it again.
        record.msg, record.args = scrubbed, None
        return True
