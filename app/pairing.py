"""Pairing: the token in a page's URL is exchanged for a cookie, so it leaves the address bar.

A browser's first load of a UI page with the token in its path (`/<token>/`,
`/<token>/session/<id>`) gets the cookie and a 303 to the same page without the token; from
then on the browser's requests (the pages, their files, `api/...`, `ws`) carry the cookie
instead, and the token no longer sits in history, screenshots or Referer. The token in the
path keeps working everywhere: only a browser's navigation (`Sec-Fetch-Mode: navigate`) is
exchanged, so scripts, curl and Postman get the page itself, as before. Browsers send that
header only to secure origins (HTTPS, a tunnel, localhost): on plain HTTP over the LAN nothing
tells a same-site load from a link on another site (after which the Strict cookie would not
come back with the redirect), so there the token stays in the address bar, as before.

The cookie's value is an HMAC of the token, not the token: a leaked cookie does not reveal the
key, and a new token (a restart without --persistent-token, or --rotate-token) unpairs every
browser at once. The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other
site's page sends it) and `Secure` unless the page is on loopback (a browser pairs only on a
secure origin, and one that is not this machine is https to the browser even when a tunnel
or proxy talks plain http to us), scoped to the server's base path. Its name
carries the Host's port: cookies are shared by every port of a host, and two servers on one
machine must not overwrite each other's.
"""

from __future__ import annotations

import hashlib
import hmac

from werkzeug.http import dump_cookie, parse_cookie

from .hosts import is_loopback_host, split_host

COOKIE_NAME = "maestro"
# Chrome caps a cookie's lifetime at 400 days; the others' caps are longer.
COOKIE_MAX_AGE_S = 400 * 24 * 3600
_LABEL = b"maestro-web pairing cookie v1"
PAGE_METHODS = frozenset({"GET", "HEAD"})
# Sec-Fetch-Site values of navigations after which the browser sends a Strict cookie (none:
# typed, bookmarked, a home-screen icon, a scanned QR code). A link on another site's page
# starts a cross-site chain: the redirected load would arrive without the cookie, so that
# load keeps the token in its URL instead.
SAME_SITE_NAVIGATIONS = frozenset({"none", "same-origin", "same-site"})


def cookie_value(token: str) -> str:
    """What a browser paired with `token` presents."""
    return hmac.new(token.encode(), _LABEL, hashlib.sha256).hexdigest()


def cookie_name(environ: dict) -> str:
    """`maestro-<port>` when the Host names a port, else `maestro`."""
    parts = split_host(environ.get("HTTP_HOST", ""))
    port = parts[1] if parts else None
    return COOKIE_NAME if port is None else f"{COOKIE_NAME}-{port}"


def presented_cookies(environ: dict) -> list[str]:
    """Every value the request carries under this server's cookie name."""
    cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
    return cookies.getlist(cookie_name(environ))


def is_page_load(environ: dict, rest: str) -> bool:
    """A browser's same-site load of a UI page (`rest`: its path below the token)."""
    return (environ.get("REQUEST_METHOD") in PAGE_METHODS
            and (rest == "" or rest.startswith("session/"))
            and environ.get("HTTP_SEC_FETCH_MODE") == "navigate"
            and environ.get("HTTP_SEC_FETCH_SITE") in SAME_SITE_NAVIGATIONS)


def set_cookie_header(environ: dict, token: str) -> str:
    """The Set-Cookie value pairing this browser with `token`."""
    return dump_cookie(cookie_name(environ), cookie_value(token), max_age=COOKIE_MAX_AGE_S,
                       path=environ.get("SCRIPT_NAME", "") or "/", httponly=True,
                       samesite="Strict",
                       secure=(environ.get("wsgi.url_scheme") == "https"
                               or not is_loopback_host(environ.get("HTTP_HOST", ""))))
