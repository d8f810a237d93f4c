"""run.py's request handler: werkzeug's, with a deadline and a per-address cap for request
heads (see slow_heads.py), and no access log or version of its own."""

from __future__ import annotations

import contextlib

from werkzeug.serving import WSGIRequestHandler

from . import SERVER_NAME
from .slow_heads import HeadGate, HeadWatchdog, too_many_heads


def request_handler(gate: HeadGate) -> type[WSGIRequestHandler]:
    """A handler class bound to `gate` (one watchdog thread serves all its connections)."""
    watchdog = HeadWatchdog()

    class MaestroRequestHandler(WSGIRequestHandler):
        server_version = SERVER_NAME
        sys_version = ""
        _head: tuple[int, str] | None = None  # (watchdog ticket, address) while it arrives

        def handle_one_request(self) -> None:
            address = self.client_address[0]
            if not gate.admit(address):
                with contextlib.suppress(OSError):
                    self.connection.sendall(too_many_heads())
                self.close_connection = True
                return
            self._head = (watchdog.watch(self.connection, gate.timeout_s), address)
            try:
                super().handle_one_request()
            finally:
                self._end_head()

        def parse_request(self) -> bool:
            parsed = super().parse_request()  # reads the headers
            self._end_head()
            return parsed

        def _end_head(self) -> None:
            if self._head is not None:
                ticket, address = self._head
                self._head = None
                watchdog.cancel(ticket)
                gate.release(address)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """The token guard writes the (redacted) access log; werkzeug's would leak it."""

        def version_string(self) -> str:
            return SERVER_NAME

    return MaestroRequestHandler
