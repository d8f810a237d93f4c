"""The live-updates WebSocket: init snapshot, resume, scoped events and client messages.

After the handshake the connection belongs to the WebSocket loop (app/serving/ws_loop.py),
which writes every client's frames and reads their messages. Each connection has a bounded
ClientQueue of frames, fed by the bus (each event framed once for all clients) and by this
handler's replies; this handler's thread runs the client's messages until the socket
closes. A client whose queue overflows is closed with 1013 (try again later) and resumes
with `since`.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, request
from flask_limiter.util import get_remote_address

from ..errors import ApiError, now_ms
from ..events import ClientQueue, Event
from ..extensions import sock
from ..ratelimit import EXTENSION_KEY, KEY_BUDGET_KEY, client_key
from ..serving import DETACH_KEY
from ..serving.whole_frames import serialize_websocket_writes
from ..serving.ws_loop import Connection
from ..ws_frames import text_frame
from . import services
from .messages import MessageHandler

logger = logging.getLogger(__name__)
bp = Blueprint("ws", __name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
WEBSOCKET_VERSION = "13"
# Events that carry one session's output: a scoped client gets only its session's.
SCOPED_EVENTS = frozenset({"session:output", "session:exit"})
# The raw terminal stream: only to a client scoped to its session that asked for it.
PTY_EVENT = "session:pty"


class WsClient:
    """One connected socket: its scope, its queue, and a lock for sending."""

    def __init__(self, connection: Connection, session_id: str | None,
                 watch_pty: Callable[[str, int], None]) -> None:
        self.id = f"client-{id(self):x}-{now_ms()}"
        self.connection = connection
        self.queue = connection.queue
        # Read by the bus thread in wants(), written by the reader thread on `subscribe`;
        # single reference assignments, so no lock is needed.
        self.session_id = session_id
        self.pty = False
        # What the page reports it shows (`presence`): a session id or None (the
        # dashboard), and whether it is in the foreground. Read by the push notifier's
        # thread; one tuple, replaced whole, so it is never half updated.
        self.presence: tuple[str | None, bool] = (None, False)
        self._watch_pty = watch_pty  # counts the session's raw-stream watchers

    def set_scope(self, session_id: str | None, pty: bool) -> None:
        """Scope the socket to a session (None: all), with its raw stream or without."""
        pty = pty and session_id is not None
        if self.pty:
            self._watch_pty(self.session_id, -1)
        if pty:
            self._watch_pty(session_id, +1)
        self.session_id, self.pty = session_id, pty

    def wants(self, event: Event) -> bool:
        if event["type"] == PTY_EVENT:
            return self.pty and event.get("sessionId") == self.session_id
        if self.session_id is None or event["type"] not in SCOPED_EVENTS:
            return True
        return event.get("sessionId") == self.session_id

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message of this client's own, after the events queued before it."""
        self.connection.send_text(json.dumps(message, separators=(",", ":")))

    def abort_slow(self) -> None:
        """The queue overflowed (under the bus lock): close with 1013, without blocking."""
        self.close(CLOSE_TRY_AGAIN_LATER, "Client too slow; resume with since")

    def close(self, code: int, reason: str) -> None:
        """Close with `code` after what is queued; never blocks (a peer that stopped
        reading is cut by the loop)."""
        self.connection.close(code, reason)


class UnsupportedWebSocketVersion(ApiError):
    """426 naming the one version we speak (RFC 6455 section 4.4)."""

    def __init__(self, version: str) -> None:
        super().__init__(426, f"Unsupported Sec-WebSocket-Version {version!r}; "
                              f"this server speaks {WEBSOCKET_VERSION}")

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs),
                ("Sec-WebSocket-Version", WEBSOCKET_VERSION)]


@bp.before_request
def check_handshake() -> None:
    """Answer a malformed handshake with 400 (426 for another version) before
    simple_websocket sees it, instead of its 500."""
    version = request.headers.get("Sec-WebSocket-Version")
    if version is None:
        raise ApiError(400, "Missing header 'Sec-WebSocket-Version'")
    if version.strip() != WEBSOCKET_VERSION:
        raise UnsupportedWebSocketVersion(version)
    if not _is_valid_key(request.headers.get("Sec-WebSocket-Key", "")):
        raise ApiError(400, "Header 'Sec-WebSocket-Key' must be 16 bytes in base64")


