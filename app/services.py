"""The per-app service objects (store, bus, session manager) and their life cycle."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import threading
import time
import uuid
from typing import Any, ClassVar, TextIO

from . import themes
from .audit import AUDIT_FILE, AuditLog
from .config import ConfigError, Settings, read_token_file
from .errors import ApiError, now_ms
from .events import EventBus
from .push.keys import load_vapid
from .push.notifier import PushNotifier
from .serving.serial_pool import SerialPool
from .serving.ws_loop import WsLoop
from .sessions.manager import SessionManager
from .store import Store, make_private_dir, open_private_file, write_private_file

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001  # WebSocket close code for a server that stops
SHUTDOWN_DRAIN_S = 1.0  # how long clients get to receive the last events at shutdown
WS_MESSAGE_THREADS = 16  # at most, for every WebSocket client's messages together
TOKEN_FILE = "token"  # the persistent token, in the data dir
VIEWER_TOKEN_FILE = "viewer-token"  # the persistent view-only token, beside it
PORT_FILE = "port"  # the port a --persistent-token server keeps, beside the token
LEGACY_TOKEN_KEY = "persistent_token"  # where earlier versions kept it: the settings table
LOCK_FILE = "maestro.lock"
LAST_SEQ_KEY = "last_seq"


def lock_data_dir(data_dir: str) -> TextIO:
    """Hold an exclusive lock on the data dir for this process's life.

    Two servers on one database would each report the other's running commands as
    interrupted and fight over the shells.

    :raise ConfigError: another server holds it.
    """
    make_private_dir(data_dir)
    fd = open_private_file(os.path.join(data_dir, LOCK_FILE), os.O_WRONLY)
    handle = os.fdopen(fd, "w")  # held until shutdown
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(f"data dir {data_dir} is in use by another Maestro Web server; "
                          "stop it or use --data-dir") from None
    return handle


def resolve_token(settings: Settings, store: Store) -> str:
    """The token for this run: explicit, else persistent (kept or rotated), else fresh.

    The persistent token lives in clear in `<data-dir>/token` (mode 0600, in the 0700 data
    dir), not in the database, and not as a hash. A hash would do for the guard, but the
    banner must show the URL with the token at every start: that is how a user who lost the
    link gets it back (and the QR code) without rotating it, which would unpair the phone.
    Kept out of the database, it does not travel with copies and backups of maestro.db, which
    also hold the sessions' logs. The file's format is the one --token-file reads.

    :raise ConfigError: the token file exists but does not hold a token.
    """
    token_path = os.path.join(settings.data_dir, TOKEN_FILE)
    _move_legacy_token(store, token_path)
    if settings.token:
        if settings.persistent_token:
            write_private_file(token_path, settings.token + "\n")
        return settings.token
    if settings.persistent_token or settings.rotate_token:
        saved = None
        if not settings.rotate_token and os.path.exists(token_path):
            saved = read_token_file(token_path)
        if saved is None:
            saved = str(uuid.uuid4())
            write_private_file(token_path, saved + "\n")
        return saved
    return str(uuid.uuid4())


def resolve_viewer_token(settings: Settings, token: str) -> str | None:
    """The view-only token for this run: explicit, else generated for --enable-viewer
    (kept in `<data-dir>/viewer-token` like the token with --persistent-token, replaced by
    --rotate-token), else none.

    :raise ConfigError: it equals the owner's token, or its file does not hold a token.
    """
    path = os.path.join(settings.data_dir, VIEWER_TOKEN_FILE)
    keep = settings.persistent_token or settings.rotate_token
    viewer_token = settings.viewer_token
    if viewer_token is None and settings.enable_viewer:
        if keep and not settings.rotate_token and os.path.exists(path):
            viewer_token = read_token_file(path)
        else:
            viewer_token = str(uuid.uuid4())
            if keep:
                write_private_file(path, viewer_token + "\n")
    elif viewer_token is not None and settings.persistent_token:
        write_private_file(path, viewer_token + "\n")
    if viewer_token == token:
        raise ConfigError("the viewer token must differ from the token")
    return viewer_token


def remembered_port(settings: Settings) -> int | None:
    """The port kept in `<data-dir>/port` by an earlier --persistent-token start, if any.

    A paired phone's home-screen icon holds the whole URL, port included: with a fresh
    random port at each start it would stop working.
    """
    if not settings.persistent_token:
        return None
    try:
        with open(os.path.join(settings.data_dir, PORT_FILE), encoding="utf-8") as handle:
            text = handle.readline().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) <= 65535 else None


def remember_port(settings: Settings, port: int) -> None:
    """Keep `port` for the next --persistent-token start (the data dir exists by now)."""
    if settings.persistent_token:
        write_private_file(os.path.join(settings.data_dir, PORT_FILE), f"{port}\n")


def _move_legacy_token(store: Store, token_path: str) -> None:
    """Move a persistent token stored in the database to the token file, and erase it there."""
    legacy = store.get_setting(LEGACY_TOKEN_KEY)
    if legacy is None:
        return
    if not os.path.exists(token_path):
        write_private_file(token_path, legacy + "\n")
    store.erase_setting(LEGACY_TOKEN_KEY)
    logger.warning("moved the persistent token out of the database (older copies of it still "
                   "hold it) to %s", token_path)


@dataclasses.dataclass
class Services:
    """Everything a request or a socket needs beyond Flask itself."""

    settings: Settings
    store: Store
    bus: EventBus
    manager: SessionManager
    token: str
    audit: AuditLog
    ws_loop: WsLoop
    # Runs the WebSocket clients' messages, each client's in order (threads as needed).
    ws_messages: SerialPool = dataclasses.field(
        default_factory=lambda: SerialPool(WS_MESSAGE_THREADS, "ws-messages"))
    viewer_token: str | None = None
    push: PushNotifier | None = None  # set by start(), once the services exist
    _stopped: bool = False
    _data_lock: TextIO | None = None
    # Open WebSocket clients, closed with 1001 at shutdown; guarded by _clients_lock.
    _clients: set = dataclasses.field(default_factory=set)
    _clients_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _ws_admitted: int = 0  # handshakes let in, their clients not added yet (_clients_lock)
    THEME_KEY: ClassVar[str] = "theme"

    @classmethod
    def start(cls, settings: Settings) -> Services:
        """Open the data dir (refusing one another server is using) and restore sessions.

        :raise ConfigError: the data dir is in use.
        """
        data_lock = lock_data_dir(settings.data_dir)
        store = Store(settings.database_path, log_cap=settings.log_cap,
                      history_cap=settings.history_cap)
        token = resolve_token(settings, store)
        viewer_token = resolve_viewer_token(settings, token)
        # Seq never goes back across restarts, crashes and clock changes: the bus saves
        # the end of each block of seqs before using it; the clock is only a floor.
        first_seq = max(int(store.get_setting(LAST_SEQ_KEY) or 0), now_ms())
        bus = EventBus(replay_size=settings.replay_buffer_size, first_seq=first_seq,
                       reserve=lambda upto: store.set_setting(LAST_SEQ_KEY, str(upto)),
                       replay_bytes=settings.replay_buffer_bytes)
        manager = SessionManager(store, bus, settings)
        make_private_dir(manager.rc_dir)  # the rc files hold the shells' nonces
        try:
            vapid = load_vapid(settings.data_dir)
        except OSError as exc:
            raise ConfigError(str(exc)) from None
        manager.restore()
        services = cls(settings=settings, store=store, bus=bus, manager=manager, token=token,
                       audit=AuditLog(os.path.join(settings.data_dir, AUDIT_FILE)),
                       ws_loop=WsLoop(settings.ws_ping_interval_s or None,
                                      settings.max_ws_message_bytes),
                       viewer_token=viewer_token, _data_lock=data_lock)
        services.push = PushNotifier(store, vapid, settings, manager.shell_state,
                                     services.session_name, services.session_in_view)
        bus.add_listener(services.push.on_event)
        return services

    def shutdown(self) -> None:
        """End every session process, save the seq and close the database; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.manager.announce_shutdown()
        self.close_ws_clients()
        self.manager.shutdown()
        if self.push is not None:
            self.push.stop(SHUTDOWN_DRAIN_S)
        self.store.set_setting(LAST_SEQ_KEY, str(self.bus.last_seq))
        self.store.close()
        if self._data_lock is not None:
            self._data_lock.close()  # releases the flock
        logger.info("stopped: sessions saved, processes ended, database closed")

    def active_theme(self) -> dict:
        return themes.get_theme(self.store.get_setting(self.THEME_KEY) or "") or themes.get_theme(
            themes.DEFAULT_THEME_ID
        )

    def set_theme(self, theme_id: str) -> dict:
        """Make a built-in theme active, persist it, and publish theme:change."""
        theme = themes.get_theme(theme_id)
        if theme is None:
            raise ApiError(400, f"Unknown theme '{theme_id}'; GET themes lists them")
        with self.bus.lock:
            self.store.set_setting(self.THEME_KEY, theme_id)
            self.bus.publish("theme:change", theme=theme)
        return theme

    def add_ws_client(self, client: Any) -> None:
        with self._clients_lock:
            self._clients.add(client)

    def remove_ws_client(self, client: Any) -> None:
        with self._clients_lock:
            self._clients.discard(client)

    def session_in_view(self, session_id: str) -> bool:
        """Does some open page show this session in the foreground (its `presence`)?"""
        with self._clients_lock:
            return any(client.presence == (session_id, True) for client in self._clients)

    def session_name(self, session_id: str) -> str | None:
        """The session's name for a notification; None when it is gone."""
        try:
            return self.manager.get(session_id).name or "Maestro"
        except ApiError:
            return None

    def admit_ws_client(self) -> bool:
        """Let one more WebSocket handshake in unless --max-clients are open or being let
        in (checked and counted in one step: simultaneous handshakes all saw room before
        any was added). end_ws_admission() once its client was added, or it failed."""
        with self._clients_lock:
            if len(self._clients) + self._ws_admitted >= self.settings.max_clients:
                return False
            self._ws_admitted += 1
            return True

    def end_ws_admission(self) -> None:
        with self._clients_lock:
            self._ws_admitted -= 1

    def close_ws_clients(self) -> None:
        """Close each WebSocket client with 1001 after its queued events (a client that
        does not take them in time is cut), then stop the WebSocket loop."""
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            client.close(CLOSE_GOING_AWAY, "Server shutting down")
        deadline = time.monotonic() + SHUTDOWN_DRAIN_S
        for client in clients:
            client.connection.closed.wait(max(0.0, deadline - time.monotonic()))
        self.ws_loop.stop()
        self.ws_messages.shutdown()
