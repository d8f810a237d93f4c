"""The server behind Debian's nginx and Caddy with docs/deploy/'s files, as docs/deploy.md sets
it up:
HTTPS at https://maestro.example.com/maestro/, --base-path /maestro, --trusted-proxies 1,
--public-url. Every URL the server prints, redirects to or renders stays under /maestro/;
the rate limits count per forwarded client address, and only from a proxy it trusts."""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import requests

from app.config import load_settings
from tests.conftest import ROOT
from tests.proxy import (
    BASE_PATH,
    CADDY,
    DEPLOY,
    PROXIES,
    Proxied,
    Proxy,
    behind_proxy,
    installed,
    proxy_kinds,
)


@pytest.fixture(params=proxy_kinds())
def proxied(request, make_server, tmp_path) -> Iterator:
    """Start a server with the documented flags (and more) behind the documented proxy."""
    started: list[Proxy] = []

    def start(*flags: str) -> Proxied:
        site = behind_proxy(PROXIES[request.param], make_server,
                            tmp_path / f"proxy-{len(started)}", *flags)
        started.append(site.proxy)
        return site

    yield start
    for proxy in started:
        proxy.stop()


def test_banner_pages_redirects_cookie_and_pwa_urls_stay_under_the_sub_path(proxied) -> None:
    site = proxied("--trusted-proxies", "1", "--no-rate-limit")
    token = site.server.token
    banner = "".join(site.server.output)
    assert f"Local:   http://127.0.0.1:{site.server.port}/maestro/{token}/" in banner
    assert f"Public:  {site.public}" in banner

    page = site.get(f"/maestro/{token}/")
    assert page.status_code == 200
    # Every link in the page is relative, so it resolves under /maestro/<token>/.
    links = re.findall(r'(?:href|src)="([^"]+)"', page.text)
    assert links and all(link.startswith("./") for link in links), links
    for link in links:
        assert site.get(urljoin(f"/maestro/{token}/", link)).status_code == 200, link

    # The token without its slash, and the pairing redirect with its cookie.
    assert site.get(f"/maestro/{token}").headers["Location"] == f"/maestro/{token}/"
    paired = site.get(f"/maestro/{token}/", headers={"Sec-Fetch-Mode": "navigate",
                                                      "Sec-Fetch-Site": "none"})
    assert paired.status_code == 303 and paired.headers["Location"] == "/maestro/"
    cookie = paired.headers["Set-Cookie"]
    assert "Path=/maestro;" in cookie and "Secure" in cookie  # https, told by the proxy
    name, value = cookie.split(";", 1)[0].split("=", 1)
    assert site.get("/maestro/", cookies={name: value}).status_code == 200

    manifest_url = f"https://{site.host}/maestro/{token}/manifest.json"
    manifest = site.get(f"/maestro/{token}/manifest.json").json()
    assert urljoin(manifest_url, manifest["scope"]) == site.public
    assert urljoin(manifest_url, manifest["start_url"]) == site.public
    worker = site.get(f"/maestro/{token}/sw.js")
    assert worker.status_code == 200 and worker.headers["Service-Worker-Allowed"] == "./"
    document = site.get(f"/maestro/{token}/api/openapi.json").json()
    assert document["servers"][0]["url"] == f"/maestro/{token}/api"

    # A wrong token goes to the redirect URL; paths outside the sub-path are not served.
    wrong = site.get(f"/maestro/{uuid.uuid4()}/")
    assert wrong.status_code == 302 and wrong.headers["Location"] == "https://runmaestro.ai"
    outside = requests.get(f"http://127.0.0.1:{site.server.port}/{token}/", timeout=30)
    assert outside.status_code == 404 and "/maestro/" in outside.json()["message"]
    assert site.get("/maestro/health").json()["status"] == "ok"