def _is_valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        return False


@bp.before_request
def refuse_beyond_max_clients() -> None:
    """Answer 503 before the handshake when --max-clients sockets are already open (or
    being opened: the admission lasts until the request ends, by when its client is
    counted)."""
    svc = services()
    if not svc.admit_ws_client():
        raise ApiError(503, f"Too many WebSocket clients (limit {svc.settings.max_clients})")
    g.ws_admitted = True


@bp.teardown_request
def end_admission(_error: BaseException | None = None) -> None:
    """Once the client is counted (or its request failed)."""
    if g.pop("ws_admitted", False):
        services().end_ws_admission()


@bp.before_request
def write_whole_frames() -> None:
    """Both launchers: simple_websocket writes the 101 whole; and no permessage-deflate
    (events are framed once for every client: see app/serving/ws_loop.py)."""
    serialize_websocket_writes(request.environ)
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


@sock.route("/ws", bp=bp)
def live_updates(ws: Any) -> None:
    svc = services()
    connection = svc.ws_loop.adopt(ws, ClientQueue(svc.settings.client_queue_size))
    try:
        _open(svc, connection)
    except BaseException:
        connection.close(CLOSE_INTERNAL_ERROR, "Server error")
        connection.closed.wait()  # the launcher closes the socket after a failed request
        raise
    detach = request.environ.get(DETACH_KEY)
    if detach is not None:
        detach()  # the launcher keeps the connection open for the loop: this thread is free
    else:
        connection.closed.wait()  # another server closes the socket once this returns


def _open(svc: Any, connection: Connection) -> None:
    """Check the request, subscribe, queue the init message and the replay, and route the
    client's messages to a lane of the message pool."""
    try:
        since = _since_arg()
        session_id = request.args.get("sessionId") or None
        if session_id is not None:
            svc.manager.get(session_id)
    except ApiError as exc:
        connection.start([_frame({"type": "error", "message": exc.description,
                                  "timestamp": now_ms()})])
        connection.close(CLOSE_POLICY_VIOLATION, exc.description[:120])
        return
    client = WsClient(connection, session_id, svc.manager.watch_pty)
    client.set_scope(session_id, request.args.get("pty") in ("1", "true"))
    queue = connection.queue
    queue.accept = client.wants
    queue.on_overflow = client.abort_slow
    handler = MessageHandler(client, svc, current_app.extensions[EXTENSION_KEY],
                             current_app.extensions[KEY_BUDGET_KEY], get_remote_address(),
                             client_key())
    # The loop sends nothing of the queue before start(): the init message and the replay
    # go first, then the events queued since the subscription.
    subscription = svc.bus.subscribe(
        queue, snapshot=lambda: (svc.manager.list_public(), svc.active_theme()), since=since
    )
    svc.add_ws_client(client)
    end_admission()
    lane = svc.ws_messages.lane()

    def on_message(data: str | bytes) -> None:  # on the loop's thread
        if len(lane) >= svc.settings.ws_pending_messages:
            # A client that sends faster than its messages are answered would pile them
            # up without bound: the cap is explicit (--ws-pending-messages).
            connection.close(CLOSE_POLICY_VIOLATION, "Too many messages waiting for an answer")
            return
        lane.submit(lambda: handler.answer(data))

    def forget() -> None:
        svc.manager.forget_answerer(client.id)
        client.set_scope(None, False)
        svc.bus.unsubscribe(queue)
        svc.remove_ws_client(client)

    sessions, theme = subscription.snapshot
    init = _frame({"type": "init", "clientId": client.id, "subscribedSessionId": session_id,
                   "sessions": sessions, "theme": theme, "seq": subscription.seq,
                   "resumed": subscription.resumed, "timestamp": now_ms()})
    connection.start([init, *(event.frame for event in subscription.replay or ()
                              if client.wants(event))])
    connection.listen(on_message, lambda: lane.submit(forget))


def _frame(message: dict[str, Any]) -> bytes:
    return text_frame(json.dumps(message, separators=(",", ":")))


def _since_arg() -> int | None:
    raw = request.args.get("since")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "Query parameter 'since' must be an integer") from None
