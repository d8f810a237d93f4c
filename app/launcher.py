"""What run.py and wsgi.py share: settings from the command line, logging, the banner.

Each launcher calls prepare(), starts its own server, prints the banner with the real
port, serves until a signal, then calls Services.shutdown().
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import resource
import signal
import socket
import struct
import sys
from collections.abc import Callable, Sequence

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


def prepare(argv: Sequence[str]) -> tuple[Settings, Flask, Services]:
    """Settings, logging and the app; a bad setting prints one line and exits with code 2."""
    raise_fd_limit()
    try:
        settings = load_settings(argv)
        app = create_app(settings)
    except ConfigError as exc:
        print(f"maestro-web: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None
    services: Services = app.extensions["maestro"]
    configure_logging(settings.log_level, services.token)
    if given_on_command_line(argv, "token"):
        logger.warning("--token on the command line is visible to other local users (ps); "
                       "prefer MAESTRO_TOKEN or --token-file")
    return settings, app, services


def raise_fd_limit() -> None:
    """Raise the soft RLIMIT_NOFILE towards the hard limit (up to FD_LIMIT_TARGET)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_LIMIT_TARGET if hard == resource.RLIM_INFINITY else min(hard, FD_LIMIT_TARGET)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def configure_logging(level: str, token: str) -> None:
    """Log to stderr at `level`, with the token scrubbed from every record."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


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


def print_banner(host: str, port: int, token: str, out=None) -> None:
    """The local and LAN URLs (token included) and a QR code of the LAN URL."""
    out = out or sys.stdout
    local_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    local = f"http://{_bracket(local_host)}:{port}/{token}/"
    lan = f"http://{_bracket(lan_address(host))}:{port}/{token}/"
    print("Maestro Web is running.", file=out)
    print(f"  Local:   {local}", file=out)
    print(f"  Network: {lan}", file=out)
    print("Scan to open on your phone:", file=out)
    segno.make(lan, error="m").terminal(out=out, compact=True)
    print("Press Ctrl-C to stop.", file=out, flush=True)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def on_stop_signals(stop: Callable[[], None]) -> None:
    """Call `stop` on SIGTERM (SIGINT arrives as KeyboardInterrupt)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: stop())
