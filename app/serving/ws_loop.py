"""One thread reads and writes every live-updates WebSocket (both launchers, TLS too).

flask-sock still routes `/ws` and simple_websocket still answers the handshake (the 101),
each on the launcher's thread for that request. Then the route hands the connection to
this loop (`WsLoop.adopt`) and the loop alone touches the socket, non-blocking, through a
selector (epoll):

- **Writes.** Each client's ClientQueue holds frames: the bus's events, framed once for
  every client (events.Event.frame: a server's frames are unmasked, so the same bytes),
  and the client's own replies. A queue that gets its first frame wakes the loop (one
  write to the loop's waker, however many clients); the loop sends each queue's frames in
  batches, keeps what the socket would not take as that client's output, and waits for
  the socket to be writable again. A client that stops reading lets its queue fill: the
  bus closes it at `--client-queue-size` frames and the client gets 1013 (or, if not even
  the close frame gets through, is cut). Pongs, pings and close frames go out at the next
  frame boundary, ahead of queued events.
- **Reads.** wsproto (the connection simple_websocket set up for the handshake) parses the
  client's frames; the loop answers pings, notes pongs, enforces `--max-ws-message-bytes`
  (1009), and hands whole messages to the connection's listener (`listen`): the app
  runs them on a shared pool, each client's in order. The loop pings every client
  each `--ws-ping-interval-s` and closes one whose previous ping went unanswered (1008).
- **Threads.** One loop thread for all clients, instead of a drainer thread and
  simple_websocket's reader thread per client (simple_websocket is given a thread class
  that starts nothing), and the launcher's request thread is free once the route has
  set the connection up: both launchers keep a connection open after its request when
  the app asks them to (`environ[DETACH_KEY]`, see app/serving/__init__.py). Threads no
  longer grow with clients (1,000 idle clients: the same thread count as one). The
  agreed shape stays: flask-sock routes the socket and it is fed by a thread-safe queue
  per client; only who drains the queue changed. wsgi.py still holds 2 fds per client
  (waitress's channel and the dup the loop uses), run.py 1.

permessage-deflate is not offered (the route drops the client's offer before the
handshake): with it, every client's frames would be compressed with that client's own
context, so no frame could be shared, and compressing each message per client costs more
CPU than the framing this saves. (A shared deflated frame, compressed once per event
without context takeover, would be compatible with every client's context; not done.)
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.utilities import LocalProtocolError

from ..events import ClientQueue
from ..sessions.oslayer import LAYER
from ..ws_frames import OPCODE_CLOSE, OPCODE_PONG, PING_FRAME, close_frame, frame, text_frame

log = logging.getLogger(__name__)

BATCH_BYTES = 64 * 1024  # frames joined into one send; control frames wait at most this
TLS_PIECE_BYTES = 16 * 1024  # one TLS record; retried with the very same bytes
READ_BYTES = 16 * 1024
READ_PASS_BYTES = 16 * 1024  # then the other clients get their turn
WRITE_PASS_BYTES = 1024 * 1024
CLOSE_WAIT_S = 2.0  # for what is queued and our close frame to go out, once asked for
CLOSE_REPLY_WAIT_S = 2.0  # then for the peer's close frame
TICK_S = 0.25  # how often deadlines and pings are checked
NO_STATUS = frozenset({1005, 1006})  # codes that must not appear in a close frame
MESSAGE_TOO_BIG = 1009
POLICY_VIOLATION = 1008
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError,
               ssl.SSLWantWriteError)


class NoReaderThread:
    """The `thread_class` simple_websocket gets (SOCK_SERVER_OPTIONS): it starts nothing,
    as the loop reads every socket."""

    name = "ws-no-reader"

    def __init__(self, target: Callable[[], None] | None = None, **kwargs: Any) -> None:
        pass

    def start(self) -> None:
        pass


class Connection:
    """One adopted WebSocket. start(), send_text(), close() and listen() may be called from
    any thread; the methods starting with `on_` only from the loop's."""

    def __init__(self, loop: WsLoop, ws: Any, queue: ClientQueue) -> None:
        self._loop = loop
        self.sock = ws.sock  # the launcher's socket: closing it hands it back
        # The launcher's wrappers write whole frames with a blocking sendall(); the loop
        # needs the plain, non-blocking send() underneath (raw_send).
        self._send = getattr(self.sock, "raw_send", self.sock.send)
        self._tls = getattr(self.sock, "tls", isinstance(self.sock, ssl.SSLSocket))
        self._protocol = ws.ws  # wsproto, open since the handshake
        self.queue = queue
        # Guards _control, _head, _started, _closing, _inbox and the listeners. Reentrant:
        # the message listener runs under it (messages stay in order) and may close().
        self._lock = threading.RLock()
        self._control: collections.deque[bytes] = collections.deque()
        # Only the latest ping's pong waits (RFC 6455 5.5.3): a client that pings without
        # reading would otherwise pile up pongs without bound.
        self._pong: bytes | None = None
        self._head: collections.deque[bytes] = collections.deque()  # start()'s frames
        self._started = False  # the queue is not sent before start()
        self._inbox: list[str | bytes] = []  # messages that came before listen()
        self._on_message: Callable[[str | bytes], None] | None = None
        self._on_closed: Callable[[], None] | None = None
        self._closing: bytes | None = None  # our close frame, once one is asked for
        self.close_deadline: float | None = None
        self.closed = threading.Event()  # the loop let go of the socket
        # Loop thread only:
        self._out = memoryview(b"")  # bytes taken from the queue, not yet sent
        self._close_taken = False  # our close frame is (part of) _out
        self._close_sent = False  # ... and all of it went out
        self._peer_closed = False
        # The message arriving, as bytes (a text one encoded): one buffer, however many
        # pieces it comes in (a list of a million 2-byte fragments held 10 times its size).
        self._message = io.BytesIO()
        self.pong_due = False
        self.mask = 0

    # -- any thread ------------------------------------------------------------------------

    def start(self, first: list[bytes]) -> None:
        """Send `first` (outside the queue's bound), then the queue's frames."""
        with self._lock:
            self._head.extend(first)
            self._started = True
        self.queue.on_ready = self._wake
        self._wake()

    def send_text(self, text: str) -> None:
        """Queue one message of this client's own, after what is queued already."""
        self.queue.put(text_frame(text))

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame after what is queued, then end; never blocks. A peer that
        does not take it within CLOSE_WAIT_S (or does not answer it within
        CLOSE_REPLY_WAIT_S) is cut."""
        with self._lock:
            if self._closing is not None:
                return
            self._closing = close_frame(code, reason)
        self.queue.close()
        self._wake()

    def listen(self, on_message: Callable[[str | bytes], None],
               on_closed: Callable[[], None]) -> None:
        """Hand each whole message of the client to `on_message` (called on the loop's
        thread, in order: it must not block) and call `on_closed` once the connection
        ended (at once if it has)."""
        with self._lock:
            self._on_message, self._on_closed = on_message, on_closed
            for message in self._inbox:
                on_message(message)
            self._inbox.clear()
            ended = self.closed.is_set()
        if ended:
            on_closed()

    def _wake(self) -> None:
        self._loop.wake(self)

    # -- the loop's thread -----------------------------------------------------------------

    def on_readable(self) -> None:
        received = 0
        while received < READ_PASS_BYTES:
            try:
                data = self.sock.recv(READ_BYTES)
            except WOULD_BLOCK:
                return
            except OSError:
                return self.finish()
            if not data:
                return self.finish()
            received += len(data)
            try:
                self._protocol.receive_data(data)
                self._handle_events()
            except LocalProtocolError:
                return self.finish()
            if self.closed.is_set():
                return
        self._loop.wake(self, read_again=True)

    def _handle_events(self) -> None:
        for event in self._protocol.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._take_piece(event)
            elif isinstance(event, Ping):
                with self._lock:
                    self._pong = frame(OPCODE_PONG, event.payload)
                self.on_writable()
            elif isinstance(event, Pong):
                self.pong_due = False
            elif isinstance(event, CloseConnection):
                self._peer_closed = True
                if self._close_sent:
                    return self.finish()
                if self._close_taken:
                    return  # ours is on its way: then the end
                # Answer with its code (wsproto's own for a malformed frame), then end.
                self._close_now(frame(OPCODE_CLOSE, b"") if event.code in NO_STATUS
                                else close_frame(event.code, event.reason or ""))
                return

    def _take_piece(self, event: TextMessage | BytesMessage) -> None:
        if self._closing is not None:
            return  # closing: what the client still says is not read
        data = event.data.encode() if isinstance(event.data, str) else event.data
        if self._message.tell() + len(data) > self._loop.max_message_bytes:
            self.close(MESSAGE_TOO_BIG, "Message is too big")
            return
        self._message.write(data)
        if not event.message_finished:
            return
        whole, self._message = self._message.getvalue(), io.BytesIO()
        message = whole.decode() if isinstance(event, TextMessage) else whole
        with self._lock:
            if self._on_message is None:
                self._inbox.append(message)
            else:
                self._on_message(message)

    def send_control(self, data: bytes) -> None:
        """A ping or close frame, at the next frame boundary."""
        with self._lock:
            self._control.append(data)
        self.on_writable()

    def _close_now(self, data: bytes) -> None:
        """A close frame ahead of anything queued (the peer closed: it reads no more)."""
        with self._lock:
            self._closing = data
        self.queue.close()
        self.queue.take(1 << 62)  # drop what is queued
        self.on_writable()

    def on_writable(self) -> None:
        sent = 0
        while sent < WRITE_PASS_BYTES and not self.closed.is_set():
            if not self._out and not self._refill():
                return self._loop.want_write(self, False)
            piece = self._out[:TLS_PIECE_BYTES] if self._tls else self._out
            try:
                count = self._send(piece)
            except WOULD_BLOCK:
                count = 0
            except OSError:
                return self.finish()
            sent += count
            self._out = self._out[count:]
            if self._out:
                return self._loop.want_write(self, True)
            if self._close_taken and not self._close_sent:
                self._close_sent = True
                self.close_deadline = time.monotonic() + CLOSE_REPLY_WAIT_S
            if self._close_sent and self._peer_closed:
                return self.finish()
        if not self.closed.is_set():
            self._loop.wake(self)  # more to send: after the other clients' turn

    def _refill(self) -> bool:
        """Take the next bytes to send: control frames first, then queued frames, then our
        close frame once the queue is empty. False when there is nothing."""
        with self._lock:
            if self._control or self._pong:
                self._out = memoryview(b"".join([*self._control, self._pong or b""]))
                self._control.clear()
                self._pong = None
                return True
            if self._head:
                self._out = memoryview(self._head.popleft())
                return True
            closing, started = self._closing, self._started
        frames = self.queue.take(BATCH_BYTES) if started or closing else []
        if frames:
            self._out = memoryview(frames[0] if len(frames) == 1 else b"".join(frames))
            return True
        if closing is not None and not self._close_taken:
            self._close_taken = True
            self._out = memoryview(closing)
            self.close_deadline = self.close_deadline or time.monotonic() + CLOSE_WAIT_S
            return True
        return False

    def on_requested_close(self, now: float) -> None:
        """Start the close deadline when a close was asked for."""
        if self._closing is not None and self.close_deadline is None:
            self.close_deadline = now + CLOSE_WAIT_S

    def finish(self) -> None:
        """Let go of the socket (closing it tells the launcher) and tell the listener."""
        if self.closed.is_set():
            return
        self._loop.forget(self)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.queue.close()
        with self._lock:
            self.closed.set()
            on_closed = self._on_closed
        if on_closed is not None:
            on_closed()

    def cut(self) -> None:
        """A peer that took neither our close frame nor answered it in time."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.finish()