def test_rest_and_websocket_with_resume_through_the_proxy(proxied, project) -> None:
    site = proxied("--trusted-proxies", "1", "--no-rate-limit")
    token = site.server.token
    client = site.socket()
    created = site.post(f"/maestro/{token}/api/sessions",
                        {"name": "build", "cwd": str(project), "toolType": "terminal"})
    assert created.status_code == 201, created.text
    first = created.json()["session"]["id"]
    added = client.wait_for(lambda m: m["type"] == "session:added")
    assert added["session"]["id"] == first
    client.close()

    # Missed while away, given back on resume through the proxy.
    second = site.post(f"/maestro/{token}/api/sessions",
                       {"name": "tests", "cwd": str(project), "toolType": "terminal"})
    assert second.status_code == 201
    resumed = site.socket(since=added["seq"])
    assert resumed.init["resumed"] is True
    missed = resumed.wait_for(lambda m: m["type"] == "session:added")
    assert missed["session"]["id"] == second.json()["session"]["id"]
    listed = site.get(f"/maestro/{token}/api/sessions").json()["sessions"]
    assert {s["id"] for s in listed} >= {first, missed["session"]["id"]}
    resumed.close()


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "untrusted-proxy"])
def test_rate_limits_count_per_forwarded_client_only_from_a_trusted_proxy(proxied,
                                                                         trusted) -> None:
    site = proxied("--rate-limit-get", "3", *(["--trusted-proxies", "1"] if trusted else []))
    sessions = f"/maestro/{site.server.token}/api/sessions"
    assert [site.status_from("127.0.0.2", sessions) for _ in range(3)] == [200] * 3
    assert site.status_from("127.0.0.2", sessions) == 429
    # A client cannot claim another address: the proxy adds the real one, the server reads
    # only what its trusted proxy wrote.
    assert site.status_from("127.0.0.2", sessions, {"X-Forwarded-For": "203.0.113.9"}) == 429
    # Another client has a quota of its own only when the server may believe the proxy.
    assert site.status_from("127.0.0.3", sessions) == (200 if trusted else 429)


def test_forwarded_for_is_ignored_without_trusted_proxies(make_server) -> None:
    server = make_server("--token", str(uuid.uuid4()), "--rate-limit-get", "2")
    statuses = [server.api("GET", "sessions", headers={"X-Forwarded-For": f"203.0.113.{n}"})
                .status_code for n in range(3)]
    assert statuses == [200, 200, 429]


def _arguments_after_launcher(command: list[str]) -> list[str]:
    launcher = next(i for i, word in enumerate(command) if word.endswith("wsgi.py"))
    return command[launcher + 1:]


def test_systemd_unit_and_launchd_plist_start_the_documented_server(tmp_path) -> None:
    unit = (DEPLOY / "maestro-web.service").read_text(encoding="utf-8")
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1)
    systemd_flags = _arguments_after_launcher(shlex.split(exec_start.replace("%h", "/home/u")))
    with (DEPLOY / "ai.runmaestro.maestro-web.plist").open("rb") as handle:
        plist = plistlib.load(handle)
    launchd_flags = _arguments_after_launcher(plist["ProgramArguments"])
    for flags in (systemd_flags, launchd_flags):
        settings = load_settings(flags, environ={})
        assert (settings.host, settings.port, settings.base_path, settings.trusted_proxies) == (
            "127.0.0.1", 8080, BASE_PATH, 1)
        assert settings.persistent_token
    assert plist["RunAtLoad"] and plist["KeepAlive"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path) -> None:
    """systemd's own check of the unit, with %h a home that has the README's .venv."""
    venv_bin = tmp_path / "maestro-web" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    checked = subprocess.run(["systemd-analyze", "verify", str(DEPLOY / "maestro-web.service")],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "HOME": str(tmp_path)})
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr


@pytest.mark.skipif(not installed("caddy") and not os.environ.get("CI"),
                    reason="caddy is not installed (apt-get install caddy; .ci/run does)")
def test_documented_caddyfile_is_valid(tmp_path) -> None:
    checked = subprocess.run([CADDY, "validate", "--adapter", "caddyfile", "--config",
                              str(DEPLOY / "Caddyfile")], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)})
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_deploy_doc_includes_every_file_it_documents() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for path in sorted(DEPLOY.iterdir()):
        assert path.read_text(encoding="utf-8").strip() in doc, path.name


