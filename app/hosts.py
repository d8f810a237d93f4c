"""Which Host and Origin headers we answer: defence in depth behind the token.

A web page can reach this server through the visitor's browser in two ways the token alone
does not stop, should it ever leak: DNS rebinding (the page's own name is made to resolve to
our address; the browser then sends that name as Host and treats our answers as its own) and
a WebSocket opened from another site (sockets are not bound by CORS; the browser sends the
page's Origin). So we answer only Host names we serve, and open a socket only for a page of
our own origin or of one the user listed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from .config import ConfigError

ANY = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}
# (scheme, host name, port): how origins are compared.
Origin = tuple[str, str, int]


def machine_names() -> frozenset[str]:
    """This machine's own names: its hostname, fully qualified name and mDNS name."""
    hostname = socket.gethostname()
    names = {hostname, socket.getfqdn(), f"{hostname}.local"}
    return frozenset(_normal_name(name) for name in names if name)


def split_host(host: str) -> tuple[str, int | None] | None:
    """A Host header's name (lower case, no trailing dot) and port; None when malformed.

    `Example.com:8080` → ('example.com', 8080); `[::1]` → ('::1', None).
    """
    text = host.strip().lower()
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] or None
    elif text.count(":") == 1:
        name, port = text.split(":")
        port = port or None
    else:  # a bare name, or a bare IPv6 address (not valid in Host, but unambiguous)
        name, port = text, None
    if port is not None and not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return None
    name = _normal_name(name)
    if not name or any(char in name for char in "@/\\ "):
        return None
    return name, None if port is None else int(port)


def _normal_name(name: str) -> str:
    return name.strip().lower().rstrip(".")


def is_loopback_host(host: str) -> bool:
    """Does a Host header name this machine's loopback (`localhost`, `*.localhost`,
    127.0.0.0/8, ::1)?"""
    parts = split_host(host)
    if parts is None:
        return False
    name = _normal_name(parts[0])
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def parse_origin(text: str) -> Origin | None:
    """`https://Example.com` → ('https', 'example.com', 443); None for anything else."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    return scheme, _normal_name(parts.hostname), port or DEFAULT_PORTS[scheme]


class HostPolicy:
    """Decides whether a Host header is one we serve, and whether an Origin may open a socket.

    Always served: IP literals (v4 and v6), `localhost`, `*.localhost` and this machine's
    names, none of which an attacker's DNS can point a browser at under a name of its own.
    `allowed_hosts` adds names (`*.example.com` for every subdomain; `*` turns the check
    off); `allowed_origins` adds origins besides the server's own (`*`: any).

    :raise ConfigError: an entry of `allowed_origins` is not an origin.
    """

    def __init__(self, allowed_hosts: Iterable[str] = (), allowed_origins: Iterable[str] = (),
                 own_names: Iterable[str] | None = None) -> None:
        hosts = {_normal_name(name) for name in allowed_hosts}
        self._any_host = ANY in hosts
        self._suffixes = tuple(name[1:] for name in hosts if name.startswith("*."))
        self._names = frozenset(machine_names() if own_names is None else own_names) | {
            name for name in hosts if not name.startswith("*")}
        origins = list(allowed_origins)
        self._any_origin = ANY in origins
        self._origins: set[Origin] = set()
        for text in origins:
            if text == ANY:
                continue
            origin = parse_origin(text)
            if origin is None:
                raise ConfigError(f"--allowed-origins: {text!r} is not an origin such as "
                                  "https://example.com")
            self._origins.add(origin)

    def host_allowed(self, host: str) -> bool:
        if self._any_host:
            return True
        parts = split_host(host)
        if parts is None:
            return False
        name = parts[0]
        return (_is_ip_literal(name) or name == "localhost" or name.endswith(".localhost")
                or name in self._names or name.endswith(self._suffixes))

    def origin_allowed(self, origin: str, host: str, scheme: str) -> bool:
        """Whether a page of `origin` may use the server reached as `scheme`://`host`."""
        if self._any_origin:
            return True
        parsed = parse_origin(origin)
        if parsed is None:
            return False  # `null` (sandboxed frames, file: pages) and garbage
        if parsed in self._origins:
            return True
        own = split_host(host)
        if own is None or scheme not in DEFAULT_PORTS:
            return False
        return parsed == (scheme, own[0], own[1] or DEFAULT_PORTS[scheme])


def admitting(public_url: str, allowed_hosts: list[str] | None,
              allowed_origins: list[str] | None) -> tuple[list[str], list[str]]:
    """`allowed_hosts` and `allowed_origins` extended with a tunnel's public https URL.

    Its name must be served (the tunnel passes it on as Host), and its pages must open the
    socket: they reach us through the tunnel as plain http, so the same-origin rule cannot
    see that `https://<name>` is our own origin.
    """
    parts = urlsplit(public_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return [*(allowed_hosts or ()), parts.hostname or ""], [*(allowed_origins or ()), origin]
