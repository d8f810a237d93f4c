"""SessionManager: the one place every action on a session passes through.

REST views and WebSocket messages call these methods; they validate meaning (does the
session exist, is it live, is the folder there), run the action, persist, and publish.

Locks, in the only order they are ever taken: a session's log lock, then the store's
lock, then the bus lock. Shell methods (which may block for seconds) are never called
while the bus lock is held.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from ..config import Settings
from ..errors import ApiError, now_ms
from ..events import EventBus
from ..store import Store
from .agents.conductor import AgentConductor
from .model import INPUT_MODES, TERMINAL_TOOL, Session, Tab, new_id
from .oslayer import LAYER
from .procs import OWNER_VAR, PROCESS_TABLE, end_marked, owner_tag, server_id
from .public_list import SerializedList
from .screen_model import ScreenModel
from .shell_bridge import ShellBridge, history_entry
from .shell_protocol import KEYS
from .terminal import ShellClosedError, ShellStartError, TerminalShell
from .tmux import Tmux

logger = logging.getLogger(__name__)

ACTIVITY_PRECEDENCE = ("waiting_input", "busy", "connecting")
NAME_MAX = 200
# Pagers would wait for keys no phone can send comfortably: programs print straight through.
SHELL_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "SYSTEMD_PAGER": ""}
LEFTOVER_GRACE_S = 1.0  # between SIGHUP, SIGTERM and SIGKILL for processes that escaped
MAX_COLS, MAX_ROWS = 400, 200  # a screen's snapshot grows with cols x rows
DEFAULT_SIZE = (120, 40)  # cols, rows of a new shell's terminal until a client resizes it
SECRET_MASK = "••••••"  # what the log shows of input typed while echo is off
SLOW_START_NOTE = "Starting the shell (your ~/.bashrc is slow)…"


class SessionManager:
    """Owns the sessions, their shells and their logs."""

    def __init__(self, store: Store, bus: EventBus, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.rc_dir = os.path.join(settings.data_dir, "run")
        os.makedirs(self.rc_dir, mode=0o700, exist_ok=True)
        self.server_id = server_id(settings.data_dir)
        logger.info("Processes of sessions tracked by %s; %s OS layer, waiting-for-input "
                    "detection %s", PROCESS_TABLE.track(self.server_id,
                                                        use_cgroups=not settings.no_cgroups),
                    LAYER.name, LAYER.input_detection)
        self.closing = False
        self.tmux = Tmux(settings.tmux_socket)
        # All three guarded by bus.lock.
        self._sessions: dict[str, Session] = {}
        self._shells: dict[str, TerminalShell] = {}
        self._shell_ready: dict[str, threading.Event] = {}
        # The shell's own state per session; the session's state combines it with AI turns.
        self._shell_states: dict[str, str] = {}
        self._bridges: dict[str, ShellBridge] = {}
        # The terminal's echo per session (False: a program reads a secret), and the size the
        # last client asked for (kept for the next shell too).
        self._shell_echo: dict[str, bool] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        # The socket whose resize is in force, per session: only its answers to the
        # terminal's queries reach the program (two views open, it would get two).
        self._answerers: dict[str, str] = {}
        # Sockets subscribed to each session's raw stream: without one, none is published.
        self._pty_watchers: collections.Counter[str] = collections.Counter()
        # Shells whose start-up was noted as slow (commands are queued, not waited for).
        self._slow_shells: weakref.WeakSet[TerminalShell] = weakref.WeakSet()
        # Per session: serialises "commit a log entry, then publish it", and a send's
        # submit with its bookkeeping, so clients see entries in log order.
        self._log_locks: dict[str, threading.RLock] = {}
        # Guards _log_locks itself (not the bus lock, so log_lock() is safe under any lock).
        self._log_locks_guard = threading.Lock()
        # AI mode: the agent turns and prompt queues of every tab.
        self.agents = AgentConductor(self)
        self._list_json = SerializedList(bus, self.list_public)

    # -- queries ----------------------------------------------------------------------------

    def list_public(self) -> list[dict[str, Any]]:
        with self.bus.lock:
            return [self._public(session) for session in self._sessions.values()]

    def list_public_json(self) -> tuple[bytes, int]:
        """list_public() as JSON bytes (kept until the bus publishes) and its length."""
        return self._list_json.get()

    def _public(self, session: Session) -> dict[str, Any]:
        """The session's public view plus `echo` (false while a program reads a secret)."""
        return {**session.public(), "echo": self._shell_echo.get(session.id, True)}

    def get(self, session_id: str) -> Session:
        """The session, or ApiError 404 with the contract's message."""
        with self.bus.lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise ApiError(404, f"Session with id '{session_id}' not found")
        return session

    def is_current(self, session: Session, tab: Tab | None = None) -> bool:
        """The session (and the tab) still exist: not deleted or closed."""
        with self.bus.lock:
            return self._sessions.get(session.id) is session and (tab is None
                                                                   or tab in session.tabs)

    def get_tab(self, session: Session, tab_id: str | None) -> Tab:
        """A tab of the session (the active one when tab_id is None), or ApiError 404."""
        tab = session.tab(tab_id)
        if tab is None:
            raise ApiError(404, f"Tab with id '{tab_id}' not found in session '{session.id}'")
        return tab

    def detail(self, session_id: str, tab_id: str | None = None) -> dict[str, Any]:
        session = self.get(session_id)
        tab = self.get_tab(session, tab_id)
        ai_logs, ai_more = self._detail_logs(session, tab.id)
        shell_logs, shell_more = self._detail_logs(session, None)
        with self.bus.lock:
            item = self._public(session)
        return {**item, "aiLogs": ai_logs, "shellLogs": shell_logs, "aiLogsTabId": tab.id,
                "aiLogsHasMore": ai_more, "shellLogsHasMore": shell_more}

    def _detail_logs(self, session: Session, tab_id: str | None) -> tuple[list[dict], bool]:
        """The newest entries of a log for the detail: at most --detail-log-limit entries
        and --detail-log-chars characters of text (the newest entry always), so a session
        with a huge log opens as fast as a small one; older ones are paged with logs()."""
        entries, more = self.store.page_logs(session.id, tab_id,
                                             limit=self.settings.detail_log_limit)
        budget = self.settings.detail_log_chars
        first = len(entries)
        while first > 0 and (budget >= len(entries[first - 1]["text"])
                             or first == len(entries)):
            first -= 1
            budget -= len(entries[first]["text"])
        return entries[first:], more or first > 0

    def logs(self, session_id: str, kind: str, tab_id: str | None, **page: Any) -> dict:
        session = self.get(session_id)
        tab = self.get_tab(session, tab_id).id if kind == "ai" else None
        entries, more = self.store.page_logs(session.id, tab, **page)
        return {"entries": entries, "count": len(entries), "hasMore": more,
                "kind": kind, "tabId": tab}

    # -- persistence and publishing (also used by the shell bridge) -------------------------

    def save(self, session: Session) -> None:
        """Persist the session, unless it was deleted meanwhile (a stale holder must not
        bring it back)."""
        with self.bus.lock:
            if self._sessions.get(session.id) is session:
                self.store.save_session(session.doc())

    def log_lock(self, session: Session) -> threading.RLock:
        with self._log_locks_guard:
            return self._log_locks.setdefault(session.id, threading.RLock())

    def append_log(self, session: Session, tab_id: str | None, source: str, text: str,
                   **detail: Any) -> dict:
        """Commit one log entry (`detail`: extra fields, such as a tool call's), then publish
        it as session:output."""
        with self.log_lock(session):
            (entry,) = self.store.append_logs(
                session.id, tab_id,
                [{"source": source, "text": text, "timestamp": now_ms(), **detail}]
            )
            with self.bus.lock:
                if source != "user":
                    session.last_output_at = entry["timestamp"]
                self.bus.publish("session:output", sessionId=session.id, tabId=tab_id,
                                 entry=entry)
        return entry

    def update_log(self, session: Session, tab_id: str | None, entry: dict) -> None:
        """Commit a changed entry (same id: an AI answer still streaming, a finished tool
        call), then publish it again as session:output; clients replace it by id."""
        with self.log_lock(session):
            if not self.store.update_log(entry["id"], entry):
                return
            with self.bus.lock:
                session.last_output_at = now_ms()
                self.bus.publish("session:output", sessionId=session.id, tabId=tab_id,
                                 entry=entry)

    def set_state(self, session: Session, state: str) -> None:
        """Set the session's state as such (refresh_state() derives it from its activity)."""
        with self.bus.lock:
            previous = session.state
            if previous == state:
                return
            session.state = state
            self._publish_state(session, previous)

    def refresh_state(self, session: Session) -> None:
        """The session's state from what runs in it: its shell and its AI turns.

        waiting_input beats busy beats connecting; with nothing running it is idle.
        """
        with self.bus.lock:
            activity = set(self.agents.active_states(session))
            activity.add(self._shell_states.get(session.id, "idle"))
            state = next((s for s in ACTIVITY_PRECEDENCE if s in activity), "idle")
            self.set_state(session, state)

    def shell_state(self, session_id: str) -> str:
        """What the session's shell is doing now ("idle" when it has none)."""
        with self.bus.lock:
            return self._shell_states.get(session_id, "idle")

    def shell_state_changed(self, session: Session, state: str) -> None:
        """The shell reports its state (reader thread, or a shell being started)."""
        with self.bus.lock:
            self._shell_states[session.id] = state
            ready = self._shell_ready.get(session.id)
        if ready is not None and state != "connecting":
            ready.set()
        self.refresh_state(session)

    def _publish_changed(self, session: Session) -> None:
        """Persist a session and tell clients its name, mode, folder or group changed."""
        with self.bus.lock:
            self.save(session)
            self._publish_state(session, session.state)

    def _publish_state(self, session: Session, previous: str) -> None:
        """session:state with the contract's fields, plus the group (so renames show too)."""
        self.bus.publish("session:state", sessionId=session.id, state=session.state,
                         previousState=previous, name=session.name,
                         toolType=session.tool_type, inputMode=session.input_mode,
                         cwd=session.cwd, groupId=session.group_id,
                         groupName=session.group_name, groupEmoji=session.group_emoji,
                         echo=self._shell_echo.get(session.id, True))

    def watch_pty(self, session_id: str, delta: int) -> None:
        """A socket starts (+1) or stops (-1) watching a session's raw terminal stream.

        Counted only for sessions that exist: delete() drops a session's count, so a socket
        that subscribed a moment before (or still watches) leaves nothing behind.
        """
        with self.bus.lock:
            if delta > 0 and session_id not in self._sessions:
                return
            count = self._pty_watchers[session_id] + delta
            if count > 0:
                self._pty_watchers[session_id] = count
            else:
                self._pty_watchers.pop(session_id, None)

    def pty_watched(self, session: Session) -> bool:
        with self.bus.lock:
            return session.id in self._pty_watchers

    def shell_echo_changed(self, session: Session, echo: bool) -> None:
        """The terminal's echo went off (a password prompt) or on again (reader thread)."""
        with self.bus.lock:
            self._shell_echo[session.id] = echo
            self._publish_state(session, session.state)

    def publish_tabs(self, session: Session) -> None:
        with self.bus.lock:
            self.save(session)
            self.bus.publish("tabs:change", sessionId=session.id,
                             aiTabs=[tab.public() for tab in session.tabs],
                             activeTabId=session.active_tab_id)

    def add_history(self, session: Session, fields: dict[str, Any]) -> dict[str, Any]:
        entry = history_entry(session, fields)
        self.store.add_history(entry)
        self.bus.publish("history:added", entry=entry)
        return entry

    def record_interrupted(self, session: Session, reason: str, output: str = "") -> None:
        """Report a command that never finished: a system log entry and a failed history entry."""
        with self.bus.lock:
            command = session.running_command
            session.running_command = None
            self.save(session)
        if command is None:
            return
        self.append_log(session, None, "system",
                        f"Command interrupted ({reason}): {command['text']}")
        self.add_history(session, {
            "summary": command["text"], "fullResponse": output, "success": False,
            "elapsedTimeMs": max(0, now_ms() - command["startedAt"]), "exitCode": None,
        })

    def shell_ended(self, session: Session) -> None:
        with self.bus.lock:
            self._shells.pop(session.id, None)
            self._bridges.pop(session.id, None)
            ready = self._shell_ready.pop(session.id, None)
            self._shell_states.pop(session.id, None)
            self._shell_echo.pop(session.id, None)
        if ready is not None:
            ready.set()  # a send() waiting for this shell gives up at once
        self.refresh_state(session)

    # -- processes --------------------------------------------------------------------------

    def owner_tag(self, session: Session, role: str) -> str:
        """The OWNER_VAR mark for the processes a session starts in `role` (shell, agent)."""
        return owner_tag(self.server_id, session.id, role)

    def end_leftovers(self, session: Session | None = None) -> None:
        """End every process still carrying this server's mark (for one session, or all)."""
        prefix = self.server_id + "/" + (session.id + "/" if session is not None else "")
        end_marked(prefix, LEFTOVER_GRACE_S)

    # -- the shell --------------------------------------------------------------------------

    def _start_shell(self, session: Session,
                     refuse_if_out_of_resources: bool = False) -> TerminalShell | None:
        """Start the session's shell; on failure the session shows `error` and says why.

        :raise ApiError 507: with `refuse_if_out_of_resources`, when the machine is out of
            processes or descriptors: the new session is deleted again, never left half made.
        """
        bridge = ShellBridge(self, session)
        with self.bus.lock:
            cols, rows = self._sizes.get(session.id, DEFAULT_SIZE)
        shell = TerminalShell(
            name=session.id[:8], shell=self.settings.shell,
            cwd=session.shell_cwd if session.shell_cwd and os.path.isdir(session.shell_cwd)
            else session.cwd,
            listener=bridge, rc_dir=self.rc_dir,
            env={**SHELL_ENV, "MAESTRO_SESSION_ID": session.id,
                 OWNER_VAR: self.owner_tag(session, "shell")},
            interrupt_grace=self.settings.interrupt_grace_s, cols=cols, rows=rows,
        )
        # Registered and spawned under the bus lock, so a concurrent delete() either sees
        # this shell (and closes it) or has already removed the session (and none starts).
        with self.bus.lock:
            if not self.is_current(session):
                return None
            self._shells[session.id] = shell
            self._shell_ready[session.id] = threading.Event()
            self._bridges[session.id] = bridge
            self.shell_state_changed(session, "connecting")
            try:
                shell.start()
                failure = None
            except ShellStartError as exc:
                failure = exc
                self._shells.pop(session.id, None)
                self._shell_ready.pop(session.id, None)
                self._shell_states.pop(session.id, None)
                self._bridges.pop(session.id, None)
        if failure is not None and refuse_if_out_of_resources and failure.out_of_resources:
            self.delete(session.id)
            raise ApiError(507, f"The server is out of resources for another shell ({failure}); "
                                "end some sessions or raise the process's limits")
        if failure is not None:
            self.set_state(session, "error")
            self.append_log(session, None, "system", f"The shell could not start: {failure}")
            return None
        if session.tmux is not None:
            self._attach_tmux(session, shell)
        return shell

    def _attach_tmux(self, session: Session, shell: TerminalShell) -> None:
        """Run `tmux attach` as the shell's first command (it waits for the shell to be
        ready): the terminal then shows the tmux session, and the shell's prompt comes back
        when the desk detaches this client or ends the session."""
        try:
            command = self.tmux.attach_command(session.tmux)
        except ApiError as exc:  # tmux was uninstalled since: say so, keep the shell
            self.append_log(session, None, "system", exc.description)
            return
        self.append_log(session, None, "system",
                        f"Attached to tmux session '{session.tmux}': the terminal view shares "
                        "its screen; deleting this session only detaches")
        with self.log_lock(session):
            with self.bus.lock:
                session.running_command = {"text": command, "startedAt": now_ms()}
            try:
                _submit(shell, command)
            except ApiError:
                with self.bus.lock:
                    session.running_command = None

    def _ready_shell(self, session: Session) -> TerminalShell:
        """The session's running shell, started if needed; ApiError 503 if it cannot start.

        A shell whose start-up files are slow (pyenv, nvm, conda) still takes commands: they
        run once it is ready, and the log says why they wait.
        """
        with self.bus.lock:
            shell = self._shells.get(session.id)
        if shell is None:
            shell = self._start_shell(session)
            if shell is None:
                raise ApiError(503, "The session's shell could not start; see its system log")
        with self.bus.lock:
            ready = self._shell_ready.get(session.id)
            if shell in self._slow_shells:
                return shell
        if ready is not None and not ready.wait(self.settings.shell_ready_timeout_s):
            with self.bus.lock:
                first = shell not in self._slow_shells
                self._slow_shells.add(shell)
            if first and self.is_current(session):
                self.append_log(session, None, "system", SLOW_START_NOTE)
        return shell

    def _running_shell(self, session: Session) -> TerminalShell | None:
        with self.bus.lock:
            return self._shells.get(session.id)

    # -- actions ----------------------------------------------------------------------------

    def create(self, name: str, cwd: str, tool_type: str, input_mode: str | None = None,
               groups: dict[str, str | None] | None = None, tmux: str | None = None) -> Session:
        """A new session; with `tmux`, a terminal session attached to that tmux session.

        :raise ApiError 400/404/501: a bad field, no such tmux session, no tmux installed.
        """
        _check_folder(cwd)
        if tool_type != TERMINAL_TOOL and tool_type not in self.settings.agents:
            known = [TERMINAL_TOOL, *self.settings.agents]
            raise ApiError(400, f"Unknown toolType '{tool_type}'; use one of {', '.join(known)}")
        mode = input_mode or ("terminal" if tool_type == TERMINAL_TOOL else "ai")
        _check_mode(mode)
        if tmux is not None:
            if tool_type != TERMINAL_TOOL:
                raise ApiError(400, "Only a terminal session (toolType 'terminal') attaches "
                                    "to tmux")
            self.tmux.require_session(tmux)
        session = Session.create(name, tool_type, mode, cwd)
        session.tmux = tmux
        _apply(session, groups or {})
        limit = self.settings.max_sessions
        with self.bus.lock:
            if len(self._sessions) >= limit:
                raise ApiError(409, f"There are already {limit} sessions, the most this server "
                                    "keeps (--max-sessions); delete one first")
            self._sessions[session.id] = session
            self.save(session)
            self.bus.publish("session:added", session=session.public())
        if mode == "terminal":
            self._start_shell(session, refuse_if_out_of_resources=True)
        return session

    def update(self, session_id: str, changes: dict[str, Any]) -> Session:
        session = self.get(session_id)
        if "cwd" in changes:
            _check_folder(changes["cwd"])
        if "inputMode" in changes:
            return self.switch_mode(session_id, changes.pop("inputMode"), changes)
        with self.bus.lock:
            _apply(session, changes)
        self._publish_changed(session)
        return session

    def switch_mode(self, session_id: str, mode: str,
                    changes: dict[str, Any] | None = None) -> Session:
        session = self.get(session_id)
        _check_mode(mode)
        with self.bus.lock:
            _apply(session, changes or {})
            session.input_mode = mode
        self._publish_changed(session)
        if mode == "terminal" and self._running_shell(session) is None:
            self._start_shell(session)
        return session

    def delete(self, session_id: str) -> None:
        session = self.get(session_id)
        with self.bus.lock:
            self._sessions.pop(session.id, None)
            shell = self._shells.pop(session.id, None)
            self._shell_ready.pop(session.id, None)
            self._shell_states.pop(session.id, None)
            self._bridges.pop(session.id, None)
            self._shell_echo.pop(session.id, None)
            self._sizes.pop(session.id, None)
            self._answerers.pop(session.id, None)
            self._pty_watchers.pop(session.id, None)
        if shell is not None:
            shell.close()
        self.agents.close(session)
        self.end_leftovers(session)
        self.store.delete_session(session.id)  # after the processes: their last output too
        with self._log_locks_guard:
            self._log_locks.pop(session.id, None)
        self.bus.publish("session:removed", sessionId=session.id)

    def set_live(self, session_id: str, live: bool) -> Session:
        session = self.get(session_id)
        with self.bus.lock:
            session.is_live = live
            session.live_enabled_at = now_ms() if live else None
            self.save(session)
            if live:
                self.bus.publish("session:live", sessionId=session.id,
                                 agentSessionId=session.agent_session_id,
                                 enabledAt=session.live_enabled_at)
            else:
                self.bus.publish("session:offline", sessionId=session.id)
        return session

    def _require_live(self, session: Session) -> None:
        if not session.is_live:
            raise ApiError(403, f"Session '{session.id}' is offline; make it live to control it")

    def send(self, session_id: str, command: Any, tab_id: str | None = None,
             input_mode: str | None = None) -> dict[str, Any]:
        """Run a command in the shell, or type it into the program that is running; in AI
        mode, prompt the tab's agent (at once, or queued while the tab is busy).

        :raise ApiError 400/413: the command is missing, not a string, or too long.
        """
        if not isinstance(command, str) or command == "":
            raise ApiError(400, "Command is required and must be a string")
        if "\x00" in command or not is_utf8(command):
            raise ApiError(400, "Command contains a NUL character or invalid Unicode")
        limit = self.settings.max_command_chars
        if len(command) > limit:
            raise ApiError(413, f"Command is longer than {limit} characters")
        session = self.get(session_id)
        self._require_live(session)
        mode = input_mode or session.input_mode
        _check_mode(mode)
        tab = self.get_tab(session, tab_id)
        if mode == "ai":
            if session.tool_type == TERMINAL_TOOL:
                raise ApiError(400, "A terminal session has no agent; send with "
                                    "inputMode 'terminal'")
            return self.agents.submit(session, tab, command)
        shell = self._ready_shell(session)
        with self.log_lock(session):
            # Marked running before the shell sees it: its first output may come at once,
            # and the bridge keeps output for history only while a command runs.
            with self.bus.lock:
                previous = session.running_command
                session.running_command = {"text": command, "startedAt": now_ms()}
            kind = "not sent"
            secret = shell.state in ("busy", "waiting_input") and shell.reads_secret()
            try:
                kind = _submit(shell, command)
            finally:
                if kind != "command":  # input for a running program, or not sent at all
                    with self.bus.lock:
                        session.running_command = previous
            secret = secret and kind == "input"
            entry = self.append_log(session, None, "user", SECRET_MASK if secret else command)
            if kind == "command":
                self.save(session)
        return {"mode": kind, "entryId": entry["id"], "secret": secret}

    def interrupt(self, session_id: str, tab_id: str | None = None) -> str | None:
        """Stop the running command, or in AI mode the running turn of the tab (of every
        tab when none is given); return the signal that stopped it, None if none ran."""
        session = self.get(session_id)
        self._require_live(session)
        if tab_id is not None:  # a tab means its agent turn, whatever the session's mode
            self.get_tab(session, tab_id)
            return self.agents.interrupt(session, tab_id)
        shell = self._running_shell(session)
        shell_busy = shell is not None and shell.state in ("busy", "waiting_input")
        if session.input_mode == "ai" or not shell_busy:
            stopped = self.agents.interrupt(session, None)
            if stopped is not None or not shell_busy:
                return stopped
        stopped_by = shell.interrupt() if shell is not None else None
        if stopped_by is not None:
            self.append_log(session, None, "system", f"Interrupted ({stopped_by})")
        return stopped_by

    def write_input(self, session_id: str, data: Any, answer_from: str | None = None) -> bool:
        """Type `data` into the session's terminal as it is (the terminal view's keys), whatever
        runs in it; starts the shell if none runs. Never logged: it may be a password.

        `answer_from`: `data` is a terminal's answer to a query of the program (DA, cursor
        position...) from this socket; it is dropped (False) unless that socket resized last.

        :raise ApiError 400/413: `data` is not a non-empty string, or too long.
        """
        if not isinstance(data, str) or data == "":
            raise ApiError(400, "'data' is required and must be a non-empty string")
        if len(data) > self.settings.max_command_chars:
            raise ApiError(413, f"'data' is longer than {self.settings.max_command_chars} "
                                "characters")
        session = self.get(session_id)
        self._require_live(session)
        if answer_from is not None:
            with self.bus.lock:
                if self._answerers.get(session.id, answer_from) != answer_from:
                    return False
        shell = self._running_shell(session) or self._start_shell(session)
        if shell is None:
            raise ApiError(503, "The session's shell could not start; see its system log")
        try:
            shell.write_input(data.encode("utf-8"))
        except ShellClosedError:
            raise ApiError(503, "The shell has just ended; type again to start a new one") from None
        except TimeoutError as exc:  # not reading, or dropped by a Stop: it says which
            raise ApiError(409, str(exc)) from None
        return True

    def resize(self, session_id: str, cols: Any, rows: Any,
               resizer: str | None = None) -> tuple[int, int]:
        """Give the session's terminal a size (the last client to resize wins); kept for
        the next shell when none runs. `resizer`: the socket that asked (None: REST), which
        becomes the one whose answers to terminal queries are passed on.

        :raise ApiError 400: cols or rows is not a whole number in range.
        """
        size = (_dimension(cols, "cols", MAX_COLS), _dimension(rows, "rows", MAX_ROWS))
        session = self.get(session_id)
        self._require_live(session)
        with self.bus.lock:
            self._sizes[session.id] = size
            if resizer is None:
                self._answerers.pop(session.id, None)
            else:
                self._answerers[session.id] = resizer
        shell = self._running_shell(session)
        if shell is not None:
            with contextlib.suppress(ShellClosedError):  # it just ended: the size is kept
                shell.resize(*size)
        return size

    def forget_answerer(self, resizer: str) -> None:
        """A socket closed: where its size was in force, any view answers queries again."""
        with self.bus.lock:
            for session_id in [key for key, value in self._answerers.items()
                               if value == resizer]:
                del self._answerers[session_id]

    def screen(self, session_id: str) -> dict[str, Any]:
        """The terminal's current screen (a blank one when no shell runs)."""
        session = self.get(session_id)
        shell = self._running_shell(session)
        if shell is not None:
            return {"sessionId": session.id, **shell.screen.snapshot()}
        with self.bus.lock:
            cols, rows = self._sizes.get(session.id, DEFAULT_SIZE)
        return {"sessionId": session.id, **ScreenModel(cols, rows).snapshot()}

    def send_keys(self, session_id: str, keys: list[str]) -> None:
        session = self.get(session_id)
        self._require_live(session)
        shell = self._running_shell(session)
        unknown = [key for key in keys if key not in KEYS]
        if unknown:
            raise ApiError(400, f"Unknown key '{unknown[0]}'; known keys: {', '.join(KEYS)}")
        try:
            if shell is None or shell.state not in ("busy", "waiting_input"):
                raise ApiError(409, "Nothing is running: keys go to a running program")
            shell.send_keys(keys)
        except ShellClosedError:
            raise ApiError(409, "Nothing is running: the shell has ended") from None
        except TimeoutError as exc:  # not reading, or dropped by a Stop: it says which
            raise ApiError(409, str(exc)) from None

    # -- tabs -------------------------------------------------------------------------------

    def new_tab(self, session_id: str, name: str | None = None) -> Tab:
        _check_name(name)
        session = self.get(session_id)
        tab = Tab(id=new_id(), name=name, created_at=now_ms())
        limit = self.settings.max_tabs
        with self.bus.lock:
            if len(session.tabs) >= limit:
                raise ApiError(409, f"This session already has {limit} tabs, the most it may "
                                    "have (--max-tabs); close one first")
            session.tabs.append(tab)
            session.active_tab_id = tab.id
        self.publish_tabs(session)
        return tab

    def update_tab(self, session_id: str, tab_id: str, changes: dict[str, Any]) -> Tab:
        """Rename or star a tab, or set its agent's permission mode and model (from the next
        turn; None: the agent's default).

        :raise ApiError 400: a name too long, a mode or model the agent cannot take.
        """
        session = self.get(session_id)
        tab = self.get_tab(session, tab_id)
        _check_name(changes.get("name"))
        self._check_agent_choices(session, changes)
        fields = {"name": "name", "starred": "starred", "permissionMode": "permission_mode",
                  "model": "model"}
        with self.bus.lock:
            for key, value in changes.items():
                setattr(tab, fields[key], value)
        self.publish_tabs(session)
        return tab

    def _check_agent_choices(self, session: Session, changes: dict[str, Any]) -> None:
        spec = self.settings.agents.get(session.tool_type)
        mode = changes.get("permissionMode")
        if mode is not None:
            modes = spec.permission_modes if spec else ()
            if not modes:
                raise ApiError(400, f"'{session.tool_type}' has no permission modes here: it "
                                    "runs once per prompt and cannot ask")
            if mode not in modes:
                raise ApiError(400, f"permissionMode must be one of {', '.join(modes)}")
        if changes.get("model") is not None and (spec is None or spec.model_flag is None):
            raise ApiError(400, f"'{session.tool_type}' cannot choose a model per tab")

    # -- approvals --------------------------------------------------------------------------

    def approvals(self, session_id: str) -> list[dict[str, Any]]:
        """The session's open approvals, oldest first."""
        return self.agents.list_approvals(self.get(session_id))

    def decide_approval(self, session_id: str, approval_id: str,
                        body: dict[str, Any]) -> dict[str, Any]:
        """The user's decision on an approval (allow, allow_session, deny).

        :raise ApiError 400/403/404/409: a bad decision, an offline session, an unknown or
            already decided approval.
        """
        session = self.get(session_id)
        self._require_live(session)
        return self.agents.decide(session, approval_id, body)

    def close_tab(self, session_id: str, tab_id: str) -> None:
        session = self.get(session_id)
        tab = self.get_tab(session, tab_id)
        with self.bus.lock:
            if len(session.tabs) == 1:
                raise ApiError(409, "A session always keeps at least one tab")
            index = session.tabs.index(tab)
            session.tabs.remove(tab)
            if session.active_tab_id == tab.id:
                session.active_tab_id = session.tabs[max(0, index - 1)].id
        self.agents.close(session, tab)
        self.store.delete_logs(session.id, tab.id)
        self.publish_tabs(session)

    def select_tab(self, session_id: str, tab_id: str) -> Tab:
        session = self.get(session_id)
        tab = self.get_tab(session, tab_id)
        with self.bus.lock:
            session.active_tab_id = tab.id
            tab.has_unread = False
        self.publish_tabs(session)
        return tab

    # -- life cycle -------------------------------------------------------------------------

    def restore(self) -> None:
        """Bring back every saved session; report commands a crash left unfinished."""
        self.end_leftovers()  # what a crashed (kill -9) run of this server left running
        sessions = [Session.from_doc(doc) for doc in self.store.load_sessions()]
        with self.bus.lock:
            self._sessions = {session.id: session for session in sessions}
        for session in sessions:
            try:
                self.record_interrupted(session, "the server stopped while it was running")
                if session.input_mode == "terminal":
                    self._start_shell(session)
                self.agents.restore(session)
            except Exception:  # one broken session must not keep the server from starting
                logger.exception("could not restore session %s", session.id)

    def announce_shutdown(self) -> None:
        """Tell clients that every live session goes offline (not persisted: they come back)."""
        with self.bus.lock:
            self.closing = True
            for session in self._sessions.values():
                if session.is_live:
                    self.bus.publish("session:offline", sessionId=session.id)

    def shutdown(self) -> None:
        """End every process and record the commands that were still running."""
        with self.bus.lock:
            self.closing = True
            sessions = list(self._sessions.values())
            shells = list(self._shells.values())
            self._shells.clear()
            bridges = dict(self._bridges)
        _close_all(shells)
        self.agents.shutdown()
        self.end_leftovers()
        for session in sessions:
            bridge = bridges.get(session.id)
            self.record_interrupted(session, "the server stopped",
                                    bridge.command_output() if bridge else "")


