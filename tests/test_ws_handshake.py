"""A malformed WebSocket handshake gets a JSON 400 (426 for another version), never a 500,
on both launchers."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
import requests
import websocket

from tests.wsclient import LiveClient

GOOD_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.fixture(params=["run.py", "wsgi.py"])
def ws_server(request, make_server):
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit", script=request.param)


def handshake(server, **headers: str | None) -> tuple[int, dict[str, str], dict]:
    """Send an upgrade request with `headers` (None drops one); return status, headers, JSON."""
    fields = {"Host": f"127.0.0.1:{server.port}", "Upgrade": "websocket",
              "Connection": "Upgrade", "Sec-WebSocket-Key": GOOD_KEY,
              "Sec-WebSocket-Version": "13"}
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    lines = [f"GET /{server.token}/ws HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            assert chunk, f"connection closed after {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        response_headers = {name.lower(): value.strip() for name, _, value in
                            (line.partition(":") for line in header_lines)}
        while len(body) < int(response_headers.get("content-length", 0)):
            chunk = conn.recv(65536)
            assert chunk, "connection closed inside the body"
            body += chunk
    return int(status_line.split()[1]), response_headers, json.loads(body)


@pytest.mark.parametrize("headers", [
    {"Sec_WebSocket_Key": None},
    {"Sec_WebSocket_Key": "too-short"},
    {"Sec_WebSocket_Version": None},
], ids=["no-key", "bad-key", "no-version"])
def test_a_handshake_missing_its_headers_gets_400(ws_server, headers):
    status, _, body = handshake(ws_server, **headers)
    assert status == 400
    assert body["error"] == "Bad Request" and "Sec-WebSocket" in body["message"]
    assert isinstance(body["timestamp"], int)
    assert "Traceback" not in ws_server.log_text


def test_another_websocket_version_gets_426_naming_13(ws_server):
    status, headers, body = handshake(ws_server, Sec_WebSocket_Version="8")
    assert status == 426 and headers["sec-websocket-version"] == "13"
    assert body["error"] == "Upgrade Required" and "'8'" in body["message"]
    assert "Traceback" not in ws_server.log_text


def test_a_plain_get_of_the_socket_url_gets_400(ws_server):
    response = requests.get(ws_server.url("ws"), timeout=10, allow_redirects=False)
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"
    assert LiveClient(ws_server).request({"type": "ping"}, "pong")  # a good one still works
    assert "Traceback" not in ws_server.log_text


@pytest.mark.parametrize("query", ["sessionId=nope", "sessionId=%00", "since=1e400"])
def test_a_socket_refused_right_after_the_handshake_closes_cleanly(ws_server, query):
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{ws_server.port}/{ws_server.token}/ws?{query}", timeout=10)
    assert json.loads(ws.recv())["type"] == "error"
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1008
    ws.close()
    assert requests.get(f"{ws_server.base}/health", timeout=10).status_code == 200
    time.sleep(0.5)  # the adapter finishes the connection after the close handshake
    assert "Traceback" not in ws_server.log_text
