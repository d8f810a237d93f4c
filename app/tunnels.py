"""Tunnels: an https URL that reaches this server from anywhere, run as a child process.

`--tunnel tailscale` runs `tailscale serve --https=443 <local URL>` in the foreground (HTTPS
with a real certificate for the machine's tailnet name, reachable by the user's own devices on
the tailnet); `--tunnel cloudflare` runs `cloudflared tunnel --url <local URL>` (a Cloudflare
quick tunnel: a random public `https://*.trycloudflare.com` name, no account). Each prints its
public URL; we read it from the child's output (within --tunnel-wait-s: cloudflared usually
needs 2 to 10 s, tailscale under one), and stop the child,
its whole process group, at shutdown. Foreground `tailscale serve` removes its own
configuration when it ends, so nothing outlives the server.

A missing binary, a tunnel that fails or one that ends later on its own is one line on
stderr; the server keeps serving locally.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .config import ConfigError
from .hosts import parse_origin

STOP_WAIT_S = 5.0
KEPT_LINES = 20  # of the child's output, to quote the reason when it fails

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TunnelKind:
    """How to start one kind of tunnel and where its public URL shows in its output."""

    binary: str
    install_hint: str
    url_pattern: re.Pattern[str]

    def command(self, local_url: str) -> list[str]:
        insecure = local_url.startswith("https:")  # our own certificate, on 127.0.0.1
        if self.binary == "tailscale":
            target = local_url.replace("https://", "https+insecure://", 1)
            return [self.binary, "serve", "--https=443", target]
        return [self.binary, "tunnel", "--no-autoupdate", "--url", local_url,
                *(["--no-tls-verify"] if insecure else [])]


TUNNELS = {
    # "Available within your tailnet:\n\nhttps://box.tail1234.ts.net/\n|-- proxy http://...";
    # a line holding only a login.tailscale.com URL asks the user to enable HTTPS first.
    "tailscale": TunnelKind(
        "tailscale", "https://tailscale.com/download",
        re.compile(r"^\s*(https://(?!login\.tailscale\.com)"
                   r"[a-z0-9-]+(?:\.[a-z0-9-]+)+(?::[0-9]{1,5})?)/?\s*$", re.IGNORECASE)),
    # A box in its log: "|  https://four-dashed-word-url.trycloudflare.com  |"; its errors
    # name https://api.trycloudflare.com.
    "cloudflare": TunnelKind(
        "cloudflared",
        "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/"
        "downloads/",
        re.compile(r"(https://(?!api\.)[a-z0-9-]+\.trycloudflare\.com)\b")),
}


def tunnel_kind(name: str) -> TunnelKind:
    """:raise ConfigError: not a tunnel we know."""
    try:
        return TUNNELS[name]
    except KeyError:
        raise ConfigError(f"--tunnel: must be one of {', '.join(TUNNELS)}, got {name!r}") from None


class Tunnel:
    """A running tunnel child; `url` once its public URL was seen, else `failure`."""

    def __init__(self, name: str, kind: TunnelKind, process: subprocess.Popen,
                 on_lost: Callable[[str], None]) -> None:
        self.name = name
        self.kind = kind
        self.process = process
        self._on_lost = on_lost  # told why, when a tunnel that gave its URL ends on its own
        self._stopping = False
        self.url: str | None = None
        self._seen_url = threading.Event()
        self._ended = threading.Event()
        self._lines: collections.deque[str] = collections.deque(maxlen=KEPT_LINES)
        threading.Thread(target=self._read_output, name=f"tunnel-{name}", daemon=True).start()

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname if self.url else ""

    def _read_output(self) -> None:
        """Look for the URL, then keep draining (a full pipe would stall the child).

        Only a plain https host name (and port) counts: the URL is added to the served
        hosts and origins, so a wildcard or garbage would open them or stop the server."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            if not line:
                continue
            self._lines.append(line)
            logger.debug("%s: %s", self.name, line)
            match = self.kind.url_pattern.search(line)
            if match and self.url is None and parse_origin(match.group(1)) is not None:
                self.url = match.group(1)
                self._seen_url.set()
        self._ended.set()
        self._seen_url.set()
        if self.url is not None and not self._stopping:
            self._on_lost(self.failure(STOP_WAIT_S))

    def wait_for_url(self, timeout: float) -> str | None:
        """The public URL, or None (with failure() saying why) within `timeout` seconds."""
        self._seen_url.wait(timeout)
        return self.url

    def failure(self, waited_s: float) -> str:
        last = self._lines[-1] if self._lines else "no output"
        if self._ended.is_set():  # its output ended: it exits, or has
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_WAIT_S)
        if self.process.poll() is not None:
            return f"{self.kind.binary} stopped (exit code {self.process.returncode}): {last}"
        return f"no public URL from {self.kind.binary} within {waited_s:g} s: {last}"

    def stop(self) -> None:
        """End the child's process group: SIGTERM, then SIGKILL after STOP_WAIT_S."""
        self._stopping = True
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_WAIT_S)


def start_tunnel(name: str, local_url: str, wait_s: float,
                 on_lost: Callable[[str], None]) -> Tunnel | str:
    """Start the tunnel to `local_url`; the running Tunnel, or one line saying what failed
    (the child, if any, is stopped then). `on_lost` gets that line if the tunnel ends later,
    on its own."""
    kind = tunnel_kind(name)
    try:
        process = subprocess.Popen(kind.command(local_url), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace", start_new_session=True)
    except FileNotFoundError:
        return f"{kind.binary} is not installed (not on PATH); get it from {kind.install_hint}"
    except OSError as exc:
        return f"cannot start {kind.binary}: {exc.strerror or exc}"
    tunnel = Tunnel(name, kind, process, on_lost)
    if tunnel.wait_for_url(wait_s) is None:
        failure = tunnel.failure(wait_s)
        tunnel.stop()
        return failure
    return tunnel
