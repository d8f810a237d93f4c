"""Who may talk to the server: served Host names, WebSocket origins, wrong-token lockouts and
the view-only token."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import pytest
import requests

from app.launcher import print_banner
from app.pairing import cookie_value
from app.throttle import FailedTokenThrottle
from tests.conftest import ROOT, wait_for
from tests.test_auth import raw_handshake
from tests.wsclient import LiveClient

READ_ONLY = "read-only token"
LOCKOUT_LINE = "wrong-token requests within"


def get(server, path: str, **headers: str) -> requests.Response:
    return requests.get(server.base + path, headers=headers, allow_redirects=False, timeout=10)


def handshake_status(server, path: str = "", **headers: str) -> int:
    head = raw_handshake(server.port, path or f"/{server.token}/ws", headers)
    return int(head.split(" ", 2)[1])


def assert_json_error(response: requests.Response, status: int, fragment: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] and isinstance(body["timestamp"], int), body
    assert fragment in body["message"], body
    return body


# -- Host: DNS rebinding -------------------------------------------------------------------

def test_a_host_we_do_not_serve_gets_400_on_every_path(make_server):
    server = make_server("--no-rate-limit")
    for path in ("/health", f"/{server.token}/api/sessions", f"/{server.token}",
                 f"/{server.token}/", "/", f"/{uuid.uuid4()}/api/sessions"):
        for host in ("evil.example", f"evil.example:{server.port}", "evil.example."):
            response = get(server, path, Host=host)
            body = assert_json_error(response, 400, "is not served here; add it with "
                                                    "--allowed-hosts")
            assert body["message"].startswith(f"Host '{host}'")
            assert server.token not in response.text
    assert handshake_status(server, Host="evil.example") == 400
    assert get(server, "/health").status_code == 200


def test_ip_literals_localhost_and_the_machines_names_are_served(make_server):
    server = make_server("--no-rate-limit")
    hostname = socket.gethostname()
    for host in ("127.0.0.1", f"127.0.0.1:{server.port}", "[::1]", f"[::1]:{server.port}",
                 "192.168.1.20:8080", "LOCALHOST", f"localhost:{server.port}", "app.localhost",
                 hostname, f"{hostname}.local", socket.getfqdn()):
        assert get(server, "/health", Host=host).status_code == 200, host
        assert get(server, f"/{server.token}/api/sessions", Host=host).status_code == 200


def test_allowed_hosts_adds_names_and_a_star_serves_any(make_server, tmp_path):
    server = make_server("--no-rate-limit", "--allowed-hosts",
                         "maestro.example.com, *.tail.example")
    for host in ("maestro.example.com", "MAESTRO.example.com:443", "box.tail.example",
                 "127.0.0.1"):
        assert get(server, "/health", Host=host).status_code == 200, host
    for host in ("example.com", "tail.example", "evil.maestro.example.com.attacker.example"):
        assert get(server, "/health", Host=host).status_code == 400, host
    server.stop()
    anything = make_server("--no-rate-limit", "--allowed-hosts", "*",
                           data_dir=tmp_path / "any")
    assert get(anything, "/health", Host="evil.example").status_code == 200


def test_a_trusted_proxys_forwarded_host_is_the_one_checked(make_server, tmp_path):
    proxied = make_server("--no-rate-limit", "--trusted-proxies", "1",
                          "--allowed-hosts", "maestro.example.com")
    path = f"/{proxied.token}/api/sessions"
    assert get(proxied, path, **{"X-Forwarded-Host": "maestro.example.com"}).status_code == 200
    assert get(proxied, path, **{"X-Forwarded-Host": "evil.example"}).status_code == 400
    proxied.stop()
    direct = make_server("--no-rate-limit", data_dir=tmp_path / "direct")
    path = f"/{direct.token}/api/sessions"
    assert get(direct, path, **{"X-Forwarded-Host": "evil.example"}).status_code == 200


# -- Origin: WebSocket handshakes from other sites' pages ----------------------------------

def test_websocket_from_another_sites_page_is_refused(make_server):
    server = make_server("--no-rate-limit")
    own = f"http://127.0.0.1:{server.port}"
    assert handshake_status(server) == 101  # no Origin: not a browser
    assert handshake_status(server, Origin=own) == 101
    assert handshake_status(server, Origin=own.upper()) == 101
    for origin in ("http://evil.example", f"http://localhost:{server.port}",
                   f"https://127.0.0.1:{server.port}", "http://127.0.0.1", "null", "garbage"):
        assert handshake_status(server, Origin=origin) == 403, origin
    refused = get(server, f"/{server.token}/ws", Origin="http://evil.example",
                  Upgrade="websocket", Connection="Upgrade",
                  **{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                     "Sec-WebSocket-Version": "13"})
    assert_json_error(refused, 403, "Origin 'http://evil.example' may not open the WebSocket; "
                                    "add it with --allowed-origins")
    assert server.token not in refused.text
    # Plain requests are CORS's business, not this check's.
    assert get(server, f"/{server.token}/api/sessions",
               Origin="http://evil.example").status_code == 200


def test_allowed_origins_may_open_the_websocket(make_server, tmp_path):
    server = make_server("--no-rate-limit", "--allowed-origins",
                         "https://app.example.com,http://10.0.0.5:3000")
    assert handshake_status(server, Origin="https://app.example.com") == 101
    assert handshake_status(server, Origin="https://app.example.com:443") == 101
    assert handshake_status(server, Origin="http://10.0.0.5:3000") == 101
    assert handshake_status(server, Origin="http://app.example.com") == 403
    server.stop()
    anyone = make_server("--no-rate-limit", "--allowed-origins", "*",
                         data_dir=tmp_path / "any")
    assert handshake_status(anyone, Origin="http://evil.example") == 101


def test_same_origin_behind_a_trusted_tls_proxy(make_server):
    server = make_server("--no-rate-limit", "--trusted-proxies", "1",
                         "--allowed-hosts", "maestro.example.com")
    forwarded = {"X-Forwarded-Host": "maestro.example.com", "X-Forwarded-Proto": "https"}
    assert handshake_status(server, Origin="https://maestro.example.com", **forwarded) == 101
    assert handshake_status(server, Origin="http://maestro.example.com", **forwarded) == 403
    assert handshake_status(server, Origin="https://maestro.example.com",
                            **{"X-Forwarded-Host": "maestro.example.com"}) == 403


@pytest.mark.parametrize("flags, message", [
    (["--allowed-origins", "app.example.com"], "--allowed-origins: 'app.example.com' is not"),
    (["--viewer-token", "{token}"], "the viewer token must differ from the token"),
    (["--viewer-token", "not-a-uuid"], "--viewer-token (command line): must be a UUID v4"),
])
def test_bad_access_settings_stop_start_up(tmp_path, flags, message):
    token = str(uuid.uuid4())
    command = [sys.executable, str(ROOT / "run.py"), "--port", "0", "--data-dir",
               str(tmp_path / "data"), "--token", token,
               *(flag.format(token=token) for flag in flags)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# -- failed-token throttling ----------------------------------------------------------------

def test_wrong_tokens_lock_the_address_out_for_the_lockout_period(make_server):
    server = make_server("--auth-fail-limit", "3", "--auth-lockout-s", "2", "--no-rate-limit")
    wrong = [f"/{uuid.uuid4()}/api/sessions", "/", "/api/sessions"]
    for path in wrong:
        assert get(server, path).status_code == 302
    locked = get(server, f"/{uuid.uuid4()}/api/sessions")
    assert locked.status_code == 429
    body = locked.json()
    assert body["statusCode"] == 429 and body["error"] == "Too Many Requests"
    assert body["message"] == "Rate limit exceeded. Try again later."
    assert locked.headers["Retry-After"] == str(body["retryAfter"])
    assert 1 <= body["retryAfter"] <= 2
    assert handshake_status(server, f"/{uuid.uuid4()}/ws") == 429
    time.sleep(2.2)
    assert get(server, wrong[0]).status_code == 302


def test_the_right_token_is_never_locked_out(make_server):
    server = make_server("--auth-fail-limit", "2", "--no-rate-limit")
    for _ in range(5):
        get(server, f"/{uuid.uuid4()}/")
    assert get(server, f"/{uuid.uuid4()}/").status_code == 429
    assert get(server, f"/{server.token}/api/sessions").status_code == 200
    assert get(server, f"/{server.token}/").status_code == 200
    assert handshake_status(server) == 101
    assert get(server, "/health").status_code == 200


def test_defaults_lock_out_after_ten_wrong_tokens_for_five_minutes(make_server):
    server = make_server("--no-rate-limit")
    attempts = [f"/{uuid.uuid4()}/api/sessions" for _ in range(10)]
    assert [get(server, path).status_code for path in attempts] == [302] * 10
    locked = get(server, f"/{uuid.uuid4()}/api/sessions")
    assert locked.status_code == 429
    assert 299 <= int(locked.headers["Retry-After"]) <= 300
    server.stop()
    log = server.log_text
    assert log.count(LOCKOUT_LINE) == 1, log  # once per lockout, not per refused request
    assert "127.0.0.1 sent 10 wrong-token requests within 60 s" in log
    for path in attempts:
        assert path.split("/")[1] not in log  # never the attempted token


def test_health_is_not_counted_as_a_wrong_token(make_server):
    server = make_server("--auth-fail-limit", "2", "--no-rate-limit")
    for _ in range(5):
        assert get(server, "/health").status_code == 200
    assert get(server, "/nope").status_code == 302
    assert get(server, "/nope").status_code == 302
    assert get(server, "/nope").status_code == 429


def test_wrong_tokens_spread_beyond_the_window_do_not_lock_out():
    now = [0.0]
    throttle = FailedTokenThrottle(limit=3, window_s=10, lockout_s=60, clock=lambda: now[0])
    for _ in range(10):
        assert throttle.count_failure("10.0.0.1") is False
        now[0] += 6
    assert throttle.retry_after("10.0.0.1") is None
    assert [throttle.count_failure("10.0.0.2") for _ in range(3)] == [False, False, True]
    assert throttle.retry_after("10.0.0.2") == 60
    assert throttle.count_failure("10.0.0.2") is False  # still locked: logged only once
    now[0] += 60
    assert throttle.retry_after("10.0.0.2") is None


def test_the_throttle_forgets_the_least_recently_seen_addresses_first():
    throttle = FailedTokenThrottle(limit=2, window_s=60, lockout_s=60, max_addresses=3,
                                   clock=lambda: 0.0)
    assert [throttle.count_failure("a") for _ in range(2)] == [False, True]
    assert throttle.retry_after("a") == 60
    for address in ("b", "c", "d"):  # one address too many: "a" goes, lockout and all
        assert throttle.count_failure(address) is False
    assert throttle.retry_after("a") is None
    assert throttle.count_failure("b") is True  # the others are still counted


# -- the view-only token --------------------------------------------------------------------

@pytest.fixture
def watched(make_server, project):
    """A server with a view-only token (from the environment), one terminal session that has
    run a command, and the viewer's token."""
    viewer = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={"MAESTRO_VIEWER_TOKEN": viewer})
    session = server.api("POST", "sessions", json={
        "name": "build", "cwd": str(project), "toolType": "terminal"}).json()["session"]
    server.api("POST", f"session/{session['id']}/send", json={"command": "echo watched-$((6*7))"})
    wait_for(lambda: server.api("GET", f"history?sessionId={session['id']}").json()["count"])
    return SimpleNamespace(server=server, viewer=viewer, session=session,
                           tab=session["aiTabs"][0]["id"])


