"""The token guard: the one place that decides who the caller is.

It runs as WSGI middleware in front of Flask, so it sees every request (HTTP and WebSocket
handshakes alike, any path) before routing. A request whose first path segment is the token
is passed on with that segment moved into SCRIPT_NAME, so the app's routes are token-free
(`/api/sessions`, `/ws`) and URLs the app builds carry the token. Anything else is sent to
the redirect URL, except the open paths (`/health`).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable

from werkzeug.wrappers import Response

ROLE_KEY = "maestro.role"
OWNER = "owner"
REDACTED = "<redacted>"
OPEN_PATHS = frozenset({"/health"})

access_log = logging.getLogger("maestro.access")

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class TokenGuard:
    """WSGI middleware that admits requests under `/<token>/` and redirects all others."""

    def __init__(self, app: WSGIApp, token: str, redirect_url: str) -> None:
        self.app = app
        self._token = token.encode()
        self.redirect_url = redirect_url

    def role_for(self, candidate: str) -> str | None:
        """The caller's role for a presented token, compared in constant time."""
        if hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), self._token):
            return OWNER
        return None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.monotonic()
        path = environ.get("PATH_INFO", "") or "/"
        status_holder: list[str] = []

        def logging_start_response(status: str, headers: list, exc_info=None):
            status_holder.append(status)
            return start_response(status, headers, exc_info)

        try:
            if path in OPEN_PATHS:
                return self.app(environ, logging_start_response)
            segment, _, rest = path.lstrip("/").partition("/")
            role = self.role_for(segment)
            if role is None:
                return _redirect(302, self.redirect_url)(environ, logging_start_response)
            if not rest and not path.endswith("/"):
                # `/<token>` → `/<token>/`, so the UI's relative URLs resolve under the token.
                location = environ.get("SCRIPT_NAME", "") + "/" + segment + "/"
                if environ.get("QUERY_STRING"):
                    location += "?" + environ["QUERY_STRING"]
                return _redirect(308, location)(environ, logging_start_response)
            environ[ROLE_KEY] = role
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + segment
            environ["PATH_INFO"] = "/" + rest
            return self.app(environ, logging_start_response)
        finally:
            self._log_access(environ, path, status_holder, started)

    def redact(self, text: str) -> str:
        """Replace the token wherever it appears in a string meant for a log."""
        return text.replace(self._token.decode(), REDACTED)

    def _log_access(self, environ: dict, path: str, status: list[str], started: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        segment = path.lstrip("/").partition("/")[0]
        shown = path if path in OPEN_PATHS else "/" + REDACTED + path[len(segment) + 1 :]
        access_log.info(
            '%s "%s %s" %s %.1fms',
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD", "-"),
            _printable(self.redact(shown)),
            status[0].split(" ", 1)[0] if status else "-",
            (time.monotonic() - started) * 1000,
        )


def _printable(text: str) -> str:
    """Escape control and non-ASCII characters, so a URL cannot forge or garble log lines."""
    return text.encode("unicode_escape").decode("ascii")


def _redirect(status: int, location: str) -> Response:
    return Response(status=status, headers={"Location": location,
                                            "Referrer-Policy": "no-referrer"})


class RedactingFilter(logging.Filter):
    """Scrub the token from every log record, whoever wrote it (werkzeug, waitress, us)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token in message:
            record.msg = message.replace(self._token, REDACTED)
            record.args = None
        return True
