"""Serve a Flask + flask-sock app with waitress, WebSockets included, on one port.

For an ``Upgrade: websocket`` request the channel/task subclasses below hand
flask-sock a BLOCKING ``dup()`` of the connection as ``environ["gunicorn.socket"]``
(one of the keys simple_websocket looks for), keep waitress off the connection
while the WebSocket lives, swallow flask-sock's end-of-socket ``StopIteration``
(no HTTP response may follow the 101) and free thread, fds and channel after.
Each WebSocket pins one waitress worker thread (plus simple_websocket's reader).
waitress's own refusals (413, malformed HTTP) and a connection refused for want of
file descriptors answer in the app's JSON error shape.

waitress has no TLS of its own (it expects a proxy in front). With `tls` (an SSLContext),
each accepted connection is wrapped in a non-blocking SSLSocket inside its channel: the
handshake runs on the loop as the client's bytes arrive, reads and writes that OpenSSL
cannot finish yet count as "nothing this time". A TLS session cannot be dup()'d, so a
WebSocket over TLS reads and writes through the channel's own SSLSocket (made blocking for
its life); the dup still serves for the descriptor's readiness, shutdown and close.

The module stands alone (tests load it by path, without the app package).
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask, WSGITask

from . import DETACH_KEY
from .fd_reserve import FdReserve
from .plain_http import answer_plain_http, is_plain_http
from .slow_clients import ConnectionGate, too_many_connections

log = logging.getLogger(__name__)

# HTTP connections waitress keeps open at once (beyond the WebSockets): many, as each one
# from a slow or idle client lasts at most the gate's timeout, and one address may hold at
# most its per-address share, so a few addresses cannot fill them.
HTTP_CONNECTIONS = 1000
CLOSE_GRACE = 2.0  # seconds a finished WebSocket gets to complete its close handshake
LINGER = 1.0  # seconds to wait for the peer's FIN after ours
_REASON = b"Server shutting down"
_GOING_AWAY_FRAME = bytes([0x88, 2 + len(_REASON)]) + (1001).to_bytes(2, "big") + _REASON


def _is_upgrade(headers: dict[str, str]) -> bool:
    # waitress's parser stores header names upper-cased with '-' turned into '_'
    return (headers.get("UPGRADE", "").lower() == "websocket"
            and "upgrade" in headers.get("CONNECTION", "").lower())


def _linger(conn: socket.socket, timeout: float) -> None:
    # simple_websocket's reader may stop before reading the client's close reply
    # (e.g. a handler that closes at once).  close() with unread input sends an
    # RST, which can destroy data the client has not read yet (last messages,
    # the close frame): send our FIN first and drain until the peer's (bounded).
    conn.shutdown(socket.SHUT_WR)
    poller = select.poll()  # poll(), not select(): fds may exceed FD_SETSIZE
    poller.register(conn, select.POLLIN)
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        if not poller.poll(left * 1000) or not conn.recv(4096):
            return


class _HandoverSocket(socket.socket):
    """The blocking dup() given to simple_websocket, with a few safety nets; like a
    WholeFrameSocket, its send() writes whole frames, one writer at a time."""

    writes_whole_frames = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.used = False  # first send/recv: the 101 is (about to be) on the wire
        self.closed_event = threading.Event()  # set once simple_websocket (or we) closed it
        self.detached = False  # the app keeps it after its request (DETACH_KEY)
        self._when_closed: Callable[[], None] | None = None
        # Guards writes: our 1001 close frame must never land inside a frame
        # simple_websocket is writing from another thread.
        self._io_lock = threading.Lock()
        # Guards the fd's lifetime (going_away()/abort() vs close()): never touch
        # a closed, possibly reused, fd number.
        self._state_lock = threading.Lock()

    def send(self, data: Any, flags: int = 0) -> int:
        self.used = True
        with self._io_lock:
            try:  # simple_websocket calls send() and ignores short writes
                self._send_all(data, flags)
            except ConnectionError as exc:
                # Base.close() only tolerates BrokenPipeError; a reset would kill
                # its reader thread before it closes this fd.
                raise BrokenPipeError(*exc.args) from exc
        return len(data)

    def _send_all(self, data: Any, flags: int) -> None:
        self.sendall(data, flags)

    tls = False

    def raw_send(self, data: Any) -> int:
        """One plain send(), for a single writer on a non-blocking socket (the app's
        WebSocket loop): may write part of `data`."""
        self.used = True
        return socket.socket.send(self, data)

    def _send_close_frame(self) -> None:
        # MSG_DONTWAIT: never block shutdown on a peer that stopped reading
        socket.socket.send(self, _GOING_AWAY_FRAME, socket.MSG_DONTWAIT)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.used = True
        return super().recv(bufsize, flags)

    def close(self) -> None:
        with self._state_lock:
            super().close()
            self.closed_event.set()
            when_closed, self._when_closed = self._when_closed, None
        if when_closed is not None:
            when_closed()

    def detach(self) -> None:
        """The app keeps the socket once its request returns, and closes it itself."""
        self.detached = True

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the socket is closed (at once if it is)."""
        with self._state_lock:
            if not self.closed_event.is_set():
                self._when_closed = callback
                return
        callback()

    def going_away(self) -> None:
        """Best effort 1001 close frame, then FIN; a responsive client answers
        with its close frame and the reader thread ends cleanly (else: abort())."""
        if not self._io_lock.acquire(timeout=0.2):  # a writer is stuck on a full buffer
            return
        try:
            with self._state_lock, contextlib.suppress(OSError):
                if not self.closed_event.is_set():
                    self._send_close_frame()
                    self.shutdown(socket.SHUT_WR)
        finally:
            self._io_lock.release()

    def abort(self) -> None:
        with self._state_lock, contextlib.suppress(OSError):
            if not self.closed_event.is_set():
                # shutdown() acts on the connection, not the fd: it wakes the
                # reader's recv()/select() on every dup of it.
                self.shutdown(socket.SHUT_RDWR)


