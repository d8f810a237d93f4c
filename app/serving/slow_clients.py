"""Slow clients (slowloris): a deadline for every request, and a cap per address.

A client that opens connections and trickles header or body bytes, or leaves kept-alive
connections idle, holds a connection slot (waitress) or a thread (werkzeug) for as long as
it likes. Both launchers give a connection `timeout_s` seconds to send a whole request (or
its next one), and refuse an address more than `per_address` open HTTP connections, so one
address cannot hold the server's connections.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
import time


def refusal(status: str, message: str) -> bytes:
    """A whole HTTP/1.1 response with our JSON error body, closing the connection."""
    body = json.dumps({"error": status.split(" ", 1)[1], "message": message,
                       "timestamp": int(time.time() * 1000)}).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def too_many_connections() -> bytes:
    return refusal("429 Too Many Requests", "Too many open connections from this address")


class ConnectionGate:
    """Counts each address's open HTTP connections (WebSockets are --max-clients' business)
    and says how long a connection may take to send a whole request, or sit idle."""

    def __init__(self, per_address: int, timeout_s: float) -> None:
        self.per_address = per_address
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._open: collections.Counter[str] = collections.Counter()

    def admit(self, address: str) -> bool:
        """Count one more connection from `address`; False (and not counted) beyond the cap."""
        with self._lock:
            if self._open[address] >= self.per_address:
                return False
            self._open[address] += 1
            return True

    def release(self, address: str) -> None:
        """That connection closed (or became a WebSocket)."""
        with self._lock:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]


class HeadWatchdog:
    """One thread that cuts connections whose request head is late (for threaded servers,
    where a blocked read cannot be given a total deadline: each byte restarts a timeout)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadlines: dict[int, tuple[float, socket.socket]] = {}
        self._next_id = 0
        self._thread: threading.Thread | None = None

    def watch(self, conn: socket.socket, timeout_s: float) -> int:
        """Shut `conn` down in `timeout_s` seconds unless cancel() comes first."""
        with self._cond:
            self._next_id += 1
            self._deadlines[self._next_id] = (time.monotonic() + timeout_s, conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="head-watchdog",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
            return self._next_id

    def cancel(self, ticket: int) -> None:
        with self._cond:
            self._deadlines.pop(ticket, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                late = [ticket for ticket, (due, _) in self._deadlines.items() if due <= now]
                conns = [self._deadlines.pop(ticket)[1] for ticket in late]
                upcoming = min((due for due, _ in self._deadlines.values()), default=None)
                if not conns:
                    self._cond.wait(None if upcoming is None else upcoming - now)
                    continue
            for conn in conns:  # a closed socket object raises; it never reaches a reused fd
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
