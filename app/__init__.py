"""Maestro Web: the application factory."""

from __future__ import annotations

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .audit import init_audit
from .auth import TokenGuard, refuse_viewer_changes
from .base_path import BasePath, ForwardedCheck
from .config import Settings
from .errors import register_error_handlers
from .extensions import cors, sock
from .hosts import HostPolicy
from .ratelimit import init_rate_limits
from .services import Services
from .serving.ws_loop import NoReaderThread
from .throttle import FailedTokenThrottle
from .web import register_web


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: services, extensions, blueprints, error handlers and the token guard.

    Starting the app starts the saved sessions' shells; call `app.extensions["maestro"]
    .shutdown()` to end them.
    """
    settings = settings or Settings.defaults()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        # The WebSocket loop reads every socket (and pings, and bounds messages itself).
        SOCK_SERVER_OPTIONS={"thread_class": NoReaderThread},
    )
    app.json.sort_keys = False
    # Before the services start: a bad --allowed-origins must not leave shells behind.
    hosts = HostPolicy(settings.allowed_hosts or (), settings.allowed_origins or ())
    services = Services.start(settings)
    app.extensions["maestro"] = services

    # Registered before the limiter so it runs after the limiter's own header hook.
    app.after_request(_finish_response)
    init_rate_limits(app, settings)
    # After the limiter's check: a viewer's refused actions still count against its quota.
    app.before_request(refuse_viewer_changes)
    init_audit(app)
    cors.init_app(app, resources={r"/api/*": {"origins": settings.cors_origins}},
                  supports_credentials=False, always_send=False)
    _only_with_origin(app)
    sock.init_app(app)
    register_error_handlers(app)

    from .api import audit, commands, folders, history, meta, push, sessions, theme, whoami, ws

    for blueprint in (meta.bp, sessions.bp, commands.bp, theme.bp, history.bp, ws.bp,
                      whoami.bp, audit.bp, push.bp, folders.bp):
        app.register_blueprint(blueprint)
    register_web(app)  # the mobile web UI (static/)

    app.wsgi_app = TokenGuard(
        app.wsgi_app, services.token, settings.redirect_url,
        viewer_token=services.viewer_token,
        hosts=hosts,
        throttle=FailedTokenThrottle(settings.auth_fail_limit, settings.auth_fail_window_s,
                                     settings.auth_lockout_s))
    if settings.base_path:
        app.wsgi_app = BasePath(app.wsgi_app, settings.base_path)
    # Outermost: the forwarded client address, scheme, Host and prefix, from as many proxies
    # as the user says stand in front (a header no trusted proxy set is never believed).
    # With --base-path the proxy passes the path on unchanged, so no prefix is forwarded: one
    # would be a client's own header that the proxy let through.
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(ForwardedCheck(app.wsgi_app), x_for=n, x_proto=n, x_host=n,
                                x_prefix=0 if settings.base_path else n)
    return app


def _only_with_origin(app: Flask) -> None:
    """Run flask-cors' after-request hook (the one init_app just added) only for a request
    with an Origin header: only browsers send one, and without it the hook's path matching
    is wasted work on every API call (always_send=False: it would add nothing anyway)."""
    cors_hook = app.after_request_funcs[None].pop()
    if getattr(cors_hook, "__name__", "") != "cors_after_request":  # a flask-cors upgrade
        raise RuntimeError("flask-cors no longer adds its hook as expected")

    def cors_if_origin(response: Response) -> Response:
        return cors_hook(response) if "Origin" in request.headers else response

    app.after_request(cors_if_origin)


def _finish_response(response: Response) -> Response:
    """No referrer ever leaks the token; Retry-After only on a 429, equal to its body's."""
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.status_code == 429 and "maestro_retry_after" in g:
        response.headers["Retry-After"] = str(g.maestro_retry_after)
    elif response.status_code != 429:
        response.headers.pop("Retry-After", None)
    return response
