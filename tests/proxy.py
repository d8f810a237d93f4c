"""Debian's nginx and Caddy as child processes on loopback ports, serving docs/deploy/'s files
as documented: only ports, upstream and certificate paths are replaced."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from app import tls
from tests.conftest import ROOT, wait_for
from tests.wsclient import LiveClient

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
DEPLOY = ROOT / "docs" / "deploy"
PUBLIC_NAME = "maestro.example.com"  # the documented name; tests map it to 127.0.0.1
BASE_PATH = "/maestro"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def replace_once(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced; fails when the documented file no longer has `old`."""
    assert text.count(old) == 1, f"the documented file no longer has {old!r} once"
    return text.replace(old, new)


class Proxy:
    """A reverse proxy in the foreground on loopback ports, HTTPS with a certificate from a
    local CA for PUBLIC_NAME, in front of the server on `upstream_port`."""

    name = ""

    def __init__(self, folder: Path, upstream_port: int, https_port: int) -> None:
        self.folder = folder
        self.https_port = https_port
        self.http_port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.certs = tls.ensure_local_ca(str(folder / "ca"), [PUBLIC_NAME], ["127.0.0.1"])
        self.command = self.configure(upstream_port)
        self.process: subprocess.Popen | None = None

    def configure(self, upstream_port: int) -> list[str]:
        """Write the configuration; return the command that serves it."""
        raise NotImplementedError

    @property
    def ca_cert(self) -> str:
        return self.certs.ca_cert

    def start(self) -> Proxy:
        self.process = subprocess.Popen(self.command, cwd=self.folder, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT,
                                        env={**os.environ, "HOME": str(self.folder)})
        wait_for(lambda: self._listening() or self.process.poll() is not None, timeout=15)
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} did not start: " + self.log)
        return self

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
        except OSError:
            return False
        return True

    @property
    def log(self) -> str:
        output = self.process.stdout.read().decode() if self.process.poll() is not None else ""
        path = self.folder / "error.log"
        return output + (path.read_text() if path.exists() else "")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: a graceful stop, workers included
            self.process.wait(15)


class Nginx(Proxy):
    """nginx (`daemon off`) with docs/deploy/nginx.conf; only its ports, upstream and
    certificate paths replaced."""

    name = "nginx"

    def configure(self, upstream_port: int) -> list[str]:
        folder = self.folder
        site = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
        site = replace_once(site, "listen 80;", f"listen 127.0.0.1:{self.http_port};")
        site = replace_once(site, "listen 443 ssl http2;",
                            f"listen 127.0.0.1:{self.https_port} ssl http2;")
        site = replace_once(site, "proxy_pass http://127.0.0.1:8080;",
                            f"proxy_pass http://127.0.0.1:{upstream_port};")
        site = replace_once(site, "/etc/letsencrypt/live/maestro.example.com/fullchain.pem",
                            self.certs.cert)
        site = replace_once(site, "/etc/letsencrypt/live/maestro.example.com/privkey.pem",
                            self.certs.key)
        (folder / "site.conf").write_text(site)
        temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        user = "user root root;" if os.geteuid() == 0 else ""  # workers read our temp dirs
        (folder / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
{user}
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {folder / "site.conf"};
}}
""")
        return [NGINX, "-p", str(folder), "-e", str(folder / "error.log"), "-c",
                str(folder / "nginx.conf")]


class Caddy(Proxy):
    """caddy run with docs/deploy/Caddyfile; only its address (a port), upstream and
    certificate (ours, not one from an ACME CA) replaced, with global options that keep it
    on loopback and off the network."""

    name = "caddy"

    def configure(self, upstream_port: int) -> list[str]:
        site = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
        site = replace_once(site, f"{PUBLIC_NAME} {{",
                            f"https://{PUBLIC_NAME}:{self.https_port} {{\n"
                            f"\ttls {self.certs.cert} {self.certs.key}")
        site = replace_once(site, "reverse_proxy 127.0.0.1:8080",
                            f"reverse_proxy 127.0.0.1:{upstream_port}")
        options = (f"{{\n\tadmin off\n\tdefault_bind 127.0.0.1\n\thttp_port {self.http_port}"
                   f"\n\tauto_https disable_redirects\n\tstorage file_system {self.folder}"
                   "\n}\n")
        path = self.folder / "Caddyfile"
        path.write_text(options + site)
        return [CADDY, "run", "--adapter", "caddyfile", "--config", str(path)]


PROXIES = {"nginx": Nginx, "caddy": Caddy}


def installed(kind: str) -> bool:
    return os.path.exists(NGINX if kind == "nginx" else CADDY)


def proxy_kinds() -> list:
    """nginx and Caddy; one not installed is skipped locally (CI installs both)."""
    return [pytest.param(kind, marks=pytest.mark.skipif(
        not installed(kind) and not os.environ.get("CI"),
        reason=f"{kind} is not installed (apt-get install {kind}; .ci/run does)"))
        for kind in PROXIES]


class Proxied:
    """A server and the proxy in front of it; requests go to the proxy under the public name."""

    def __init__(self, server, proxy: Proxy) -> None:
        self.server = server
        self.proxy = proxy
        self.port = proxy.https_port
        self.host = f"{PUBLIC_NAME}:{self.port}"  # what a browser sends as Host
        self.public = f"https://{self.host}{BASE_PATH}/{server.token}/"

    def get(self, path: str, **kwargs) -> requests.Response:
        """GET `path` (from the root) through the proxy."""
        headers = {"Host": self.host, **kwargs.pop("headers", {})}
        return requests.get(f"https://127.0.0.1:{self.port}{path}", headers=headers,
                            verify=self.proxy.ca_cert, allow_redirects=False, timeout=30,
                            **kwargs)

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(f"https://127.0.0.1:{self.port}{path}", json=body,
                             headers={"Host": self.host}, verify=self.proxy.ca_cert,
                             allow_redirects=False, timeout=30)

    def status_from(self, source: str, path: str, headers: dict[str, str] | None = None) -> int:
        """GET `path` through the proxy from the loopback address `source` (another client)."""
        context = ssl.create_default_context(cafile=self.proxy.ca_cert)
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30,
                                                 source_address=(source, 0), context=context)
        try:
            connection.request("GET", path, headers={"Host": self.host, **(headers or {})})
            return connection.getresponse().status
        finally:
            connection.close()

    def socket(self, **kwargs) -> LiveClient:
        return LiveClient(self.server, url=f"wss://127.0.0.1:{self.port}{BASE_PATH}/"
                          f"{self.server.token}/ws", host=self.host,
                          origin=f"https://{self.host}",
                          sslopt={"ca_certs": self.proxy.ca_cert}, **kwargs)


def behind_proxy(kind: type[Proxy], make_server, folder: Path, *flags: str) -> Proxied:
    """A server (wsgi.py, as documented) with the documented flags (and `flags`) behind the
    documented proxy; the caller stops the proxy (`.proxy.stop()`), make_server the server."""
    https_port = free_port()
    server = make_server("--token", str(uuid.uuid4()), "--base-path", BASE_PATH,
                         "--public-url", f"https://{PUBLIC_NAME}:{https_port}{BASE_PATH}",
                         *flags, script="wsgi.py")
    return Proxied(server, kind(folder, server.port, https_port).start())
