"""The token guard: redirects without the token, /health open, the token never logged."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for

REDIRECT = "https://runmaestro.ai"
ARGV_WARNING = "--token on the command line is visible to other local users"


@pytest.mark.parametrize("path", [
    "/", "/api", "/api/sessions", "/ws", "/static/app.js", "/a/b/c/d/e",
    "/{wrong}/", "/{wrong}/api/sessions", "/{wrong}/api/session/x/send",
    "/{upper}/api/sessions", "/{token}x/api/sessions", "/{prefix}/api/sessions",
])
def test_requests_without_the_token_are_redirected(server, path):
    path = path.format(wrong=uuid.uuid4(), upper=server.token.upper(),
                       token=server.token, prefix=server.token[:-1])
    for method in ("GET", "POST", "DELETE"):
        response = requests.request(method, server.base + path, allow_redirects=False,
                                    timeout=10)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"] == REDIRECT
        assert "session" not in response.text.lower()


def test_websocket_handshake_without_the_token_is_redirected(server):
    for path in ("/ws", f"/{uuid.uuid4()}/ws", f"/{uuid.uuid4()}/ws?sessionId=x"):
        head = raw_handshake(server.port, path)
        assert head.startswith("HTTP/1.1 302"), head
        assert f"Location: {REDIRECT}" in head
    assert raw_handshake(server.port, f"/{server.token}/ws").startswith("HTTP/1.1 101")


def raw_handshake(port: int, path: str, headers: dict[str, str] | None = None) -> str:
    """Send a WebSocket upgrade request by hand (`headers` add to, or replace, Host and the
    handshake's own); return the response head."""
    fields = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
              **(headers or {})}
    lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
    return head.decode("latin-1")


def test_health_is_open_and_says_ok(server):
    response = requests.get(server.base + "/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and isinstance(body["timestamp"], int)


def test_responses_carry_no_referrer_policy(server):
    response = server.api("GET", "sessions")
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_token_root_without_slash_redirects_under_the_token(server):
    response = requests.get(f"{server.base}/{server.token}", allow_redirects=False, timeout=10)
    assert response.status_code == 308
    assert response.headers["Location"] == f"/{server.token}/"
    with_query = requests.get(f"{server.base}/{server.token}?theme=nord", allow_redirects=False,
                              timeout=10)
    assert with_query.headers["Location"] == f"/{server.token}/?theme=nord"
    assert with_query.headers["Referrer-Policy"] == "no-referrer"


def test_custom_redirect_url_is_used(make_server):
    server = make_server("--redirect-url", "https://example.org/away", "--no-rate-limit")
    response = requests.get(server.base + "/api/sessions", allow_redirects=False, timeout=10)
    assert response.headers["Location"] == "https://example.org/away"


def test_token_never_appears_in_logs(make_server, project):
    token, viewer = str(uuid.uuid4()), str(uuid.uuid4())
    server = make_server("--token", token, "--log-level", "DEBUG", "--no-rate-limit",
                         "--auth-fail-limit", "1", env={"MAESTRO_VIEWER_TOKEN": viewer})
    server.api("GET", "sessions")
    server.api("GET", "session/nope")
    requests.get(f"{server.base}/{token}/api/theme?x={token}", timeout=10)
    requests.get(f"{server.base}/{viewer}/api/theme?x={viewer}", timeout=10)
    requests.post(f"{server.base}/{viewer}/api/sessions", json={}, timeout=10)
    requests.get(f"{server.base}/{token}/api/sessions", headers={"Host": token}, timeout=10)
    for _ in range(2):  # a lockout, and a 429
        requests.get(f"{server.base}/{viewer[:-1]}/", allow_redirects=False, timeout=10)
    forged = "x%0a2026-11-26 21:00:00,000 INFO maestro.access: 1.2.3.4 \"GET /admin\" 200"
    requests.get(f"{server.base}/nope/{forged}", allow_redirects=False, timeout=10)
    server.stop()
    logs = server.log_text
    assert "<redacted>" in logs, logs
    assert token not in logs and viewer[:-1] not in logs
    assert "\n2026-11-26 21:00:00,000 INFO" not in logs  # a URL cannot forge a log line
    assert "x\\n2026-11-26" in logs


def test_fresh_token_each_start_unless_persistent(make_server, tmp_path):
    data = tmp_path / "tokens"
    first = make_server(data_dir=data)
    first.stop()
    second = make_server(data_dir=data)
    second.stop()
    assert first.token != second.token
    assert uuid.UUID(first.token).version == 4

    kept = make_server("--persistent-token", data_dir=data)
    kept.stop()
    again = make_server("--persistent-token", data_dir=data)
    again.stop()
    assert kept.token == again.token
    rotated = make_server("--persistent-token", "--rotate-token", data_dir=data)
    rotated.stop()
    assert rotated.token != kept.token
    after = make_server("--persistent-token", data_dir=data)
    assert after.token == rotated.token
    assert requests.get(after.url("api/sessions"), timeout=10).status_code == 200


def command_line(server) -> bytes:
    """What every local user can read about the server process (what `ps` shows)."""
    return Path(f"/proc/{server.process.pid}/cmdline").read_bytes()


def assert_only_token_is_admitted(server, token: str) -> None:
    assert server.token == token
    assert requests.get(server.url("api/sessions"), timeout=10).status_code == 200
    other = requests.get(f"{server.base}/{uuid.uuid4()}/api/sessions", allow_redirects=False,
                         timeout=10)
    assert other.status_code == 302


def stopped_log(server) -> str:
    """The whole stderr of a server, once it has logged its last line."""
    server.stop()
    return wait_for(lambda: "stopped:" in server.log_text and server.log_text)


def test_token_from_the_environment_stays_out_of_the_command_line(make_server):
    token = str(uuid.uuid4())
    server = make_server("--no-rate-limit", env={"MAESTRO_TOKEN": token})
    assert_only_token_is_admitted(server, token)
    assert token.encode() not in command_line(server)
    assert ARGV_WARNING not in stopped_log(server)


def test_token_from_a_file_stays_out_of_the_command_line(make_server, tmp_path):
    token = str(uuid.uuid4())
    token_file = tmp_path / "secret"
    token_file.write_text(token + "\n")
    server = make_server("--no-rate-limit", "--token-file", str(token_file))
    assert_only_token_is_admitted(server, token)
    assert token.encode() not in command_line(server)
    assert ARGV_WARNING not in stopped_log(server)


def test_token_on_the_command_line_is_warned_about(make_server):
    server = make_server("--no-rate-limit", f"--token={uuid.uuid4()}")
    wait_for(lambda: ARGV_WARNING in server.log_text)
