"""run.py's request handler: werkzeug's, with a deadline and a per-address cap for request
heads (see slow_clients.py), and no access log or version of its own; and its TLS set-up."""

from __future__ import annotations

import contextlib
import ssl

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

from . import SERVER_NAME
from .plain_http import answer_plain_http, is_plain_http
from .slow_clients import ConnectionGate, HeadWatchdog, too_many_connections


def request_handler(gate: ConnectionGate) -> type[WSGIRequestHandler]:
    """A handler class bound to `gate` (one watchdog thread serves all its connections)."""
    watchdog = HeadWatchdog()

    class MaestroRequestHandler(WSGIRequestHandler):
        server_version = SERVER_NAME
        sys_version = ""
        _counted: str | None = None  # the address, while this HTTP connection is counted
        _ticket: int | None = None  # the watchdog's, while a request head is awaited

        def handle(self) -> None:
            """The connection: counted against its address's share while it is HTTP."""
            address = self.client_address[0]
            if not gate.admit(address):
                # Bounded: over TLS this send first waits for the client's handshake.
                self.connection.settimeout(gate.timeout_s)
                with contextlib.suppress(OSError):
                    self.connection.sendall(too_many_connections())
                return
            self._counted = address
            try:
                super().handle()
            finally:
                self._uncount()

        def handle_one_request(self) -> None:
            # The next request (after an idle keep-alive wait, too) must arrive in time.
            self._ticket = watchdog.watch(self.connection, gate.timeout_s)
            try:
                super().handle_one_request()
            except ssl.SSLError as error:  # the TLS handshake happens on the first read
                if not is_plain_http(error):
                    raise
                answer_plain_http(self.connection)
                self.close_connection = True
            finally:
                self._end_head()

        def parse_request(self) -> bool:
            parsed = super().parse_request()  # reads the headers
            self._end_head()
            if parsed and self.headers.get("Upgrade", "").lower() == "websocket":
                self._uncount()  # --max-clients counts it from now on
            return parsed

        def _end_head(self) -> None:
            if self._ticket is not None:
                watchdog.cancel(self._ticket)
                self._ticket = None

        def _uncount(self) -> None:
            if self._counted is not None:
                gate.release(self._counted)
                self._counted = None

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