def as_viewer(watched, method: str, path: str, **kwargs) -> requests.Response:
    url = f"{watched.server.base}/{watched.viewer}/{path}"
    return requests.request(method, url, allow_redirects=False, timeout=30, **kwargs)


def test_a_viewer_can_watch_everything(watched):
    sid = watched.session["id"]
    for path in ("api/sessions", f"api/session/{sid}", f"api/session/{sid}/logs?kind=shell",
                 "api/history", "api/theme", "api/themes", "api/commands", "api/agents",
                 "api/openapi.json",
                 "", f"session/{sid}", "static/js/app.js", "manifest.json", "sw.js"):
        assert as_viewer(watched, "GET", path).status_code == 200, path
    assert as_viewer(watched, "GET", "api/whoami").json()["role"] == "viewer"
    assert watched.server.api("GET", "whoami").json()["role"] == "owner"
    logs = as_viewer(watched, "GET", f"api/session/{sid}/logs?kind=shell").json()
    assert any("watched-42" in entry["text"] for entry in logs["entries"])

    client = LiveClient(SimpleNamespace(port=watched.server.port, token=watched.viewer),
                        session_id=sid)
    try:
        assert [s["id"] for s in client.init["sessions"]] == [sid]
        listed = client.request({"type": "get_sessions"}, "sessions_list")
        assert [s["id"] for s in listed["sessions"]] == [sid]
        assert client.request({"type": "subscribe", "sessionId": sid}, "subscribed")[
            "sessionId"] == sid
        watched.server.api("POST", f"session/{sid}/send", json={"command": "echo live-$((2+3))"})
        client.wait_for(lambda m: m["type"] == "session:output"
                        and "live-5" in m["entry"]["text"])
    finally:
        client.close()


