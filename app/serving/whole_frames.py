"""One writer at a time per WebSocket, and every frame written whole.

simple_websocket writes from two threads: ours (messages, close) and its own reader thread
(pings, pongs, close replies), each with a bare ``sock.send()``. A blocking send() that
waits for buffer space lets the other thread's bytes in between (a ping inside a text
frame), and a short write drops the frame's tail. Handing simple_websocket a
WholeFrameSocket, whose send() is sendall() under one lock, closes both gaps.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

# The WSGI environ keys simple_websocket takes the connection from (werkzeug, our waitress
# adapter).
SOCKET_ENVIRON_KEYS = ("werkzeug.socket", "gunicorn.socket")


class WholeFrameSocket:
    """Wraps a connected blocking socket; everything but send() goes to it unchanged."""

    writes_whole_frames = True

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()

    def send(self, data: bytes, flags: int = 0) -> int:
        with self._send_lock:
            try:
                self._sock.sendall(data, flags)
            except ConnectionError as exc:
                # simple_websocket's close() tolerates only BrokenPipeError; a reset
                # would end its reader thread before it closes the socket.
                raise BrokenPipeError(*exc.args) from exc
        return len(data)

    @property
    def tls(self) -> bool:
        return isinstance(self._sock, ssl.SSLSocket)

    def raw_send(self, data: bytes) -> int:
        """One plain send() (non-blocking for the WebSocket loop, the only writer then)."""
        return self._sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def serialize_websocket_writes(environ: dict[str, Any]) -> None:
    """Swap the server's socket in `environ` for a WholeFrameSocket, unless it already
    writes whole frames (the waitress adapter's own socket, whose send() must see every
    write: it tells the adapter that the 101 went out)."""
    for key in SOCKET_ENVIRON_KEYS:
        sock = environ.get(key)
        if sock is not None and not getattr(sock, "writes_whole_frames", False):
            environ[key] = WholeFrameSocket(sock)
