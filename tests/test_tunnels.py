"""--tunnel with stand-in `tailscale` and `cloudflared` (tests/tunnels/) that print what the
real ones print: the URL is printed with the token, its Host is served, the child ends with
the server; a missing binary or a failed tunnel is one line, and the server serves locally."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for
from tests.test_tls import _start_error

STAND_INS = Path(__file__).resolve().parent / "tunnels"
SCRIPTS = ["run.py", "wsgi.py"]
CLOUDFLARE_HOST = "four-dashed-word-url.trycloudflare.com"
TAILSCALE_HOST = "box.tail2527fa.ts.net"


def _stand_in_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{STAND_INS}:{os.environ['PATH']}",
            "MAESTRO_TUNNEL_PIDFILE": str(tmp_path / "tunnel.pid"), **extra}


def _banner(server) -> str:
    return wait_for(lambda: "Press Ctrl-C" in "".join(server.output)
                    and "".join(server.output))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(("script", "tunnel", "host"), [
    ("run.py", "cloudflare", CLOUDFLARE_HOST), ("wsgi.py", "cloudflare", CLOUDFLARE_HOST),
    ("run.py", "tailscale", TAILSCALE_HOST)])
def test_the_tunnel_url_is_printed_served_and_its_child_stopped(make_server, tmp_path, script,
                                                                tunnel, host):
    server = make_server("--tunnel", tunnel, script=script, env=_stand_in_env(tmp_path))
    banner = _banner(server)
    assert f"Tunnel:  https://{host}/{server.token}/" in banner
    assert "Scan it from anywhere:" in banner and "\u2588" in banner  # its QR code
    pid, *args = (tmp_path / "tunnel.pid").read_text().split()
    assert f"http://127.0.0.1:{server.port}" in args  # the real commands' target
    # Through the tunnel, requests name its host; its pages may open the socket.
    headers = {"Host": host}
    assert server.api("GET", "whoami", headers=headers).status_code == 200
    assert server.api("GET", "whoami", headers={"Host": "evil.example"}).status_code == 400
    handshake = {**headers, "Origin": f"https://{host}", "Connection": "Upgrade",
                 "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    response = requests.get(server.url("ws"), headers=handshake, timeout=10, stream=True)
    assert response.status_code == 101
    response.close()
    assert _alive(int(pid))
    assert server.stop() == 0
    wait_for(lambda: not _alive(int(pid)), timeout=10)


def test_a_tunnel_to_an_https_server_targets_it_as_such(make_server, tmp_path):
    make_server("--tls", "self-signed", "--tunnel", "cloudflare", env=_stand_in_env(tmp_path))
    args = (tmp_path / "tunnel.pid").read_text().split()
    assert "--no-tls-verify" in args and any(a.startswith("https://127.0.0.1:") for a in args)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_missing_binary_is_one_line_and_the_server_serves_locally(make_server, tmp_path,
                                                                    script):
    empty = tmp_path / "bin"
    empty.mkdir()
    server = make_server("--tunnel", "cloudflare", script=script,
                         env={"PATH": f"{empty}:/usr/bin:/bin"})
    assert server.api("GET", "whoami").status_code == 200
    lines = [line for line in server.errors if "tunnel" in line]
    assert lines == ["maestro-web: tunnel cloudflare failed: cloudflared is not installed (not "
                     "on PATH); get it from https://developers.cloudflare.com/cloudflare-one/"
                     "connections/connect-networks/downloads/; serving locally only\n"]
    assert "Tunnel:" not in _banner(server)


def test_a_failed_tunnel_quotes_its_reason(make_server, tmp_path):
    server = make_server("--tunnel", "cloudflare",
                         env=_stand_in_env(tmp_path, MAESTRO_TUNNEL_TEST="fail"))
    assert server.api("GET", "whoami").status_code == 200
    [line] = [line for line in server.errors if "tunnel" in line.lower()
              and "maestro-web" in line]
    assert line.startswith("maestro-web: tunnel cloudflare failed: cloudflared stopped (exit "
                           "code 1): failed to request quick Tunnel")


def test_a_tunnel_without_a_url_in_time_is_stopped(make_server, tmp_path):
    started = time.monotonic()
    server = make_server("--tunnel", "tailscale", "--tunnel-wait-s", "1",
                         env=_stand_in_env(tmp_path, MAESTRO_TUNNEL_TEST="https-off"))
    assert time.monotonic() - started < 15
    [line] = [line for line in server.errors if line.startswith("maestro-web: tunnel")]
    assert ("no public URL from tailscale within 1 s: "
            "https://login.tailscale.com/f/serve?node=nABCDEFCNTRL") in line
    pid = int((tmp_path / "tunnel.pid").read_text().split()[0])
    wait_for(lambda: not _alive(pid), timeout=10)
    assert server.api("GET", "whoami").status_code == 200


@pytest.mark.parametrize("url", ["https://*", "https://*.evil.example",
                                 "https://box.ts.net:99999", "https://a\"b.ts.net"])
def test_a_tunnel_printing_a_hostile_url_is_ignored_and_the_server_serves_locally(
        make_server, tmp_path, url):
    """A URL that is not a plain https host name must not open --allowed-hosts (`*`) or
    stop the server: it is not a URL we serve, one line says so."""
    server = make_server("--tunnel", "tailscale", "--tunnel-wait-s", "1",
                         env=_stand_in_env(tmp_path, MAESTRO_TUNNEL_URL=url))
    [line] = [line for line in server.errors if line.startswith("maestro-web: tunnel")]
    assert "no public URL from tailscale within 1 s" in line
    assert server.api("GET", "whoami").status_code == 200
    foreign = requests.get(f"{server.base}/{server.token}/api/whoami",
                           headers={"Host": "x.evil.example"}, timeout=10)
    assert foreign.status_code == 400


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_tunnel_that_dies_later_is_one_line_and_the_server_serves_on(make_server, tmp_path,
                                                                        script):
    server = make_server("--tunnel", "cloudflare", script=script,
                         env=_stand_in_env(tmp_path, MAESTRO_TUNNEL_TEST="die-later"))
    assert CLOUDFLARE_HOST in _banner(server)
    line = wait_for(lambda: next((line for line in server.errors
                                  if line.startswith("maestro-web: tunnel")), None))
    assert line.strip() == ("maestro-web: tunnel cloudflare ended: cloudflared stopped "
                            "(exit code 1): 2024-05-29T10:01:00Z ERR Connection terminated "
                            "error=\"control stream closed\"; serving locally only")
    assert server.api("GET", "whoami").status_code == 200


def test_an_unknown_tunnel_is_a_bad_setting(tmp_path):
    [line] = _start_error(tmp_path, "--tunnel", "ngrok")
    assert line == ("maestro-web: error: --tunnel: must be one of tailscale, cloudflare, "
                    "got 'ngrok'")