CHANGES = [
    ("POST", "api/sessions", {"name": "x", "cwd": "/tmp", "toolType": "terminal"}),
    ("PATCH", "api/session/{sid}", {"name": "renamed"}),
    ("DELETE", "api/session/{sid}", None),
    ("POST", "api/session/{sid}/send", {"command": "touch owned"}),
    ("POST", "api/session/{sid}/interrupt", None),
    ("POST", "api/session/{sid}/keys", {"keys": ["C-c"]}),
    ("POST", "api/session/{sid}/offline", None),
    ("POST", "api/session/{sid}/live", None),
    ("POST", "api/session/{sid}/tabs", {"name": "mine"}),
    ("PATCH", "api/session/{sid}/tabs/{tab}", {"starred": True}),
    ("DELETE", "api/session/{sid}/tabs/{tab}", None),
    ("POST", "api/session/{sid}/tabs/{tab}/select", None),
    ("PUT", "api/theme", {"id": "nord"}),
    ("POST", "api/nothing-here", None),
]
SOCKET_ACTIONS = [
    {"type": "send_command", "command": "touch owned"},
    {"type": "interrupt"},
    {"type": "switch_mode", "mode": "ai"},
    {"type": "select_tab", "tabId": "{tab}"},
    {"type": "new_tab", "name": "mine"},
    {"type": "close_tab", "tabId": "{tab}"},
    {"type": "rename_tab", "tabId": "{tab}", "name": "mine"},
]