class _TlsHandoverSocket(_HandoverSocket):
    """Over TLS: the bytes go through the channel's SSLSocket (`tls_conn`), blocking for
    the WebSocket's life; the dup'd descriptor serves for readiness, shutdown and close."""

    tls_conn: ssl.SSLSocket
    tls = True

    def raw_send(self, data: Any) -> int:
        self.used = True
        return self.tls_conn.send(data)

    def setblocking(self, flag: bool) -> None:
        super().setblocking(flag)
        self.tls_conn.setblocking(flag)

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Writers that call sendall() directly (WholeFrameSocket) go through TLS too, one
        at a time: concurrent writes on one TLS session would corrupt it."""
        self.used = True
        with self._io_lock:
            self.tls_conn.sendall(data, flags)

    def _send_all(self, data: Any, flags: int) -> None:  # under _io_lock already
        self.tls_conn.sendall(data, flags)

    def _send_close_frame(self) -> None:
        # Encrypted, so no MSG_DONTWAIT: sent only when the buffer has room now.
        poller = select.poll()
        poller.register(self, select.POLLOUT)
        if poller.poll(0):
            self.tls_conn.sendall(_GOING_AWAY_FRAME)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.used = True
        return self.tls_conn.recv(bufsize, flags)


def _handover_socket(conn: socket.socket) -> _HandoverSocket:
    """A blocking handle on the channel's connection `conn` for simple_websocket.

    O_NONBLOCK lives on the shared open file description, so `conn` turns blocking too:
    harmless while the loop leaves it alone, and restored after the WebSocket.
    """
    tls = isinstance(conn, ssl.SSLSocket)
    sock = (_TlsHandoverSocket if tls else _HandoverSocket)(
        conn.family, conn.type, conn.proto, fileno=socket.dup(conn.fileno()))
    if tls:
        sock.tls_conn = conn
        conn.setblocking(True)  # its own timeout decides how OpenSSL waits
    sock.setblocking(True)
    return sock


class _WSTask(WSGITask):
    ws_sock: _HandoverSocket | None = None

    def write(self, data: bytes) -> None:
        if self.ws_sock is None or not self.ws_sock.used:  # else the 101 went out:
            super().write(data)  # never put HTTP bytes after it

    def finish(self) -> None:
        if self.ws_sock is None or not self.ws_sock.used:
            super().finish()

    def execute(self) -> None:
        if not _is_upgrade(self.request.headers):
            return super().execute()
        channel: WSChannel = self.channel
        owner: WebSocketServer = channel.server.ws_owner
        channel.ws_upgrade = True  # no more request parsing on this connection, ever
        self.set_close_on_finish()
        if not owner._acquire_slot():
            return self._reject(owner)
        detached = False
        try:
            detached = self._hand_over(channel, owner)
        finally:
            if not detached:
                owner._release_slot(self.ws_sock)

    def _hand_over(self, channel: WSChannel, owner: WebSocketServer) -> bool:
        """Run the WebSocket; True when the app detached it (it is still open)."""
        # 1. Keep the asyncore loop from writing this connection (writable() False;
        #    readable() is already False since received() saw the upgrade).
        channel.ws_handover = True
        with channel.outbuf_lock:  # the loop's own flushes take this lock too
            # 2. Dup the fd and make it blocking (restored in step 6). (The original
            #    non-blocking socket must never be handed over.)
            sock = self.ws_sock = _handover_socket(channel.socket)
            # 3. A pipelined earlier response may still sit in the outbufs: drain
            #    it now (blocking) so it cannot land after the 101.
            if channel.total_outbufs_len:
                channel._flush_some()
        owner._track(sock)
        environ = self.get_environment()  # cached: the app sees this very dict
        environ["gunicorn.socket"] = sock  # simple_websocket's 'gunicorn' mode
        environ[DETACH_KEY] = sock.detach
        try:
            super().execute()  # 4. flask-sock's route runs the whole WebSocket here
        except StopIteration:
            pass  # flask-sock's end-of-socket signal in 'gunicorn' mode
        except Exception:
            if not sock.used:
                raise  # failed before the handshake: let waitress send its 500
            log.exception("WebSocket handler failed after the handshake")
        finally:
            if sock.detached:
                # The app's own loop reads and writes it and closes it after the close
                # handshake (no linger needed); this thread is free, and the connection
                # goes back to waitress (step 6) once the app closed the dup.
                sock.when_closed(lambda: _give_back(channel, owner, sock))
            else:
                self._end(channel, sock)
        return sock.detached

    @staticmethod
    def _end(channel: WSChannel, sock: _HandoverSocket) -> None:
        # 5. Give simple_websocket's reader thread time to finish the close
        #    handshake and close the dup; then force it out.
        if sock.used and not sock.closed_event.wait(CLOSE_GRACE):
            sock.abort()
            sock.closed_event.wait(1.0)
        sock.close()  # idempotent; covers a reader thread that died early
        # 6. Give the connection back: restore O_NONBLOCK for the loop, linger
        #    after a WebSocket, then let the loop write again (a fallback
        #    HTTP response, or nothing before the close).
        conn = channel.socket
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.setblocking(False)
                if sock.used:
                    _linger(conn, LINGER)
        channel.ws_handover = False
        channel.server.pull_trigger()

    def _reject(self, owner: WebSocketServer) -> None:
        message = ("Server is shutting down" if owner._stopping
                   else f"Too many WebSocket clients (limit {owner.max_clients})")
        body = json.dumps({"error": "Service Unavailable", "message": message,
                           "timestamp": int(time.time() * 1000)}).encode()
        self.status, self.content_length = "503 Service Unavailable", len(body)
        self.response_headers += [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))]
        self.complete = True  # what start_response() would have set
        self.write(body)


def _give_back(channel: WSChannel, owner: WebSocketServer, sock: _HandoverSocket) -> None:
    """A detached WebSocket's end (on the thread that closed its dup): the connection goes
    back to waitress's loop, which closes it, and its slot is free."""
    conn = channel.socket
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.setblocking(False)
    channel.ws_handover = False
    channel.server.pull_trigger()
    owner._release_slot(sock)


