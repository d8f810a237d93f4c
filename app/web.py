"""The mobile web UI: the dashboard and session pages, the PWA files and the static shell.

All routes sit behind the token guard (which moves `/<token>` into SCRIPT_NAME), so they are
written token-free here. Pages use only relative URLs: the dashboard (`/`) loads `static/...`,
the session page (`/session/<id>`) loads `../static/...`, so the UI works behind any reverse
proxy or tunnel and under any sub-path. The files are public code, not session data, so they
are exempt from the rate limits (a reload must never use up the API quota).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    request,
    send_file,
    send_from_directory,
)

from .ratelimit import EXTENSION_KEY
from .tls import SELF_SIGNED, ca_cert_path

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

bp = Blueprint("web", __name__)

# The UI talks to its own origin only (REST and the WebSocket). What agents and programs print
# is sanitised (static/js/sanitise.js); should anything slip through, it still cannot post a
# form, style itself (the UI styles only from its stylesheet and through the CSSOM), load a
# remote image (which would tell its host who reads the log), embed a page or be framed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; manifest-src 'self'; worker-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _page(root: str) -> Response:
    """index.html with `{{ROOT}}` (the relative path back to the token root) filled in."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8").replace("{{ROOT}}", root)
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/")
def dashboard() -> Response:
    return _page("./")


@bp.get("/session/<session_id>")
def session_page(session_id: str) -> Response:
    """The same page; the app reads the session id from `location`."""
    del session_id
    return _page("../")


@bp.get("/manifest.json")
def manifest() -> Response:
    response = send_from_directory(STATIC_DIR, "manifest.json", max_age=0,
                                   mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    response = send_from_directory(STATIC_DIR, "sw.js", max_age=0,
                                   mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "./"
    return response


@bp.get("/static/<path:filename>")
def static_file(filename: str) -> Response:
    if filename.startswith(".") or "/." in filename:
        abort(404)
    response = send_from_directory(STATIC_DIR, filename, max_age=0)
    # Revalidate every time (ETag): a new release is seen at once; the service worker keeps
    # the offline copy.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/ca.crt")
def local_ca() -> Response:
    """Our local CA's certificate (--tls self-signed), for the phone to trust: under the
    token like everything else, so only a paired device can fetch it."""
    settings = current_app.extensions["maestro"].settings
    path = ca_cert_path(settings.data_dir)
    if settings.tls != SELF_SIGNED or not os.path.exists(path):
        abort(404)
    response = send_file(path, mimetype="application/x-x509-ca-cert", max_age=0,
                         as_attachment=True, download_name="maestro-web-ca.crt")
    response.headers["Cache-Control"] = "no-store"
    return response


HSTS = "max-age=31536000"


def _add_hsts(response: Response) -> Response:
    """Strict-Transport-Security on HTTPS answers (--hsts only: browsers then refuse plain
    http for this name for a year, a choice the user makes)."""
    if request.scheme == "https":
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def register_web(app: Flask) -> None:
    """Serve the UI from `app`, outside the rate limits."""
    app.register_blueprint(bp)
    if app.extensions["maestro"].settings.hsts:
        app.after_request(_add_hsts)
    limiter = app.extensions.get(EXTENSION_KEY)
    if limiter is not None:
        limiter.exempt(bp)