def snapshot(watched) -> str:
    """Everything an action could change, as the owner sees it."""
    server, sid = watched.server, watched.session["id"]
    session = server.api("GET", f"session/{sid}").json()["session"]
    for volatile in ("timestamp", "lastOutputAt", "state"):
        session.pop(volatile, None)
    return json.dumps([server.api("GET", "sessions").json()["count"], session,
                       server.api("GET", "theme").json()["theme"]["id"],
                       server.api("GET", "history").json()["count"]], sort_keys=True)


def test_every_viewer_action_is_refused_and_changes_nothing(watched, project):
    sid, tab = watched.session["id"], watched.tab
    before = snapshot(watched)
    for method, path, body in CHANGES:
        response = as_viewer(watched, method, path.format(sid=sid, tab=tab), json=body)
        assert_json_error(response, 403, READ_ONLY)

    client = LiveClient(SimpleNamespace(port=watched.server.port, token=watched.viewer))
    try:
        for number, action in enumerate(SOCKET_ACTIONS):
            message = {**{key: value.format(tab=tab) if isinstance(value, str) else value
                          for key, value in action.items()}, "sessionId": sid,
                       "requestId": number}
            reply = client.request(message, "error")
            assert reply["code"] == "forbidden", reply
            assert READ_ONLY in reply["message"]
            assert reply["requestType"] == action["type"] and reply["requestId"] == number
    finally:
        client.close()
    time.sleep(0.5)  # anything that slipped through would have run by now
    assert snapshot(watched) == before
    assert not (project / "owned").exists()