def _close_all(shells: Iterable[TerminalShell]) -> None:
    """Close shells in parallel: each may wait out its grace periods."""
    threads = [threading.Thread(target=shell.close, name="shell-close") for shell in shells]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _dimension(value: Any, name: str, highest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        raise ApiError(400, f"'{name}' must be a whole number from 1 to {highest}")
    return value


def _check_folder(path: str) -> None:
    if not os.path.isabs(path):
        raise ApiError(400, f"Folder must be a full path such as ~/code or /home/me/code, "
                            f"got '{path}'")
    if not os.path.isdir(path):
        raise ApiError(400, f"Folder '{path}' does not exist")


def _submit(shell: TerminalShell, text: str) -> str:
    """shell.submit, with its failures as API errors."""
    try:
        return shell.submit(text)
    except ShellClosedError:
        raise ApiError(503, "The shell has just ended; send again to start a new one") from None
    except TimeoutError as exc:  # not reading, or dropped by a Stop: it says which
        raise ApiError(409, str(exc)) from None


def is_utf8(text: str) -> bool:
    """False for lone surrogates, which neither SQLite nor a pty can take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_name(name: str | None) -> None:
    if name is not None and len(name) > NAME_MAX:
        raise ApiError(400, f"Names are at most {NAME_MAX} characters")


def _check_mode(mode: str) -> None:
    if mode not in INPUT_MODES:
        raise ApiError(400, f"inputMode must be 'ai' or 'terminal', got '{mode}'")


_FIELDS = {"name": "name", "cwd": "cwd", "groupId": "group_id", "groupName": "group_name",
           "groupEmoji": "group_emoji"}


def _apply(session: Session, changes: dict[str, Any]) -> None:
    """Set changed fields (bus lock held)."""
    moved = "cwd" in changes and changes["cwd"] != session.cwd
    for key, value in changes.items():
        setattr(session, _FIELDS[key], value)
    if moved:
        # The next shell starts in the new folder, and agents keep their conversations per
        # folder (Claude, Gemini): a saved id would not resume there, so tabs start afresh.
        session.shell_cwd = None
        session.agent_session_id = None
        for tab in session.tabs:
            tab.agent_session_id = None
