"""What run.py and wsgi.py share: settings from the command line, logging, TLS, the tunnel,
the banner.

Each launcher calls prepare(), starts its own server (HTTPS when Launch.tls is set), prints
the banner with the real port, serves until a signal, then calls Launch.shutdown().
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import ipaddress
import logging
import resource
import signal
import socket
import ssl
import struct
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import segno
from flask import Flask

from . import create_app, tls
from .auth import RedactingFilter
from .config import ConfigError, Settings, given_on_command_line, load_settings
from .hosts import admitting, machine_names
from .services import Services, remember_port, remembered_port
from .tunnels import Tunnel, start_tunnel, tunnel_kind

EXIT_BAD_CONFIG = 2
# Each WebSocket holds about 3 descriptors and each shell about 3: the common soft limit of
# 1024 runs out near 300 clients. Capped so that child processes which loop over every
# possible descriptor stay fast.
FD_LIMIT_TARGET = 65536

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Launch:
    """What prepare() made: the launcher serves `listener` (through `tls` when set)."""

    settings: Settings
    app: Flask
    services: Services
    listener: socket.socket
    tls: ssl.SSLContext | None = None
    ca_cert: str | None = None  # our local CA's certificate, with --tls self-signed
    tunnel: Tunnel | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"

    def print_banner(self, port: int) -> None:
        base_path = self.settings.base_path
        if self.tunnel is not None and self.tunnel.url:
            label, public_url = "Tunnel", self.tunnel.url + base_path
        else:
            label, public_url = "Public", self.settings.public_url
        print_banner(self.settings.host, port, self.services.token,
                     viewer_token=self.services.viewer_token, scheme=self.scheme,
                     public_url=public_url, public_label=label, ca_cert=self.ca_cert,
                     base_path=base_path)

    def shutdown(self) -> None:
        """Stop the tunnel first (no new remote requests), then the services."""
        if self.tunnel is not None:
            self.tunnel.stop()
        self.services.shutdown()


def prepare(argv: Sequence[str]) -> Launch:
    """Settings, logging, the listening socket, TLS, the tunnel and the app.

    A bad setting or a port that cannot be had prints one line and exits with code 2; the
    port is bound first, so no session's process starts for a server that cannot serve.
    A tunnel that cannot start is one line on stderr: the server still serves locally.
    """
    raise_fd_limit()
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        exit_with_error(str(exc))
    redactor = configure_logging(settings.log_level)  # start-up warnings are logged too
    redactor.add(settings.token)
    redactor.add(settings.viewer_token)
    port_given = settings.port != 0 or given_on_command_line(argv, "port")
    port = settings.port if port_given else remembered_port(settings) or 0
    try:
        listener = listening_socket(settings.host, port)
    except OSError as exc:
        reason = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        kept = "" if port_given else " (kept from an earlier start; --port N picks another)"
        exit_with_error(f"cannot listen on {_bracket(settings.host)}:{port}{kept}: {reason}")
    launch_tunnel: Tunnel | None = None
    try:
        files = tls.cert_files(settings, machine_names(), lan_addresses())
        context = tls.server_context(files) if files else None
        if settings.tunnel:
            launch_tunnel = _start_tunnel(settings, listener, "http" if context is None
                                          else "https")
        for public_url in (launch_tunnel.url if launch_tunnel else None, settings.public_url):
            if public_url:
                hosts, origins = admitting(public_url, settings.allowed_hosts,
                                           settings.allowed_origins)
                settings = dataclasses.replace(settings, allowed_hosts=hosts,
                                               allowed_origins=origins)
        app = create_app(settings)
    except ConfigError as exc:
        listener.close()
        if launch_tunnel is not None:
            launch_tunnel.stop()
        exit_with_error(str(exc))
    if not port_given:
        remember_port(settings, listener.getsockname()[1])
    services: Services = app.extensions["maestro"]
    redactor.add(services.token)
    redactor.add(services.viewer_token)
    for name, flag, variable in (("token", "--token", "MAESTRO_TOKEN"),
                                 ("viewer_token", "--viewer-token", "MAESTRO_VIEWER_TOKEN")):
        if given_on_command_line(argv, name):
            logger.warning("%s on the command line is visible to other local users (ps); "
                           "prefer %s or a token file", flag, variable)
    return Launch(settings, app, services, listener, tls=context,
                  ca_cert=files.ca_cert if files else None, tunnel=launch_tunnel)


def _start_tunnel(settings: Settings, listener: socket.socket, scheme: str) -> Tunnel | None:
    """The tunnel to this server's port, or None after one line on stderr saying why not.

    :raise ConfigError: --tunnel names no tunnel we know.
    """
    tunnel_kind(settings.tunnel)
    local = f"{scheme}://{_bracket(_local_host(settings.host))}:{listener.getsockname()[1]}"

    def say(how: str, reason: str) -> None:
        print(f"maestro-web: tunnel {settings.tunnel} {how}: {reason}; serving locally only",
              file=sys.stderr, flush=True)

    started = start_tunnel(settings.tunnel, local, settings.tunnel_wait_s,
                           on_lost=lambda reason: say("ended", reason))
    if isinstance(started, str):
        say("failed", started)
        return None
    return started


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
    """Log to stderr at `level`; every token added to the returned filter is scrubbed.

    Records skip what our format never shows (the caller's file and line, thread and process
    names), as the logging docs' "Optimization" section suggests: every request writes an
    access line, and finding the caller's frame was a quarter of its cost."""
    logging._srcfile = None  # the documented switch
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
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
    usable = lan_addresses()
    private = [address for address in usable if ipaddress.ip_address(address).is_private]
    return (private or usable or ["127.0.0.1"])[0]


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other devices could use (no loopback, no link-local)."""
    candidates = _interface_addresses()
    with contextlib.suppress(OSError):
        candidates += [info[4][0] for info in
                       socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    return list(dict.fromkeys(
        address for address in candidates
        if not ipaddress.ip_address(address).is_loopback
        and not ipaddress.ip_address(address).is_link_local))


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
                 viewer_token: str | None = None, *, scheme: str = "http",
                 public_url: str | None = None, ca_cert: str | None = None,
                 public_label: str = "Tunnel", base_path: str = "") -> None:
    """The local and LAN URLs (token included, under `base_path`) and a QR code of the LAN
    URL, and the tunnel's or reverse proxy's URL and QR code; the same for the view-only
    token, when there is one. Plain HTTP on the network gets a warning; our own CA, how to
    trust it."""
    out = out or sys.stdout
    print("Maestro Web is running.", file=out)
    if scheme == "http" and not _is_loopback(_local_host(host)):
        print("  Warning: plain HTTP on the network: the token travels in clear and phones "
              "get no secure context (no offline start, install, clipboard or "
              "notifications); use --tls self-signed or --tunnel tailscale|cloudflare",
              file=out)
    public = (public_label, public_url) if public_url else None
    _print_urls(host, port, base_path, token, "Scan to open on your phone:", out, scheme,
                public)
    if viewer_token is not None:
        print("View only (can watch, cannot act):", file=out)
        _print_urls(host, port, base_path, viewer_token, "Scan to watch from another device:",
                    out, scheme, public)
    if ca_cert is not None:
        _print_trust_steps(host, port, base_path, token, ca_cert, out)
    print("Press Ctrl-C to stop.", file=out, flush=True)


def _print_urls(host: str, port: int, base_path: str, token: str, scan_prompt: str, out,
                scheme: str = "http", public: tuple[str, str] | None = None) -> None:
    print(f"  Local:   {scheme}://{_bracket(_local_host(host))}:{port}{base_path}/{token}/",
          file=out)
    if public is not None:
        label, public_url = public
        address = f"{public_url}/{token}/"
        print(f"  {label + ':':<9}{address}", file=out)
        print("Scan it from anywhere:", file=out)
        segno.make(address, error="m").terminal(out=out, compact=True)
    lan_host = lan_address(host)
    if _is_loopback(lan_host):  # a phone could not open it: no Network URL, no QR code
        print(f"  Network: none (listening on {host} only; --host 0.0.0.0 serves your "
              "network)", file=out)
        return
    lan = f"{scheme}://{_bracket(lan_host)}:{port}{base_path}/{token}/"
    print(f"  Network: {lan}", file=out)
    print(scan_prompt, file=out)
    segno.make(lan, error="m").terminal(out=out, compact=True)


def _print_trust_steps(host: str, port: int, base_path: str, token: str, ca_cert: str,
                       out) -> None:
    """How to make a phone trust our local CA (once; the CA is kept in the data dir)."""
    address = f"https://{_bracket(lan_address(host))}:{port}{base_path}/{token}/ca.crt"
    print(f"Trust this server's local CA once per phone (SHA-256 "
          f"{tls.ca_fingerprint(ca_cert)}):", file=out)
    print(f"  Open {address} (accept the warning this one time) to download it, then", file=out)
    print("  iOS:     Settings > General > VPN & Device Management > install the profile; "
          "then Settings > General > About > Certificate Trust Settings > turn it on", file=out)
    print("  Android: Settings > Security > Encryption & credentials > Install a certificate "
          "> CA certificate > pick ca.crt", file=out)


def _local_host(host: str) -> str:
    """The address this machine uses to reach a server bound to `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


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
