"""A small phone-like WebSocket client for the tests."""

from __future__ import annotations

import json
import time
from typing import Any

import websocket


class ServerClosed(ConnectionError):
    """The server closed the socket; `code` is its close code (None without one)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"closed by the server with code {code}")
        self.code = code


class LiveClient:
    """Connects to /<token>/ws, keeps every message, and waits for the ones a test expects."""

    def __init__(self, server, session_id: str | None = None, since: int | None = None,
                 timeout: float = 10, sockopt: tuple = (), sslopt: dict | None = None,
                 url: str | None = None, host: str | None = None,
                 origin: str | None = None, validate_utf8: bool = True) -> None:
        """`url`, `host` and `origin`: a reverse proxy's address for the socket, the Host
        it is reached as and the Origin of the page that opens it. `validate_utf8=False`
        skips websocket-client's pure-Python UTF-8 check of every text frame (benches: it
        costs more CPU per MB than the server, where a browser checks in native code)."""
        query = []
        if session_id:
            query.append(f"sessionId={session_id}")
        if since is not None:
            query.append(f"since={since}")
        scheme = "wss" if getattr(server, "scheme", "http") == "https" else "ws"
        url = url or f"{scheme}://127.0.0.1:{server.port}/{server.token}/ws"
        if query:
            url += "?" + "&".join(query)
        self.ws = websocket.create_connection(url, timeout=timeout, sockopt=sockopt,
                                              sslopt=sslopt, host=host,
                                              origin=origin,
                                              skip_utf8_validation=not validate_utf8)
        self.messages: list[dict[str, Any]] = []
        self._cursor = 0  # messages before it were already matched or skipped by wait_for
        self.init = self.next()
        self._cursor = 1
        assert self.init["type"] == "init", self.init

    def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next JSON message; ServerClosed when a close frame or the end comes instead."""
        self.ws.settimeout(timeout)
        while True:
            try:
                opcode, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketConnectionClosedException:
                raise ServerClosed(None) from None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ServerClosed(int.from_bytes(data[:2], "big") if len(data) >= 2 else None)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                break
        message = json.loads(data)
        self.messages.append(message)
        return message

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def request(self, message: dict[str, Any], reply_type: str, timeout: float = 15) -> dict:
        """Send a message and return the first reply of `reply_type` (events are kept)."""
        self.send(message)
        return self.wait_for(lambda m: m["type"] == reply_type, timeout)

    def wait_for(self, predicate, timeout: float = 15) -> dict[str, Any]:
        """The first message after the last match that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.messages):
                message = self.messages[self._cursor]
                self._cursor += 1
                if predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching message; got " + json.dumps(
                    [m.get("type") for m in self.messages][-30:]))
            self.next(remaining)

    def wait_until(self, condition, timeout: float = 15) -> None:
        """Read until `condition(all messages so far)` holds."""
        deadline = time.monotonic() + timeout
        while not condition(self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("condition not met; got " + json.dumps(
                    [m.get("type") for m in self.messages][-30:]))
            self.next(remaining)

    def events(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages[1:] if "seq" in m and (not types or m["type"] in types)]

    def close(self) -> None:
        self.ws.close()