def test_enable_viewer_keeps_its_token_with_persistent_token(make_server, tmp_path):
    data = tmp_path / "kept"
    first = make_server("--enable-viewer", "--persistent-token", data_dir=data)
    path = data / "viewer-token"
    viewer = path.read_text().strip()
    assert uuid.UUID(viewer).version == 4 and viewer != first.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert get(first, f"/{viewer}/api/whoami").json()["role"] == "viewer"
    first.stop()
    again = make_server("--enable-viewer", "--persistent-token", data_dir=data)
    assert path.read_text().strip() == viewer
    assert get(again, f"/{viewer}/api/whoami").json()["role"] == "viewer"
    again.stop()
    rotated = make_server("--enable-viewer", "--rotate-token", data_dir=data)
    assert path.read_text().strip() not in (viewer, rotated.token)
    assert get(rotated, f"/{viewer}/api/whoami").status_code == 302
    rotated.stop()
    fresh = make_server("--enable-viewer", data_dir=tmp_path / "fresh")
    assert not (tmp_path / "fresh" / "viewer-token").exists()
    assert fresh.token


def test_the_banner_prints_the_viewers_own_url_and_qr_code():
    owner, viewer = str(uuid.uuid4()), str(uuid.uuid4())
    out = io.StringIO()
    print_banner("192.0.2.10", 8080, owner, out=out, viewer_token=viewer)
    text = out.getvalue()
    head, _, tail = text.partition("View only (can watch, cannot act):")
    assert f"Local:   http://192.0.2.10:8080/{owner}/" in head and viewer not in head
    assert f"Local:   http://192.0.2.10:8080/{viewer}/" in tail and owner not in tail
    assert "Scan to watch from another device:" in tail
    assert sum(tail.count(block) for block in "\u2588\u2580\u2584") > 100  # its own QR code
    alone = io.StringIO()
    print_banner("192.0.2.10", 8080, owner, out=alone)
    assert "View only" not in alone.getvalue()


def test_a_viewer_cannot_use_up_the_owners_quotas_or_stop(make_server, project):
    viewer = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--key-rate", "2",
                         "--rate-limit-post", "4", env={"MAESTRO_VIEWER_TOKEN": viewer})
    sid = server.api("POST", "sessions", json={
        "name": "busy", "cwd": str(project), "toolType": "terminal"}).json()["session"]["id"]
    wait_for(lambda: server.api("GET", f"session/{sid}").json()["session"]["state"] == "idle")
    assert server.api("POST", f"session/{sid}/send", json={"command": "sleep 30"}).ok
    watcher = LiveClient(SimpleNamespace(port=server.port, token=viewer))
    for _ in range(20):  # forbidden, and spent from the viewer's own budgets
        watcher.send({"type": "interrupt", "sessionId": sid})
        requests.post(f"{server.base}/{viewer}/api/session/{sid}/offline", timeout=10)
    watcher.close()
    stopped = server.api("POST", f"session/{sid}/interrupt")
    assert stopped.status_code == 200 and stopped.json()["wasRunning"] is True
    assert server.api("PATCH", f"session/{sid}", json={"name": "still mine"}).status_code == 200


def test_whoami_names_each_token_by_an_id_that_reveals_neither_token_nor_cookie(watched):
    owner = watched.server.api("GET", "whoami").json()
    viewer = as_viewer(watched, "GET", "api/whoami").json()
    assert owner["role"] == "owner" and viewer["role"] == "viewer"
    assert re.fullmatch(r"[0-9a-f]{32}", owner["cacheId"]), owner
    assert owner["cacheId"] != viewer["cacheId"]  # a view-only link keeps apart from the owner
    assert watched.server.api("GET", "whoami").json()["cacheId"] == owner["cacheId"]  # stable
    for token, cache_id in ((watched.server.token, owner["cacheId"]),
                            (watched.viewer, viewer["cacheId"])):
        assert cache_id not in token and cache_id not in cookie_value(token)