def _guarded(connection: Connection, step: Callable[[], None]) -> None:
    """Run one connection's step; a failure cuts that connection, never the loop (which
    serves every client)."""
    try:
        step()
    except Exception:
        log.exception("a WebSocket connection failed; it is cut")
        connection.cut()


class WsLoop:
    """The selector thread; started by the first adopt()."""

    def __init__(self, ping_interval_s: float | None, max_message_bytes: int) -> None:
        self.ping_interval_s = ping_interval_s
        self.max_message_bytes = max_message_bytes
        self._selector = selectors.DefaultSelector()
        self._waker = LAYER.waker()  # an eventfd on Linux, a pipe where there is none
        self._selector.register(self._waker.fd, selectors.EVENT_READ, None)
        # Guards _ready, _reread, _adopted, _woken, _thread and _stopping.
        self._lock = threading.Lock()
        self._ready: set[Connection] = set()
        self._reread: set[Connection] = set()
        self._adopted: list[Connection] = []
        self._woken = False
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._connections: set[Connection] = set()  # loop thread only
        self._next_ping = 0.0

    def adopt(self, ws: Any, queue: ClientQueue) -> Connection:
        """Take over a WebSocket right after its handshake; simple_websocket must not touch
        it again (flask-sock's closing ws.close() then does nothing)."""
        ws.connected = False
        ws.sock.setblocking(False)
        connection = Connection(self, ws, queue)
        with self._lock:
            if self._stopping:
                raise RuntimeError("the WebSocket loop has stopped")
            self._adopted.append(connection)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ws-loop", daemon=True)
                self._thread.start()
        self._signal()
        return connection

    def wake(self, connection: Connection, read_again: bool = False) -> None:
        """Any thread: `connection` has something to send (or, `read_again`, to read)."""
        with self._lock:
            (self._reread if read_again else self._ready).add(connection)
            if self._woken:
                return
            self._woken = True
        self._waker.wake()

    def _signal(self) -> None:
        with self._lock:
            self._woken = True
        self._waker.wake()

    def stop(self, timeout: float = 2.0) -> None:
        """Cut whatever is still open and end the thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._signal()
        if thread is not None:
            thread.join(timeout)

    # -- the loop's thread -----------------------------------------------------------------

    def want_write(self, connection: Connection, wanted: bool) -> None:
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if wanted else 0)
        if connection.mask != mask and not connection.closed.is_set():
            connection.mask = mask
            self._selector.modify(connection.sock, mask, connection)

    def forget(self, connection: Connection) -> None:
        self._connections.discard(connection)
        if connection.mask:
            connection.mask = 0
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(connection.sock)

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._step()
        except Exception:
            log.exception("the WebSocket loop failed")
        finally:
            with self._lock:
                self._stopping = True
                adopted, self._adopted = self._adopted, []
            for connection in [*self._connections, *adopted]:
                connection.cut()

    def _step(self) -> None:
        for key, mask in self._selector.select(TICK_S):
            connection = key.data
            if connection is None:
                self._waker.drain()
                continue
            if mask & selectors.EVENT_READ:
                _guarded(connection, connection.on_readable)
            if mask & selectors.EVENT_WRITE and not connection.closed.is_set():
                _guarded(connection, connection.on_writable)
        with self._lock:
            adopted, self._adopted = self._adopted, []
            ready, self._ready = self._ready, set()
            reread, self._reread = self._reread, set()
            self._woken = False
        for connection in adopted:
            connection.mask = selectors.EVENT_READ
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)
            self._connections.add(connection)
            ready.add(connection)
            reread.add(connection)  # what arrived with the handshake is no event
        now = time.monotonic()
        for connection in reread:
            if not connection.closed.is_set():
                _guarded(connection, connection.on_readable)
        for connection in ready:
            if not connection.closed.is_set():
                connection.on_requested_close(now)
                _guarded(connection, connection.on_writable)
        self._check_deadlines(now)

    def _check_deadlines(self, now: float) -> None:
        if not self._next_ping:
            self._next_ping = now + (self.ping_interval_s or 0)
        ping = bool(self.ping_interval_s) and now >= self._next_ping
        if ping:
            self._next_ping = now + self.ping_interval_s
        for connection in list(self._connections):
            if connection.close_deadline is not None and now >= connection.close_deadline:
                connection.cut()
            elif ping and connection.pong_due:
                connection.close(POLICY_VIOLATION, "Ping/Pong timeout")
            elif ping:
                connection.pong_due = True
                connection.send_control(PING_FRAME)
