"""What run.py and wsgi.py share: settings from the command line, logging, the banner.

Each launcher calls prepare(), starts its own server, prints the banner with the real
port, serves until a signal, then calls Services.shutdown().
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import resource
import signal
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import segno
from flask import Flask

from . import create_app
from .auth import RedactingFilter
from .config import ConfigError, Settings, given_on_command_line, load_settings
from .services import Services

EXIT_BAD_CONFIG = 2
# Each WebSocket holds about 3 descriptors and each shell about 3: the common soft limit of
# 1024 runs out near 300 clients. Capped so that child processes which loop over every
# possible descriptor stay fast.
FD_LIMIT_TARGET = 65536

logger = logging.getLogger(__name__)


def prepare(argv: Sequence[str]) -> tuple[Settings, Flask, Services, socket.socket]:
    """Settings, logging, the listening socket and the app.

    A bad setting or a port that cannot be had prints one line and exits with code 2; the
    port is bound first, so no session's process starts for a server that cannot serve.
    """
    raise_fd_limit()
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        exit_with_error(str(exc))
    redactor = configure_logging(settings.log_level)  # start-up warnings are logged too
    redactor.add(settings.token)
    redactor.add(settings.viewer_token)
    try:
        listener = listening_socket(settings.host, settings.port)
    except OSError as exc:
        reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        exit_with_error(f"cannot listen on {_bracket(settings.host)}:{settings.port}: {reason}")
    try:
        app = create_app(settings)
    except ConfigError as exc:
        listener.close()
        exit_with_error(str(exc))
    services: Services = app.extensions["maestro"]
    redactor.add(services.token)
    redactor.add(services.viewer_token)
    for name, flag, variable in (("token", "--token", "MAESTRO_TOKEN"),
                                 ("viewer_token", "--viewer-token", "MAESTRO_VIEWER_TOKEN")):
        if given_on_command_line(argv, name):
            logger.warning("%s on the command line is visible to other local users (ps); "
                           "prefer %s or a token file", flag, variable)
    return settings, app, services, listener


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port and listening (IPv6 for an IPv6 host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def exit_with_error(message: str) -> NoReturn:
    """Print one `maestro-web: error: ...` line and exit with code 2."""
    print(f"maestro-web: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_CONFIG)


def raise_fd_limit() -> None:
    """Raise the soft RLIMIT_NOFILE towards the hard limit (up to FD_LIMIT_TARGET)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_LIMIT_TARGET if hard == resource.RLIM_INFINITY else min(hard, FD_LIMIT_TARGET)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def configure_logging(level: str) -> RedactingFilter:
    """Log to stderr at `level`; every token added to the returned filter is scrubbed."""
    redactor = RedactingFilter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return redactor


def lan_address(host: str) -> str:
    """The address a phone on the same network would use to reach this machine."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    candidates = _interface_addresses()
    with contextlib.suppress(OSError):
        candidates += [info[4][0] for info in
                       socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    usable = [address for address in candidates
              if not ipaddress.ip_address(address).is_loopback
              and not ipaddress.ip_address(address).is_link_local]
    private = [address for address in usable if ipaddress.ip_address(address).is_private]
    return (private or usable or ["127.0.0.1"])[0]


def _interface_addresses() -> list[str]:
    """IPv4 addresses of the network interfaces (Linux ioctl; empty elsewhere). Sends nothing."""
    siocgifaddr = 0x8915
    addresses = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for name in names:
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), siocgifaddr, request)
            except OSError:
                continue
            addresses.append(socket.inet_ntoa(reply[20:24]))
    return addresses


def print_banner(host: str, port: int, token: str, out=None,
                 viewer_token: str | None = None) -> None:
    """The local and LAN URLs (token included) and a QR code of the LAN URL; the same
    for the view-only token, when there is one."""
    out = out or sys.stdout
    print("Maestro Web is running.", file=out)
    _print_urls(host, port, token, "Scan to open on your phone:", out)
    if viewer_token is not None:
        print("View only (can watch, cannot act):", file=out)
        _print_urls(host, port, viewer_token, "Scan to watch from another device:", out)
    print("Press Ctrl-C to stop.", file=out, flush=True)


def _print_urls(host: str, port: int, token: str, scan_prompt: str, out) -> None:
    local_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    print(f"  Local:   http://{_bracket(local_host)}:{port}/{token}/", file=out)
    lan_host = lan_address(host)
    if _is_loopback(lan_host):  # a phone could not open it: no Network URL, no QR code
        print(f"  Network: none (listening on {host} only; --host 0.0.0.0 serves your "
              "network)", file=out)
        return
    lan = f"http://{_bracket(lan_host)}:{port}/{token}/"
    print(f"  Network: {lan}", file=out)
    print(scan_prompt, file=out)
    segno.make(lan, error="m").terminal(out=out, compact=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def on_stop_signals(stop: Callable[[], None]) -> None:
    """Call `stop` on SIGTERM (SIGINT arrives as KeyboardInterrupt)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: stop())
