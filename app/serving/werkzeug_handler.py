"""run.py's request handler: werkzeug's, with a deadline and a per-address cap for requests
(see slow_clients.py), and no access log or version of its own; and its TLS set-up."""

from __future__ import annotations

import contextlib
import http
import io
import logging
import socket
import ssl
import weakref
from email.message import Message
from typing import BinaryIO, ClassVar

from werkzeug.serving import BaseWSGIServer, DechunkedInput, WSGIRequestHandler

from . import DETACH_KEY, SERVER_NAME
from .plain_http import answer_plain_http, is_plain_http
from .slow_clients import ConnectionGate, HeadWatchdog, refusal, too_many_connections

logger = logging.getLogger(__name__)
ERROR_MESSAGE_CAP = 200  # characters of http.server's message kept (it may quote the request)
WRITE_PIECE_BYTES = 64 * 1024  # a response goes out in pieces, each within the deadline


class PacedWriter(io.RawIOBase):
    """The connection's output, a piece at a time: with the socket's timeout, each piece
    must go out in time. A client that stops reading its responses is cut (its thread and
    its address's slot come back), while a slow but steady one still gets any size.
    (One sendall of a whole response would give a large one the same total deadline.)"""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        for start in range(0, len(view), WRITE_PIECE_BYTES):
            self._sock.sendall(view[start:start + WRITE_PIECE_BYTES])
        return len(view)


class DrainReader(io.RawIOBase):
    """The input werkzeug drains after answering (so that a client sending a refused body
    sees the 413, not a reset), one receive per read: its read(10 MB) would wait for 10 MB
    or EOF, so a client that sent more than its request and went quiet, or dribbles, held
    the thread for ever. A read at a time, werkzeug's loop stops at the first 10 ms pause
    or after 1,000 reads."""

    def __init__(self, wire: io.BufferedIOBase) -> None:
        self._wire = wire

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._wire.read1(WRITE_PIECE_BYTES if size < 0 else min(size, WRITE_PIECE_BYTES))


class Discard(io.RawIOBase):
    """The output of a connection the app detached: werkzeug's own response after a
    WebSocket (flask-sock answers 200 once the route returns) must not reach it."""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        return len(data)


def request_handler(gate: ConnectionGate, max_body_bytes: int) -> type[WSGIRequestHandler]:
    """A handler class bound to `gate` (one watchdog thread serves all its connections);
    bodies up to `max_body_bytes` are read before the app runs, within the deadline."""
    watchdog = HeadWatchdog()

    class MaestroRequestHandler(WSGIRequestHandler):
        # The WebSocket connections the app keeps after their request (DETACH_KEY): the
        # server must neither shut them down nor close them (keep_detached()).
        detached: ClassVar[weakref.WeakSet[socket.socket]] = weakref.WeakSet()
        server_version = SERVER_NAME
        sys_version = ""
        # Every read and every piece written must progress within it (the watchdog gives
        # the whole request head and body the same deadline); WebSockets have none.
        timeout = gate.timeout_s
        _counted: str | None = None  # the address, while this HTTP connection is counted
        _ticket: int | None = None  # the watchdog's, while a request head is awaited
        _body: bytes | None = None  # the request's body, read ahead of the app
        _wire: io.BufferedIOBase | None = None  # the connection's input, behind a DrainReader

        def setup(self) -> None:
            super().setup()  # applies `timeout` to the connection
            self.wfile = PacedWriter(self.connection)

        def handle(self) -> None:
            """The connection: counted against its address's share while it is HTTP."""
            address = self.client_address[0]
            if not gate.admit(address):
                # Bounded by `timeout`: over TLS this send first waits for the handshake.
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
                self.connection.settimeout(None)  # pings, not a deadline, find dead peers
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
            if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
                self._wire, self.rfile = self.rfile, DrainReader(self.rfile)
            else:
                environ[DETACH_KEY] = self._detach
            return environ

        def _detach(self) -> None:
            """The app keeps this WebSocket's connection once its request returns (its
            loop closes it): this thread neither writes to it nor reads from it any more
            (werkzeug drains the input after a response: the client's next frames), and
            is free."""
            self.wfile = Discard()
            self._wire, self.rfile = self.rfile, io.BytesIO()  # finish() closes the wire
            self.close_connection = True
            self.detached.add(self.connection)

        def finish(self) -> None:
            super().finish()
            if self._wire is not None:
                self._wire.close()  # else the socket's descriptor outlives its close()
                self._wire = None

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


def keep_detached(server: BaseWSGIServer, handler: type[WSGIRequestHandler]) -> None:
    """Make `server` leave the connections the app detached open (see DETACH_KEY)."""
    shutdown_request = server.shutdown_request
    detached = handler.detached  # type: ignore[attr-defined]

    def shutdown_unless_detached(request: socket.socket) -> None:
        if request in detached:
            detached.discard(request)  # the app's WebSocket loop closes it
        else:
            shutdown_request(request)

    server.shutdown_request = shutdown_unless_detached  # type: ignore[method-assign]


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
