"""What both launchers show a user at start: the banner, start-up errors, headers, logs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import uuid

import pytest
import requests

from app.launcher import print_banner
from tests.conftest import ROOT, wait_for

SCRIPTS = ["run.py", "wsgi.py"]


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("MAESTRO_")}


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_busy_port_is_one_line_and_exit_2_and_starts_no_shell(tmp_path, script, project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(ROOT / script), "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(tmp_path / "d")],
            capture_output=True, text=True, timeout=60, env=_clean_env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"maestro-web: error: cannot listen on 127.0.0.1:{port}: already in use"]


def test_a_loopback_server_prints_no_network_url_or_qr_code():
    token = str(uuid.uuid4())
    out = io.StringIO()
    print_banner("127.0.0.1", 8080, token, out=out)
    text = out.getvalue()
    assert f"Local:   http://127.0.0.1:8080/{token}/" in text
    assert "Network: none (listening on 127.0.0.1 only" in text
    assert text.count(token) == 1 and "\u2588" not in text and "Scan" not in text


def test_banner_under_a_base_path_behind_a_proxy_prints_its_public_url_with_a_qr_code():
    token = str(uuid.uuid4())
    out = io.StringIO()
    print_banner("127.0.0.1", 8080, token, out=out, base_path="/maestro",
                 public_url="https://example.com/maestro", public_label="Public")
    text = out.getvalue()
    assert f"Local:   http://127.0.0.1:8080/maestro/{token}/" in text
    assert f"Public:  https://example.com/maestro/{token}/" in text
    assert "Scan it from anywhere:" in text and "\u2588" in text


def test_help_shows_list_defaults_as_the_flag_takes_them():
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--help"],
                            capture_output=True, text=True, timeout=60, env=_clean_env())
    assert "['*']" not in result.stdout
    assert "(default: *)" in " ".join(result.stdout.split())


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_server_header_names_no_framework_or_python_version(make_server, script):
    server = make_server(script=script)
    for response in (requests.get(f"{server.base}/health", timeout=10),
                     server.api("GET", "sessions")):
        assert response.headers["Server"] == "maestro-web"


def test_the_uis_static_files_are_not_logged_at_info(make_server):
    server = make_server("--log-level", "INFO")
    assert requests.get(server.url("static/js/app.js"), timeout=10).status_code == 200
    assert server.api("GET", "sessions").status_code == 200
    wait_for(lambda: '"GET /<redacted>/api/sessions"' in server.log_text)
    assert "static/js/app.js" not in server.log_text


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send `request` as it is; everything the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        with contextlib.suppress(OSError):  # it may answer (and close) before all is sent
            conn.sendall(request)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                answer += chunk
    return answer


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n", 431),
], ids=["malformed-request-line", "headers-too-large"])
def test_malformed_requests_get_a_short_json_error_not_an_html_page(make_server, script,
                                                                   request_bytes, status):
    server = make_server("--no-rate-limit", script=script)
    answer = _raw_exchange(server.port, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) or head.startswith(
        f"HTTP/1.0 {status} ".encode()), answer[:200]
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert set(error) == {"error", "message", "timestamp"} and error["message"]
    assert b"<html" not in answer.lower()
    assert server.api("GET", "sessions").status_code == 200  # and it still serves
