"""AI turns: each prompt runs the session's agent CLI once, in the tab's conversation.

One turn runs per tab at a time; prompts sent meanwhile wait in the tab's FIFO queue
(persisted with the tab) and start when the turn ends. A turn's life, as clients see it:
`user` entry → tab and session `connecting` → first event: `busy` → streamed entries →
remaining output, `session:exit`, `history:added`, `tabs:change` (tab idle, usage summed),
session state → then the next queued prompt, if any.

Runtime state lives in `_turns` (tab id → running Turn, or None while one is starting),
guarded by the bus lock like the rest of the model; locks follow the manager's order.
"""

from __future__ import annotations

import collections
import logging
import os
import re
import shutil
import subprocess
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from ...errors import ApiError, now_ms
from ..model import Session, Tab, new_id, summarize_response
from ..procs import OWNER_VAR
from ..shell_bridge import signal_name
from .parsers import (
    Conversation,
    Event,
    Output,
    Result,
    ToolCall,
    Usage,
    add_usage,
    make_parser,
)
from .process import AgentProcess
from .registry import AgentSpec

if TYPE_CHECKING:
    from ..manager import SessionManager

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 5  # kept to say why an agent that exited non-zero failed
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class Turn:
    """The TurnListener of one prompt: collects its text and usage, logs its output.

    A streamed answer (Gemini's deltas, a plain-text agent's lines) is one `ai` entry that
    grows: its first piece is appended, later pieces update the same entry (same id), until
    anything but stderr comes between. A tool call is one `tool` entry, updated with its
    result.
    """

    def __init__(self, conductor: AgentConductor, session: Session, tab: Tab,
                 prompt: str) -> None:
        self.conductor = conductor
        self.session = session
        self.tab = tab
        self.prompt = prompt
        self.started = now_ms()
        self.process: AgentProcess | None = None
        self.texts: list[str] = []  # the turn's answers, as the agent gave them
        self.answer: dict[str, Any] | None = None  # the entry of the answer still streaming
        self.tool_entries: dict[str, dict[str, Any]] = {}  # tool call id → its entry
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.reported_error = False  # an `error` entry was logged
        self.usage: dict[str, Any] | None = None
        self.result: Result | None = None
        self.exit_ok = True
        self.started_output = False

    def on_event(self, event: Event) -> None:
        if self.process is not None and self.process.closing:
            return  # abandoned: its tab or session is gone
        if not self.started_output:
            self.started_output = True
            self.conductor.set_tab_state(self.session, self.tab, "busy")
        if isinstance(event, Output):
            self._output(event)
        elif isinstance(event, ToolCall):
            self._tool(event)
        elif isinstance(event, Conversation):
            self.conductor.set_conversation(self.session, self.tab, event.agent_session_id)
        elif isinstance(event, Usage):
            stats = self.conductor.turn_usage(self.tab, event)
            self.usage = add_usage(self.usage, stats)
        elif isinstance(event, Result):
            self.result = event
            if event.error and not self.interrupted:
                self._log("error", event.error)

    def on_exit(self, exit_code: int) -> None:
        self.conductor.finish(self, exit_code)

    def _output(self, event: Output) -> None:
        if event.source == "ai" and event.stream:
            self._answer_piece(event.text)
            return
        if event.source == "stderr":  # it does not split a streamed answer around it
            self.stderr_tail.extend(line for line in event.text.split("\n") if line.strip())
        else:
            self.answer = None
        if event.source == "ai":
            self.texts.append(event.text)
        if event.text.strip():
            self._log(event.source, event.text.rstrip("\n"))

    def _answer_piece(self, text: str) -> None:
        manager = self.conductor.manager
        if self.answer is None:
            if not text.strip():
                return  # blank lines before an answer
            self.texts.append(text)
            self.answer = manager.append_log(self.session, self.tab.id, "ai",
                                             text.rstrip("\n"))
            return
        self.texts[-1] += text
        grown = self.texts[-1].rstrip("\n")
        if grown != self.answer["text"]:
            self.answer = {**self.answer, "text": grown}
            manager.update_log(self.session, self.tab.id, self.answer)

    def _tool(self, call: ToolCall) -> None:
        self.answer = None
        manager = self.conductor.manager
        entry = self.tool_entries.get(call.call_id)
        if entry is None:
            self.tool_entries[call.call_id] = manager.append_log(
                self.session, self.tab.id, "tool", call.summary, **call.detail())
            return
        entry = {**entry, "text": call.summary, **call.detail()}
        self.tool_entries[call.call_id] = entry
        manager.update_log(self.session, self.tab.id, entry)

    def _log(self, source: str, text: str) -> None:
        self.reported_error = self.reported_error or source == "error"
        self.conductor.manager.append_log(self.session, self.tab.id, source, text)

    def exit_error(self, exit_code: int) -> str | None:
        """Why the turn failed, when the agent exited non-zero without saying so itself (a
        CLI refusing to run: an untrusted folder, a missing git repo, a bad option)."""
        if exit_code == 0 or self.interrupted or self.reported_error:
            return None
        program = os.path.basename(self.process.argv[0]) if self.process else "The agent"
        reason = _ESCAPES.sub("", self.stderr_tail[-1]).strip() if self.stderr_tail else ""
        return f"{program} exited with code {exit_code}" + (f": {reason}" if reason else "")

    @property
    def interrupted(self) -> bool:
        """The server signalled the turn (an interrupt): it did not end on its own."""
        return self.process is not None and self.process.sent_signal is not None

    @property
    def final_text(self) -> str:
        if self.result is not None and self.result.text:
            return self.result.text
        return "\n\n".join(text.strip("\n") for text in self.texts)

    @property
    def success(self) -> bool:
        """The agent's own verdict on the turn and its exit code, unless the server
        interrupted it (some CLIs exit 0 after SIGINT): a failed tool call along the way
        does not fail a turn the agent completed."""
        return self.exit_ok and not self.interrupted and not (
            self.result and self.result.is_error)


