"""run.py's request handler: werkzeug's, with a deadline and a per-address cap for requests
(see slow_clients.py), and no access log or version of its own; and its TLS set-up."""

from __future__ import annotations

import contextlib
import http
import io
import logging
import ssl
from email.message import Message
from typing import BinaryIO

from werkzeug.serving import BaseWSGIServer, DechunkedInput, WSGIRequestHandler

from . import SERVER_NAME
from .plain_http import answer_plain_http, is_plain_http
from .slow_clients import ConnectionGate, HeadWatchdog, refusal, too_many_connections

logger = logging.getLogger(__name__)
ERROR_MESSAGE_CAP = 200  # characters of http.server's message kept (it may quote the request)


def request_handler(gate: ConnectionGate, max_body_bytes: int) -> type[WSGIRequestHandler]:
    """A handler class bound to `gate` (one watchdog thread serves all its connections);
    bodies up to `max_body_bytes` are read before the app runs, within the deadline."""
    watchdog = HeadWatchdog()

    class MaestroRequestHandler(WSGIRequestHandler):
        server_version = SERVER_NAME
        sys_version = ""
        _counted: str | None = None  # the address, while this HTTP connection is counted
        _ticket: int | None = None  # the watchdog's, while a request head is awaited
        _body: bytes | None = None  # the request's body, read ahead of the app

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
            upgrade = parsed and self.headers.get("Upgrade", "").lower() == "websocket"
            if not parsed or upgrade:
                self._end_head()
            if upgrade:
                self._uncount()  # --max-clients counts it from now on
            return parsed

        def run_wsgi(self) -> None:
            """The body first, within the request's deadline (as waitress does): a client
            that dribbles it is cut like one that dribbles its head, and the app never
            waits on the network. A body the app would refuse (413) is left unread."""
            self._body = None
            if self._ticket is not None:
                if self.headers.get("Expect", "").lower().strip() == "100-continue":
                    self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    del self.headers["Expect"]  # sent: werkzeug must not send it again
                try:
                    self._body = read_body(self.headers, self.rfile, max_body_bytes)
                except (OSError, ValueError, EOFError):  # cut by the watchdog, or gone
                    self.close_connection = True
                    return
                finally:
                    self._end_head()
            super().run_wsgi()

        def make_environ(self) -> dict:
            environ = super().make_environ()
            if self._body is not None:
                environ["wsgi.input"] = io.BytesIO(self._body)
            return environ

        def _end_head(self) -> None:
            if self._ticket is not None:
                watchdog.cancel(self._ticket)
                self._ticket = None

        def _uncount(self) -> None:
            if self._counted is not None:
                gate.release(self._counted)
                self._counted = None

        def send_error(self, code: int, message: str | None = None,
                       explain: str | None = None) -> None:
            """http.server's own refusals (a malformed request line, 414, 431, 505), which
            come before the app runs: in the app's JSON error shape, as waitress's are,
            not its HTML page (nor a bare body for a line it took for HTTP/0.9)."""
            try:
                reason = http.HTTPStatus(code).phrase
            except ValueError:
                reason = "Error"
            logger.info("%s: refused a malformed request (%d %s)", self.client_address[0],
                        code, reason)  # not the message: it may quote a token
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.wfile.write(refusal(f"{code} {reason}",
                                         (message or reason)[:ERROR_MESSAGE_CAP]))

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """The token guard writes the (redacted) access log; werkzeug's would leak it."""

        def version_string(self) -> str:
            return SERVER_NAME

    return MaestroRequestHandler


def read_body(headers: Message, rfile: BinaryIO, limit: int) -> bytes | None:
    """The whole body of a request (a chunked one: its first `limit` + 1 bytes, enough for
    the app to refuse it), or None when it has none or declares more than `limit` bytes.

    :raise EOFError, OSError: the client sent less than it declared, or broke the chunking.
    """
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return DechunkedInput(rfile).read(limit + 1)
    declared = headers.get("Content-Length", "").strip()
    if not declared.isdigit() or not 0 < int(declared) <= limit:
        return None
    body = rfile.read(int(declared))
    if len(body) < int(declared):
        raise EOFError("the body ended early")
    return body


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