def test_a_proxy_that_strips_the_sub_path_names_it_in_x_forwarded_prefix(make_server) -> None:
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--trusted-proxies",
                         "1", script="wsgi.py")
    prefix = {"X-Forwarded-Prefix": "/maestro", "X-Forwarded-Proto": "https"}
    moved = requests.get(f"{server.base}/{server.token}", headers=prefix,
                         allow_redirects=False, timeout=30)
    assert moved.headers["Location"] == f"/maestro/{server.token}/"
    paired = requests.get(server.url(), allow_redirects=False, timeout=30,
                          headers={**prefix, "Sec-Fetch-Mode": "navigate",
                                   "Sec-Fetch-Site": "none"})
    assert paired.headers["Location"] == "/maestro/"
    assert "Path=/maestro;" in paired.headers["Set-Cookie"]
    document = server.api("GET", "openapi.json", headers=prefix).json()
    assert document["servers"][0]["url"] == f"/maestro/{server.token}/api"


FORGED = {"X-Forwarded-Prefix": "//evil.example", "X-Forwarded-Proto": "javascript"}


def test_a_client_cannot_move_urls_through_the_proxy_with_its_own_forwarded_headers(
        proxied) -> None:
    """The documented proxy sets For and Proto itself; a Prefix or Host the client adds
    must not reach the redirects, cookie path or documented server URL."""
    site = proxied("--trusted-proxies", "1", "--no-rate-limit")
    token = site.server.token
    moved = site.get(f"/maestro/{token}", headers=FORGED)
    assert moved.headers["Location"] == f"/maestro/{token}/"
    paired = site.get(f"/maestro/{token}/", headers={**FORGED, "Sec-Fetch-Mode": "navigate",
                                                      "Sec-Fetch-Site": "none"})
    assert paired.status_code == 303 and paired.headers["Location"] == "/maestro/"
    assert "Path=/maestro;" in paired.headers["Set-Cookie"]
    document = site.get(f"/maestro/{token}/api/openapi.json", headers=FORGED).json()
    assert document["servers"][0]["url"] == f"/maestro/{token}/api"
    # The documented proxy sets X-Forwarded-Host itself: a client's own one is replaced.
    forged_host = site.get(f"/maestro/{token}/", headers={"X-Forwarded-Host": "evil.example"})
    assert forged_host.status_code == 200, forged_host.text
    assert "evil.example" not in forged_host.text


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_forwarded_headers_change_nothing_without_trusted_proxies(make_server, script) -> None:
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", script=script)
    moved = requests.get(f"{server.base}/{server.token}", headers=FORGED,
                         allow_redirects=False, timeout=30)
    assert moved.headers["Location"] == f"/{server.token}/"
    paired = requests.get(server.url(), allow_redirects=False, timeout=30,
                          headers={**FORGED, "X-Forwarded-Proto": "https",
                                   "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"})
    assert paired.headers["Location"] == "/"
    cookie = paired.headers["Set-Cookie"]
    assert "Path=/;" in cookie and "Secure" not in cookie
    document = server.api("GET", "openapi.json", headers=FORGED).json()
    assert document["servers"][0]["url"] == f"/{server.token}/api"


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_a_trusted_proxy_forwarding_a_hostile_prefix_or_scheme_gets_a_400(make_server,
                                                                          script) -> None:
    """Believed from a trusted proxy, but never built into a redirect or a cookie."""
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--trusted-proxies",
                         "1", script=script)
    hostile = [{"X-Forwarded-Prefix": prefix} for prefix in
               ("//evil.example", "/\\evil.example", "javascript:alert(1)", "/a/../b",
                "/a'><script>", "/ma\u00ebstro")]
    hostile.append({"X-Forwarded-Proto": "javascript"})
    for headers in hostile:
        answer = requests.get(f"{server.base}/{server.token}", headers=headers,
                              allow_redirects=False, timeout=30)
        assert answer.status_code == 400, (headers, answer.headers.get("Location"))
        assert "X-Forwarded-" in answer.json()["message"]
    fine = requests.get(f"{server.base}/{server.token}", allow_redirects=False, timeout=30,
                        headers={"X-Forwarded-Prefix": "/maestro/", "X-Forwarded-Proto": "https"})
    assert fine.headers["Location"] == f"/maestro/{server.token}/"
