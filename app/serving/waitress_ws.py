"""Serve a Flask + flask-sock app with waitress, WebSockets included, on one port.

For an ``Upgrade: websocket`` request the channel/task subclasses below hand
flask-sock a BLOCKING ``dup()`` of the connection as ``environ["gunicorn.socket"]``
(one of the keys simple_websocket looks for), keep waitress off the connection
while the WebSocket lives, swallow flask-sock's end-of-socket ``StopIteration``
(no HTTP response may follow the 101) and free thread, fds and channel after.
Each WebSocket pins one waitress worker thread (plus simple_websocket's reader).
waitress's own refusals (413, malformed HTTP) and a connection refused for want of
file descriptors answer in the app's JSON error shape.

The module stands alone (tests load it by path, without the app package).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask, WSGITask

from .slow_heads import HeadGate, refusal, too_many_heads

log = logging.getLogger(__name__)

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
    """The blocking dup() given to simple_websocket, with a few safety nets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.used = False  # first send/recv: the 101 is (about to be) on the wire
        self.closed_event = threading.Event()  # set once simple_websocket (or we) closed it
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
                self.sendall(data, flags)
            except ConnectionError as exc:
                # Base.close() only tolerates BrokenPipeError; a reset would kill
                # its reader thread before it closes this fd.
                raise BrokenPipeError(*exc.args) from exc
        return len(data)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.used = True
        return super().recv(bufsize, flags)

    def close(self) -> None:
        with self._state_lock:
            super().close()
            self.closed_event.set()

    def going_away(self) -> None:
        """Best effort 1001 close frame, then FIN; a responsive client answers
        with its close frame and the reader thread ends cleanly (else: abort())."""
        if not self._io_lock.acquire(timeout=0.2):  # a writer is stuck on a full buffer
            return
        try:
            with self._state_lock, contextlib.suppress(OSError):
                if not self.closed_event.is_set():
                    # MSG_DONTWAIT: never block shutdown on a peer that stopped reading
                    socket.socket.send(self, _GOING_AWAY_FRAME, socket.MSG_DONTWAIT)
                    self.shutdown(socket.SHUT_WR)
        finally:
            self._io_lock.release()

    def abort(self) -> None:
        with self._state_lock, contextlib.suppress(OSError):
            if not self.closed_event.is_set():
                # shutdown() acts on the connection, not the fd: it wakes the
                # reader's recv()/select() on every dup of it.
                self.shutdown(socket.SHUT_RDWR)


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
        try:
            self._hand_over(channel, owner)
        finally:
            owner._release_slot(self.ws_sock)

    def _hand_over(self, channel: WSChannel, owner: WebSocketServer) -> None:
        # 1. Keep the asyncore loop from writing this connection (writable() False;
        #    readable() is already False since received() saw the upgrade).
        channel.ws_handover = True
        with channel.outbuf_lock:  # the loop's own flushes take this lock too
            # 2. Dup the fd and make it blocking.  O_NONBLOCK lives on the shared
            #    open file description, so waitress's original turns blocking too:
            #    harmless while the loop leaves it alone, and restored in step 6.
            #    (The original non-blocking socket must never be handed over.)
            orig = channel.socket
            sock = self.ws_sock = _HandoverSocket(
                orig.family, orig.type, orig.proto, fileno=socket.dup(orig.fileno()))
            sock.setblocking(True)
            # 3. A pipelined earlier response may still sit in the outbufs: drain
            #    it now (blocking) so it cannot land after the 101.
            if channel.total_outbufs_len:
                channel._flush_some()
        owner._track(sock)
        environ = self.get_environment()  # cached: the app sees this very dict
        environ["gunicorn.socket"] = sock  # simple_websocket's 'gunicorn' mode
        try:
            super().execute()  # 4. flask-sock's route runs the whole WebSocket here
        except StopIteration:
            pass  # flask-sock's end-of-socket signal in 'gunicorn' mode
        except Exception:
            if not sock.used:
                raise  # failed before the handshake: let waitress send its 500
            log.exception("WebSocket handler failed after the handshake")
        finally:
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


OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})