class _JsonErrorTask(ErrorTask):
    """waitress's own refusals (413 body too large, 400 malformed HTTP...), which it
    answers before the app runs, in the app's JSON error shape."""

    def execute(self) -> None:
        error = self.request.error
        message = ("The data value transmitted exceeds the capacity limit."
                   if error.code == 413 else error.body)
        body = json.dumps({"error": error.reason, "message": message,
                           "timestamp": int(time.time() * 1000)}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class WSChannel(HTTPChannel):
    task_class = _WSTask
    error_task_class = _JsonErrorTask
    ws_upgrade = False  # an upgrade request was parsed: never read from it again
    ws_handover = False  # the dup owns the connection: the loop must not write
    counted = False  # an HTTP connection counted by the owner's ConnectionGate
    request_since = 0.0  # when the request now arriving began (time.time(), like last_activity)
    refused = False  # too many connections from its address: answered 429, closing

    def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any,
                 map: dict | None = None) -> None:
        tls = server.ws_owner.tls
        if tls is not None:
            sock = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        super().__init__(server, sock, addr, adj, map)
        if server.ws_owner.gate.admit(self.addr[0]):
            self.counted = True
        else:
            self.refused = True
            self.write_soon(too_many_connections())
            self.close_when_flushed = True

    def handle_read(self) -> None:
        if not isinstance(self.socket, ssl.SSLSocket):
            return super().handle_read()
        try:
            data = self.socket.recv(self.adj.recv_bytes)  # all that OpenSSL decrypted
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # the handshake, or a record, is not complete yet
        except OSError as error:  # a failed handshake (plain HTTP on the TLS port), a reset
            if is_plain_http(error):
                answer_plain_http(self.socket)
            self.handle_close()
            return
        if not data:
            self.handle_close()
            return
        self.last_activity = time.time()
        self.received(data)

    def send(self, data: bytes, do_close: bool = True) -> int:
        try:
            return super().send(data, do_close)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return 0  # OpenSSL needs the peer first: retried when the loop polls again
        except ssl.SSLError:
            if do_close:
                self.handle_close()
            return 0

    def _uncount(self) -> None:
        if self.counted:
            self.counted = False
            self.server.ws_owner.gate.release(self.addr[0])

    def late(self, now: float, timeout_s: float) -> bool:
        """Has a request been arriving, or the connection waited for one, longer than
        `timeout_s`? (Not while a request is being served, nor for a WebSocket.)"""
        if self.ws_upgrade or self.requests:
            return False
        since = self.request_since if self.request is not None else self.last_activity
        return now - since > timeout_s

    def received(self, data: bytes) -> bool:
        if self.ws_upgrade or self.refused:
            return False
        if self.request is None and data:
            self.request_since = time.time()  # a request begins: its whole time counts
        result = super().received(data)
        # Decided on the loop thread before its next select(): WebSocket frames
        # must never be read (and mis-parsed as HTTP) by waitress.
        self.ws_upgrade = any(_is_upgrade(r.headers) for r in self.requests)
        if self.ws_upgrade:
            self._uncount()  # --max-clients counts it from now on
        return result

    def handle_close(self) -> None:
        self._uncount()
        super().handle_close()

    def readable(self) -> bool:
        return not self.ws_upgrade and not self.refused and super().readable()

    def writable(self) -> bool:
        return not self.ws_handover and super().writable()


