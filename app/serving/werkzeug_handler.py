"""run.py's request handler: werkzeug's, with a deadline and a per-address cap for request
heads (see slow_heads.py), and no access log or version of its own; and its TLS set-up."""

from __future__ import annotations

import contextlib
import ssl

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

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
                # Bounded: over TLS this send first waits for the client's handshake.
                self.connection.settimeout(gate.timeout_s)
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


def serve_tls(server: BaseWSGIServer, context: ssl.SSLContext) -> None:
    """Make `server` serve HTTPS (and WSS) through `context`.

    werkzeug's own ssl_context would do each TLS handshake inside accept(), on the one thread
    that accepts every connection: a client that never finishes its handshake would stop
    the server. Here the handshake happens on the connection's first read, in its own
    thread and within the request head's deadline.
    """
    server.socket = context.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    server.ssl_context = context  # wsgi.url_scheme "https"; TLS errors logged, not raised