class FdReserve:
    """One spare descriptor, spent to refuse a connection accept() could not take.

    Out of descriptors, accept() fails with EMFILE while the connection stays in the
    backlog: the listening socket stays readable and the loop retries it forever, and
    the client hangs. Closing the spare lets us accept it, answer 503 and close it.
    """

    def __init__(self) -> None:
        self._spare: int | None = self._open_spare()

    @staticmethod
    def _open_spare() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def guard(self, accept: Callable[[], Any], listener: socket.socket) -> Callable[[], Any]:
        """`accept` (a wasyncore dispatcher's), refusing one connection on EMFILE/ENFILE."""

        def guarded_accept() -> Any:
            try:
                return accept()
            except OSError as exc:
                if exc.errno not in OUT_OF_DESCRIPTORS:
                    raise
                self.refuse_one(listener)
                return None  # wasyncore: nothing accepted

        return guarded_accept

    def refuse_one(self, listener: socket.socket) -> None:
        log.warning("out of file descriptors: refusing a connection with 503")
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.setblocking(False)
                with contextlib.suppress(OSError):
                    conn.send(refusal("503 Service Unavailable",
                                      "Server is out of file descriptors; try again later"))
                    conn.shutdown(socket.SHUT_WR)
        # Another thread may have taken the freed number: then the next refusal only
        # closes (or, without any descriptor, the loop retries as before).
        self._spare = self._open_spare()

    def close(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None


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
    head_pending = False  # a request head is arriving (counted by the owner's HeadGate)
    head_since = 0.0  # when it began (monotonic)
    refused = False  # too many heads from its address: answered 429, closing

    def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any,
                 map: dict | None = None) -> None:
        super().__init__(server, sock, addr, adj, map)
        self._begin_head()  # a new connection owes us a request head

    def _begin_head(self) -> None:
        if self.server.ws_owner.head_gate.admit(self.addr[0]):
            self.head_pending, self.head_since = True, time.monotonic()
            return
        self.refused = True
        self.write_soon(too_many_heads())
        self.close_when_flushed = True

    def _end_head(self) -> None:
        if self.head_pending:
            self.head_pending = False
            self.server.ws_owner.head_gate.release(self.addr[0])

    def received(self, data: bytes) -> bool:
        if self.ws_upgrade or self.refused:
            return False
        if not self.head_pending and self.request is None and data:
            self._begin_head()  # the next request on a kept-alive connection
            if self.refused:
                return False
        result = super().received(data)
        if self.request is None or self.request.headers_finished:
            self._end_head()
        # Decided on the loop thread before its next select(): WebSocket frames
        # must never be read (and mis-parsed as HTTP) by waitress.
        self.ws_upgrade = any(_is_upgrade(r.headers) for r in self.requests)
        return result

    def handle_close(self) -> None:
        self._end_head()
        super().handle_close()

    def readable(self) -> bool:
        return not self.ws_upgrade and not self.refused and super().readable()

    def writable(self) -> bool:
        return not self.ws_handover and super().writable()


class WebSocketServer:
    """A waitress server whose channels can hand connections over to flask-sock."""

    def __init__(self, wserver: Any, socket_map: dict[int, Any], max_clients: int,
                 head_gate: HeadGate) -> None:
        self._wserver = wserver  # TcpWSGIServer, or MultiSocketServer for several listens
        self._map = socket_map  # waitress's asyncore map: listeners, trigger, channels
        self._listeners = [s for s in socket_map.values() if isinstance(s, BaseWSGIServer)]
        self._fd_reserve = FdReserve()
        self.head_gate = head_gate
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
        request head is later than the gate's deadline."""
        sweep = listener.maintenance

        def maintenance(now: float) -> None:
            sweep(now)
            late = time.monotonic() - self.head_gate.timeout_s
            for channel in list(listener.active_channels.values()):
                if getattr(channel, "head_pending", False) and channel.head_since < late:
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
                     http_threads: int = 8, head_gate: HeadGate | None = None,
                     **waitress_kwargs: Any) -> WebSocketServer:
    """Create (bind, not yet serve) a waitress server with WebSocket support.

    Worker threads = max_clients + http_threads (each WebSocket pins one),
    waitress's connection_limit (default 100) is raised by max_clients, and the loop
    uses poll(), not select(): select() fails once any descriptor reaches 1024.
    `head_gate` bounds slow request heads (default: 10 s each, 64 per address); the
    sweep that enforces its deadline runs every second.
    """
    head_gate = head_gate or HeadGate(per_address=64, timeout_s=10.0)
    waitress_kwargs.setdefault("cleanup_interval", 1)
    if "threads" in waitress_kwargs:
        raise TypeError("pass max_clients/http_threads instead of threads")
    if max_clients < 1 or http_threads < 1:
        raise ValueError("max_clients and http_threads must be >= 1")
    waitress_kwargs["connection_limit"] = (
        waitress_kwargs.get("connection_limit", 100) + max_clients)
    waitress_kwargs.setdefault("asyncore_use_poll", True)
    if "listen" not in waitress_kwargs and "sockets" not in waitress_kwargs:
        waitress_kwargs.update(host=host, port=port)
    socket_map: dict[int, Any] = {}
    wserver = waitress.create_server(app, map=socket_map,
                                     threads=max_clients + http_threads, **waitress_kwargs)
    return WebSocketServer(wserver, socket_map, max_clients, head_gate)