class WebSocketServer:
    """A waitress server whose channels can hand connections over to flask-sock."""

    def __init__(self, wserver: Any, socket_map: dict[int, Any], max_clients: int,
                 gate: ConnectionGate, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls  # wraps each accepted connection, when set
        self._wserver = wserver  # TcpWSGIServer, or MultiSocketServer for several listens
        self._map = socket_map  # waitress's asyncore map: listeners, trigger, channels
        self._listeners = [s for s in socket_map.values() if isinstance(s, BaseWSGIServer)]
        self._fd_reserve = FdReserve()
        self.gate = gate
        for listener in self._listeners:
            listener.channel_class = WSChannel
            listener.ws_owner = self
            listener.accept = self._fd_reserve.guard(listener.accept, listener.socket)
            listener.maintenance = self._maintenance_of(listener)
        self.host: str = self._listeners[0].effective_host
        self.port: int = int(self._listeners[0].effective_port)
        self.max_clients = max_clients
        # Guards _slots, _socks, _hooks and _stopping; notified when a slot frees.
        self._cond = threading.Condition()
        self._slots = 0
        self._socks: set[_HandoverSocket] = set()
        self._hooks: list[Callable[[], None]] = []
        self._stopping = False
        self._stop = threading.Event()  # tells run()'s loop to exit
        self._loop_done = threading.Event()  # set whenever run() is not looping
        self._loop_done.set()
        self._loop_thread: threading.Thread | None = None

    def _maintenance_of(self, listener: Any) -> Callable[[float], None]:
        """waitress's periodic sweep (run by the loop), plus: close every channel whose
        request is late, or that sat idle longer than the gate's timeout."""
        sweep = listener.maintenance

        def maintenance(now: float) -> None:
            sweep(now)
            for channel in list(listener.active_channels.values()):
                if isinstance(channel, WSChannel) and channel.late(now, self.gate.timeout_s):
                    if channel.total_outbufs_len:
                        # A reply its client stopped reading: the loop acts on will_close
                        # only once the socket is writable, which it never will be again.
                        channel.handle_close()
                    else:
                        channel.will_close = True  # the loop closes it on its next pass

        return maintenance

    @property
    def active_websockets(self) -> int:
        with self._cond:
            return self._slots

    def add_shutdown_hook(self, fn: Callable[[], None]) -> None:
        with self._cond:
            self._hooks.append(fn)

    def _acquire_slot(self) -> bool:
        with self._cond:
            if self._stopping or self._slots >= self.max_clients:
                return False
            self._slots += 1
            return True

    def _track(self, sock: _HandoverSocket) -> None:
        with self._cond:
            self._socks.add(sock)

    def _release_slot(self, sock: _HandoverSocket | None) -> None:
        with self._cond:
            self._socks.discard(sock)
            self._slots -= 1
            self._cond.notify_all()

    def _wait_idle(self, seconds: float, deadline: float) -> bool:
        left = max(0.0, min(seconds, deadline - time.monotonic()))
        with self._cond:
            return self._cond.wait_for(lambda: self._slots == 0, left)

    def _each_socket(self, action: Callable[[_HandoverSocket], None]) -> None:
        with self._cond:
            socks = list(self._socks)
        for sock in socks:  # outside the lock: going_away() may wait on a writer
            action(sock)

    def run(self) -> None:
        """Serve until shutdown() (or Ctrl-C, which triggers it)."""
        adj = self._listeners[0].adj
        poll = wasyncore.poll2 if adj.asyncore_use_poll else wasyncore.poll
        self._loop_thread = threading.current_thread()
        self._loop_done.clear()
        interrupted = False
        try:
            while self._map and not self._stop.is_set():
                try:
                    poll(adj.asyncore_loop_timeout, self._map)
                except OSError:
                    if not self._stop.is_set():
                        raise  # else: fds closed under us by an in-thread shutdown()
        except (KeyboardInterrupt, SystemExit):
            interrupted = True
        finally:
            self._loop_thread = None
            self._loop_done.set()
        if interrupted:
            self.shutdown()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Close all WebSockets with 1001, stop waitress, wait for workers (bounded)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._stopping:
                return
            self._stopping = True  # new handshakes now get a 503
            hooks = list(self._hooks)
        for listener in self._listeners:
            listener.accepting = False  # the loop stops selecting the listen socket
        # 1. The app closes the WebSockets it knows with 1001 itself; their close
        #    handshakes take a round trip or two.
        for fn in hooks:
            try:
                fn()
            except Exception:
                log.exception("WebSocket shutdown hook failed")
        self._wait_idle(1.0, deadline)
        # 2. Whatever is still open: our own 1001 close frame + FIN, then abort
        #    the peers that did not answer it.
        self._each_socket(_HandoverSocket.going_away)
        if not self._wait_idle(1.0, deadline):
            self._each_socket(_HandoverSocket.abort)
            self._wait_idle(timeout, deadline)
        # 3. Stop the worker threads while the loop still runs (it flushes their
        #    output), then stop the loop and close listeners, trigger, channels.
        self._wserver.task_dispatcher.shutdown(timeout=max(0.1, deadline - time.monotonic()))
        self._stop.set()
        if self._loop_thread is not threading.current_thread():  # else: signal handler
            self._listeners[0].pull_trigger()  # wake select() now
            if not self._loop_done.wait(max(0.1, deadline - time.monotonic())):
                log.warning("waitress loop did not stop in time")
                return  # closing the map under a live loop would be unsafe
        for obj in list(self._map.values()):
            with contextlib.suppress(OSError):
                # a channel's handle_close() also releases its output buffers
                obj.handle_close() if isinstance(obj, HTTPChannel) else obj.close()
        self._map.clear()
        self._fd_reserve.close()


def create_ws_server(app: Any, *, host: str, port: int, max_clients: int = 100,
                     http_threads: int = 8, detached_websockets: bool = False,
                     gate: ConnectionGate | None = None,
                     tls: ssl.SSLContext | None = None,
                     **waitress_kwargs: Any) -> WebSocketServer:
    """Create (bind, not yet serve) a waitress server with WebSocket support.

    Worker threads = max_clients + http_threads (each WebSocket pins one), or only
    http_threads with `detached_websockets` (an app that detaches every WebSocket: its
    thread serves only the handshake),
    waitress's connection_limit (default HTTP_CONNECTIONS) is raised by max_clients, and
    the loop uses poll(), not select(): select() fails once any descriptor reaches 1024.
    `gate` bounds slow clients (default: 10 s for a request or idleness, 64 HTTP
    connections per address); waitress's sweep, run every second, enforces the deadline.
    `tls`: serve HTTPS and WSS.
    """
    gate = gate or ConnectionGate(per_address=64, timeout_s=10.0)
    waitress_kwargs.setdefault("cleanup_interval", 1)
    if "threads" in waitress_kwargs:
        raise TypeError("pass max_clients/http_threads instead of threads")
    if max_clients < 1 or http_threads < 1:
        raise ValueError("max_clients and http_threads must be >= 1")
    waitress_kwargs["connection_limit"] = (
        waitress_kwargs.get("connection_limit", HTTP_CONNECTIONS) + max_clients)
    waitress_kwargs.setdefault("asyncore_use_poll", True)
    # waitress drops every X-Forwarded-* header by default, which left --trusted-proxies with
    # nothing to read; the app's ProxyFix (only with --trusted-proxies) is the one place that
    # decides whom to believe, and without it the app ignores those headers.
    waitress_kwargs.setdefault("clear_untrusted_proxy_headers", False)
    if tls is not None:
        waitress_kwargs["url_scheme"] = "https"
    if "listen" not in waitress_kwargs and "sockets" not in waitress_kwargs:
        waitress_kwargs.update(host=host, port=port)
    socket_map: dict[int, Any] = {}
    threads = http_threads if detached_websockets else max_clients + http_threads
    wserver = waitress.create_server(app, map=socket_map, threads=threads, **waitress_kwargs)
    return WebSocketServer(wserver, socket_map, max_clients, gate, tls)