class AgentConductor:
    """Starts, queues, interrupts and ends the AI turns of every session."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.bus = manager.bus
        self._turns: dict[str, Turn | None] = {}

    # -- sending ----------------------------------------------------------------------------

    def submit(self, session: Session, tab: Tab, prompt: str) -> dict[str, Any]:
        """Run the prompt in the tab now, or queue it while a turn runs there.

        :raise ApiError 409: the tab's queue is full.
        """
        manager = self.manager
        limit = manager.settings.max_queued_prompts
        if manager.closing:
            raise ApiError(503, "The server is shutting down")
        with manager.log_lock(session):
            with self.bus.lock:
                busy = tab.id in self._turns
                if busy and len(tab.queue) >= limit:
                    raise ApiError(409, f"This tab already has {limit} prompts queued; wait "
                                        "for the running turn or interrupt it")
                if busy:
                    tab.queue.append({"id": new_id(), "text": prompt, "queuedAt": now_ms()})
                    position = len(tab.queue)
                else:
                    self._turns[tab.id] = None  # reserved: a concurrent send queues
            if busy:
                manager.publish_tabs(session)
                return {"mode": "prompt", "entryId": None, "queued": True,
                        "position": position}
            entry = self._start(session, tab, prompt)
        return {"mode": "prompt", "entryId": entry["id"] if entry else None, "queued": False,
                "position": None}

    def _start(self, session: Session, tab: Tab, prompt: str) -> dict[str, Any] | None:
        """Log the prompt and spawn the agent; the tab is reserved by the caller.

        Whatever goes wrong, the reservation is released (the tab never stays stuck).
        """
        try:
            return self._spawn(session, tab, prompt)
        except Exception:
            logger.exception("agent turn of tab %s could not start", tab.id)
            with self.bus.lock:
                tab.state, tab.thinking_start_time, tab.running_prompt = "idle", None, None
            self._not_started(session, tab, "The agent could not start (see the server log)")
            return None

    def _spawn(self, session: Session, tab: Tab, prompt: str) -> dict[str, Any]:
        manager = self.manager
        entry = manager.append_log(session, tab.id, "user", prompt)
        spec = manager.settings.agents.get(session.tool_type)
        program = shutil.which(spec.program) if spec is not None else None
        if spec is None or program is None:
            self._not_started(session, tab, self._missing(session.tool_type, spec))
            return entry
        turn = Turn(self, session, tab, prompt)
        turn.process = AgentProcess(
            [program, *spec.argv(prompt, tab.agent_session_id)[1:]], session.cwd,
            # PWD too: some CLIs (opencode) take their folder from it, not from the cwd.
            {**os.environ, **spec.env, "PWD": session.cwd, "MAESTRO_SESSION_ID": session.id,
             "MAESTRO_TAB_ID": tab.id, OWNER_VAR: manager.owner_tag(session, "agent")},
            make_parser(spec.format), turn, manager.settings.interrupt_grace_s)
        with self.bus.lock:
            if manager.closing or not manager.is_current(session, tab):
                self._turns.pop(tab.id, None)  # closed, deleted or stopping meanwhile
                return entry
            self._turns[tab.id] = turn
            tab.state, tab.thinking_start_time = "connecting", turn.started
            tab.running_prompt = {"text": prompt, "startedAt": turn.started}
            session.thinking_start_time = session.thinking_start_time or turn.started
        manager.publish_tabs(session)
        self.sync_state(session)
        try:
            turn.process.start()
        except (OSError, subprocess.SubprocessError) as exc:
            with self.bus.lock:
                tab.state, tab.thinking_start_time, tab.running_prompt = "idle", None, None
            self._not_started(session, tab, f"{spec.program} could not start: {exc}")
        return entry

    def _missing(self, tool_type: str, spec: AgentSpec | None) -> str:
        """Why the agent's program cannot be found, and how to tell us where it is."""
        config = self.manager.settings.config or "config.toml"
        if spec is None:
            return f"No agent '{tool_type}' is configured; add [agents.{tool_type}] to {config}"
        if spec.path:
            return (f"{spec.path} is not an executable program; fix [agents.{spec.id}] path "
                    f"in {config}")
        return (f"{spec.program} not found on PATH; install it or set [agents.{spec.id}] "
                f"path = \"/full/path/to/{spec.program}\" in {config}")

    def _not_started(self, session: Session, tab: Tab, reason: str) -> None:
        """The agent could not run: the session shows `error` and the tab says why."""
        with self.bus.lock:
            self._turns.pop(tab.id, None)
            session.thinking_start_time = self._thinking_since(session)
        if not self.manager.is_current(session, tab):
            return
        self.manager.append_log(session, tab.id, "system", reason)
        self.manager.publish_tabs(session)
        self.manager.set_state(session, "error")
        # Queued prompts are not dropped silently: each is logged and fails the same way.
        self._next(session, tab)

    # -- turn events (reader threads) -------------------------------------------------------

    def set_tab_state(self, session: Session, tab: Tab, state: str) -> None:
        with self.bus.lock:
            tab.state = state
        self.manager.publish_tabs(session)
        self.sync_state(session)

    def set_conversation(self, session: Session, tab: Tab, agent_session_id: str) -> None:
        with self.bus.lock:
            if tab.agent_session_id == agent_session_id:
                return
            tab.agent_session_id = agent_session_id
            session.agent_session_id = agent_session_id
        self.manager.publish_tabs(session)

    def finish(self, turn: Turn, exit_code: int) -> None:
        manager, session, tab = self.manager, turn.session, turn.tab
        elapsed = max(0, now_ms() - turn.started)
        turn.exit_ok = exit_code == 0
        sent = turn.process.sent_signal if turn.process else None
        with manager.log_lock(session):
            with self.bus.lock:
                if not manager.is_current(session, tab):
                    self._turns.pop(tab.id, None)
                    return  # deleted or closed as it ended: nothing left to report to
            failure = turn.exit_error(exit_code)
            if failure:
                manager.append_log(session, tab.id, "error", failure)
            if sent is not None:
                manager.append_log(session, tab.id, "system", f"Interrupted ({sent})")
            with self.bus.lock:
                self._turns.pop(tab.id, None)
                if turn.usage is not None:
                    tab.usage_stats = add_usage(tab.usage_stats, turn.usage)
                    session.usage_stats = add_usage(session.usage_stats, turn.usage)
                preview = summarize_response(turn.final_text, "ai")
                session.last_response = preview or session.last_response
                tab.state, tab.thinking_start_time, tab.running_prompt = "idle", None, None
                tab.has_unread = tab.has_unread or tab.id != session.active_tab_id
                session.thinking_start_time = self._thinking_since(session)
                manager.save(session)
            self.bus.publish("session:exit", sessionId=session.id, tabId=tab.id,
                             exitCode=exit_code, signal=signal_name(exit_code),
                             elapsedTimeMs=elapsed)
            manager.add_history(session, {
                "summary": turn.prompt, "fullResponse": turn.final_text,
                "success": turn.success, "elapsedTimeMs": elapsed, "exitCode": exit_code,
                "usageStats": turn.usage, "agentSessionId": tab.agent_session_id,
            })
            # Still under the log lock, so no new prompt can overtake the queued ones.
            self._next(session, tab)
            manager.publish_tabs(session)
            self.sync_state(session)

    def _next(self, session: Session, tab: Tab) -> None:
        """Start the tab's oldest queued prompt, if the tab is free and still exists."""
        manager = self.manager
        with manager.log_lock(session):
            with self.bus.lock:
                if (tab.id in self._turns or not tab.queue or manager.closing
                        or not manager.is_current(session, tab)):
                    return
                item = tab.queue.pop(0)
                self._turns[tab.id] = None
            self._start(session, tab, item["text"])

    def sync_state(self, session: Session) -> None:
        self.manager.refresh_state(session)

    def active_states(self, session: Session) -> list[str]:
        """The states of the session's running turns (bus lock held or taken)."""
        with self.bus.lock:
            return [tab.state for tab in session.tabs if tab.id in self._turns]

    def turn_usage(self, tab: Tab, event: Usage) -> dict[str, Any]:
        """A turn's own usage: CLIs that report the conversation's running total (Codex)
        are turned into the difference from the last total seen in that conversation."""
        if not event.cumulative:
            return event.stats
        with self.bus.lock:
            baseline = tab.usage_baseline if tab.usage_baseline_for == tab.agent_session_id \
                else None
            tab.usage_baseline, tab.usage_baseline_for = dict(event.stats), tab.agent_session_id
        if baseline is None:
            return event.stats
        return {key: (max(0, value - baseline.get(key, 0))
                      if isinstance(value, int | float) and key != "contextWindow" else value)
                for key, value in event.stats.items()}

    def _thinking_since(self, session: Session) -> int | None:
        """Bus lock held: when the oldest running turn of the session started."""
        times = [t.thinking_start_time for t in session.tabs
                 if t.id in self._turns and t.thinking_start_time is not None]
        return min(times) if times else None

    # -- interrupting and ending ------------------------------------------------------------

    def interrupt(self, session: Session, tab_id: str | None = None) -> str | None:
        """Stop the running turn of the tab (of every tab when None); the conversation
        stays resumable. Returns the signal that stopped it, None when nothing ran."""
        turns = [turn for turn in self._running(session, tab_id) if turn.process is not None]
        stopped: list[str | None] = [None] * len(turns)

        def stop(index: int) -> None:
            stopped[index] = turns[index].process.interrupt()

        _parallel([partial(stop, index) for index in range(len(turns))])
        order = ("SIGINT", "SIGTERM", "SIGKILL")
        return max((sig for sig in stopped if sig), key=order.index, default=None)

    def close(self, session: Session, tab: Tab | None = None) -> None:
        """End the session's (or one tab's) running turns without reporting them."""
        turns = self._running(session, tab.id if tab else None)
        _parallel([turn.process.close for turn in turns if turn.process is not None])
        with self.bus.lock:
            for turn in turns:
                self._turns.pop(turn.tab.id, None)
            session.thinking_start_time = self._thinking_since(session)
        if turns and self.manager.is_current(session):
            self.sync_state(session)

    def shutdown(self) -> None:
        """Server stop: end every turn; each is logged and recorded as interrupted."""
        with self.bus.lock:
            turns = [turn for turn in self._turns.values() if turn is not None]
        _parallel([turn.process.close for turn in turns if turn.process is not None])
        for turn in turns:
            self._record_interrupted(turn.session, turn.tab, "the server stopped",
                                     turn.final_text, turn.usage)

    def restore(self, session: Session) -> None:
        """After a restart: report turns a crash left unfinished, run prompts still queued."""
        for tab in list(session.tabs):
            self._record_interrupted(session, tab, "the server stopped while it was running")
            self._next(session, tab)

    def _record_interrupted(self, session: Session, tab: Tab, reason: str, output: str = "",
                            usage: dict[str, Any] | None = None) -> None:
        """A turn that never finished: a system entry and a failed history entry."""
        with self.bus.lock:
            running, tab.running_prompt = tab.running_prompt, None
            if running is not None:
                self.manager.save(session)
        if running is None:
            return
        self.manager.append_log(session, tab.id, "system", f"Turn interrupted ({reason})")
        self.manager.add_history(session, {
            "summary": running["text"], "fullResponse": output, "success": False,
            "elapsedTimeMs": max(0, now_ms() - running["startedAt"]), "exitCode": None,
            "usageStats": usage, "agentSessionId": tab.agent_session_id,
        })

    def _running(self, session: Session, tab_id: str | None) -> list[Turn]:
        with self.bus.lock:
            return [turn for key, turn in self._turns.items()
                    if turn is not None and turn.session is session
                    and (tab_id is None or key == tab_id)]


def _parallel(calls: list) -> None:
    """Run blocking calls side by side (each may wait out its grace periods)."""
    threads = [threading.Thread(target=call, name="agent-close") for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
