"""--base-path: the whole server (pages, API, WebSocket, health check) under a URL path such
as `/maestro`, for a reverse proxy that passes the path on unchanged (docs/deploy.md).

The path moves from PATH_INFO into SCRIPT_NAME before the token guard runs, so every URL the
app builds, redirect and cookie path included, carries it; the UI uses relative URLs only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .auth import WSGIApp, json_error
from .config import parse_base_path


class BasePath:
    """WSGI middleware: admits requests under `prefix` (e.g. `/maestro`), 404 for the rest."""

    def __init__(self, app: WSGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            message = f"Not found: this server serves under {self.prefix}/"
            return json_error(404, message)(environ, start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
        environ["PATH_INFO"] = path[len(self.prefix):]
        return self.app(environ, start_response)


class ForwardedCheck:
    """WSGI middleware, just inside ProxyFix: a forwarded prefix or scheme that is not a plain
    URL path or http(s) is refused with a 400, never built into a redirect, cookie or page
    (`X-Forwarded-Prefix: //evil.example` would otherwise send the browser, token in the
    path, to another site); a trailing slash is dropped."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:  # `/maestro/` as `/maestro`: a trailing slash would double the one after it
            environ["SCRIPT_NAME"] = parse_base_path(environ.get("SCRIPT_NAME", ""))
        except ValueError:
            return json_error(400, "X-Forwarded-Prefix must be a URL path such as /maestro"
                              )(environ, start_response)
        if environ.get("wsgi.url_scheme") not in ("http", "https"):
            return json_error(400, "X-Forwarded-Proto must be http or https"
                              )(environ, start_response)
        return self.app(environ, start_response)
