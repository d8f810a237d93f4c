"""Connects one session's TerminalShell to the store and the bus.

The shell calls these methods from its reader thread. Each one persists first and publishes
second, so a client never sees output that a crash could lose.
"""

from __future__ import annotations

import base64
import signal
from typing import TYPE_CHECKING

from ..errors import now_ms
from .model import Session, new_id, summarize_response

if TYPE_CHECKING:
    from .manager import SessionManager

# A command's output kept for its history entry (the tail, when longer).
HISTORY_OUTPUT_CHARS = 64 * 1024


def signal_name(exit_code: int | None) -> str | None:
    """Shells report death by signal N as exit status 128 + N."""
    if exit_code is None or exit_code <= 128:
        return None
    try:
        return signal.Signals(exit_code - 128).name
    except ValueError:
        return None


class ShellBridge:
    """The TerminalListener of one session."""

    def __init__(self, manager: SessionManager, session: Session) -> None:
        self.manager = manager
        self.session = session
        # Output of the running command, for its history entry; reader thread only.
        self._output: list[str] = []
        self._output_chars = 0

    def on_output(self, text: str) -> None:
        if self.session.running_command is not None:  # not between commands (background jobs)
            self._output.append(text)
            self._output_chars += len(text)
            while self._output_chars > HISTORY_OUTPUT_CHARS and len(self._output) > 1:
                self._output_chars -= len(self._output.pop(0))
        self.manager.append_log(self.session, None, "stdout", text)

    def on_pty(self, data: bytes, offset: int, reset: bool) -> None:
        """The raw stream for the terminal view: not stored, kept only in the replay buffer,
        and published only while a socket watches it (a client that comes back after a gap
        paints GET screen), so unwatched floods cost no events."""
        if not self.manager.pty_watched(self.session):
            return
        self.manager.bus.publish("session:pty", sessionId=self.session.id, offset=offset,
                                 reset=reset, data=base64.b64encode(data).decode("ascii"))

    def on_command_begin(self) -> None:
        self._output, self._output_chars = [], 0

    def on_notice(self, text: str) -> None:
        self.manager.append_log(self.session, None, "system", text)

    def on_echo(self, echo: bool) -> None:
        self.manager.shell_echo_changed(self.session, echo)

    def command_output(self) -> str:
        """The running command's output so far (its tail when long)."""
        return "".join(self._output)[-HISTORY_OUTPUT_CHARS:]

    def on_state(self, state: str) -> None:
        self.manager.shell_state_changed(self.session, state)

    def on_command_done(self, exit_code: int, elapsed_ms: int, cwd: str) -> None:
        output = self.command_output()
        self._output, self._output_chars = [], 0
        manager, session = self.manager, self.session
        # The log lock waits out a send() that is still recording this command as running.
        with manager.log_lock(session), manager.bus.lock:
            command = session.running_command or {"text": ""}
            session.running_command = None
            session.shell_cwd = cwd or session.shell_cwd
            # For a command, the end of its output says most (a build's verdict, a test total).
            tail = "\n".join(output.rstrip("\n").split("\n")[-3:])
            preview = summarize_response(tail, "stdout", full_length=len(output))
            session.last_response = preview or session.last_response
            manager.save(session)
        signal_text = signal_name(exit_code)
        manager.bus.publish("session:exit", sessionId=session.id, tabId=None,
                            exitCode=exit_code, signal=signal_text, elapsedTimeMs=elapsed_ms)
        manager.add_history(session, {
            "summary": command["text"],
            "fullResponse": output,
            "success": exit_code == 0,
            "elapsedTimeMs": elapsed_ms,
            "exitCode": exit_code,
        })

    def on_shell_exit(self, exit_code: int | None) -> None:
        session = self.session
        if self.manager.closing:
            return
        command = session.running_command
        if command is not None and exit_code is not None:
            # `exit 3` ends the shell: that command finished, with the shell's status.
            elapsed_ms = max(0, now_ms() - command["startedAt"])
            self.on_command_done(exit_code, elapsed_ms, session.shell_cwd or session.cwd)
        elif command is not None:
            self.manager.record_interrupted(session, "the shell was killed while it ran",
                                            self.command_output())
        self.manager.shell_ended(session)
        code = "" if exit_code is None else f" (exit code {exit_code})"
        self.manager.append_log(
            session, None, "system", f"Shell exited{code}; a new one starts with the next command."
        )


def history_entry(session: Session, fields: dict) -> dict:
    """A history entry of the contract for a finished (or interrupted) command or turn."""
    return {
        "id": new_id(),
        "type": "USER",
        "timestamp": now_ms(),
        "agentSessionId": session.agent_session_id,
        "sessionName": session.name,
        "projectPath": session.cwd,
        "sessionId": session.id,
        "usageStats": None,
        **fields,
    }
