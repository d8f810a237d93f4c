"""AI turns: each prompt runs in the tab's conversation through the agent's adapter.

One turn runs per tab at a time; prompts sent meanwhile wait in the tab's FIFO queue
(persisted with the tab) and start when the turn ends. A turn's life, as clients see it:
`user` entry → tab and session `connecting` → first event: `busy` → streamed entries (and,
while the agent asks the user, `waiting_input` with an open approval) → remaining output,
`session:exit`, `history:added`, `tabs:change` (tab idle, usage summed), session state → then
the next queued prompt, if any.

The adapter (adapters.py) speaks the agent's protocol; the Turn below is its sink, the only
way it reaches the tab. Runtime state lives in `_turns` (tab id → running Turn, or None while
one is starting), guarded by the bus lock like the rest of the model; locks follow the
manager's order.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from ...errors import ApiError, now_ms
from ..model import Session, Tab, new_id, summarize_response
from ..procs import OWNER_VAR
from ..shell_bridge import signal_name
from .adapter import AgentAdapter, TurnEnd, TurnRequest
from .adapters import make_adapter
from .approval_desk import ApprovalDesk
from .approvals import Approval, ApprovalRequest, Decision, decision_from
from .parsers import Usage, add_usage
from .registry import AgentSpec
from .session_rules import covers, remembered

if TYPE_CHECKING:
    from ..manager import SessionManager

logger = logging.getLogger(__name__)


class Turn:
    """One prompt's run in a tab: the TurnSink its adapter reports through."""

    def __init__(self, conductor: AgentConductor, session: Session, tab: Tab, prompt: str,
                 adapter: AgentAdapter) -> None:
        self.conductor = conductor
        self.manager = conductor.manager
        self.session = session
        self.tab = tab
        self.prompt = prompt
        self.adapter = adapter
        self.started = now_ms()
        self.usage: dict[str, Any] | None = None
        self.last_error: str | None = None  # the agent's last reported error, for the card

    def append(self, source: str, text: str, **detail: Any) -> dict[str, Any]:
        if source == "error":
            self.last_error = text
        return self.manager.append_log(self.session, self.tab.id, source, text, **detail)

    def update(self, entry: dict[str, Any]) -> None:
        self.manager.update_log(self.session, self.tab.id, entry)

    def set_state(self, state: str) -> None:
        self.conductor.set_tab_state(self.session, self.tab, state)

    def set_conversation(self, agent_session_id: str,
                         slash_commands: tuple[str, ...] | None = None) -> None:
        self.conductor.set_conversation(self.session, self.tab, agent_session_id,
                                        slash_commands)

    def record_usage(self, usage: Usage) -> None:
        stats = self.conductor.turn_usage(self.tab, usage)
        self.usage = add_usage(self.usage, stats)

    def open_approval(self, request: ApprovalRequest) -> Decision | None:
        return self.conductor.open_approval(self, request)

    def ended(self, end: TurnEnd) -> None:
        self.conductor.finish(self, end)


class AgentConductor:
    """Starts, queues, interrupts and ends the AI turns of every session."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.bus = manager.bus
        self._turns: dict[str, Turn | None] = {}
        self.approvals = ApprovalDesk(manager.store, manager.bus,
                                      manager.settings.approval_timeout_s, self._timed_out)

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
        turn = Turn(self, session, tab, prompt, make_adapter(spec, program))
        request = TurnRequest(
            prompt, session.cwd,
            # PWD too: some CLIs (opencode) take their folder from it, not from the cwd.
            {**os.environ, **spec.env, "PWD": session.cwd, "MAESTRO_SESSION_ID": session.id,
             "MAESTRO_TAB_ID": tab.id, OWNER_VAR: manager.owner_tag(session, "agent")},
            tab.agent_session_id, tab.permission_mode or spec.permission_mode,
            tab.model or spec.model, manager.settings.interrupt_grace_s)
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
            turn.adapter.start(request, turn)
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

    def set_conversation(self, session: Session, tab: Tab, agent_session_id: str,
                         slash_commands: tuple[str, ...] | None = None) -> None:
        commands = list(slash_commands) if slash_commands is not None else tab.slash_commands
        with self.bus.lock:
            if (tab.agent_session_id, tab.slash_commands) == (agent_session_id, commands):
                return
            tab.slash_commands = commands
            tab.agent_session_id = agent_session_id
            session.agent_session_id = agent_session_id
        self.manager.publish_tabs(session)

    def finish(self, turn: Turn, end: TurnEnd) -> None:
        manager, session, tab = self.manager, turn.session, turn.tab
        elapsed = max(0, now_ms() - turn.started)
        self.approvals.withdraw(session.id, tab.id)  # the agent can no longer be answered
        with manager.log_lock(session):
            with self.bus.lock:
                if not manager.is_current(session, tab):
                    self._turns.pop(tab.id, None)
                    return  # deleted or closed as it ended: nothing left to report to
            if end.failure:
                manager.append_log(session, tab.id, "error", end.failure)
            if end.stopped_by is not None:
                manager.append_log(session, tab.id, "system", f"Interrupted ({end.stopped_by})")
            with self.bus.lock:
                self._turns.pop(tab.id, None)
                if turn.usage is not None:
                    tab.usage_stats = add_usage(tab.usage_stats, turn.usage)
                    session.usage_stats = add_usage(session.usage_stats, turn.usage)
                # A failed turn's card shows why it failed (until the next turn ends), never
                # the half answer that came before the failure.
                failure = end.failure or turn.last_error or f"Failed (exit {end.exit_code})"
                preview = (summarize_response(failure.strip().split("\n")[0], "error")
                           if not end.success and end.stopped_by is None
                           else summarize_response(end.final_text, "ai"))
                if preview or (session.last_response or {}).get("source") == "error":
                    session.last_response = preview  # a silent success clears the failure
                tab.state, tab.thinking_start_time, tab.running_prompt = "idle", None, None
                tab.has_unread = tab.has_unread or tab.id != session.active_tab_id
                session.thinking_start_time = self._thinking_since(session)
                manager.save(session)
            self.bus.publish("session:exit", sessionId=session.id, tabId=tab.id,
                             exitCode=end.exit_code, signal=signal_name(end.exit_code),
                             elapsedTimeMs=elapsed)
            manager.add_history(session, {
                "summary": turn.prompt, "fullResponse": end.final_text,
                "success": end.success, "elapsedTimeMs": elapsed, "exitCode": end.exit_code,
                "usageStats": turn.usage, "agentSessionId": tab.agent_session_id,
            })
            # Still under the log lock, so no new prompt can overtake the queued ones.
            self._next(session, tab)
            manager.publish_tabs(session)
            self.sync_state(session)

    # -- approvals --------------------------------------------------------------------------

    def open_approval(self, turn: Turn, request: ApprovalRequest) -> Decision | None:
        """The agent asks: allowed at once by a rule the user chose for this conversation,
        denied at once when the tab already holds `max_open_approvals` (a burst of requests
        must not flood the store and every client), else an open approval (the tab
        `waiting_input`) until decided."""
        session, tab = turn.session, turn.tab
        with self.bus.lock:
            rules = tab.session_rules if tab.session_rules_for == tab.agent_session_id else []
            if covers(rules, request.tool, request.input):
                return Decision("allow")
        cap = self.manager.settings.max_open_approvals
        if len(self.approvals.open_approvals(session.id, tab.id)) >= cap:
            return Decision("deny", f"More than {cap} requests waiting for an answer: "
                                    "denied by Maestro Web (--max-open-approvals)")
        approval = Approval(new_id(), session.id, tab.id, now_ms(), request)
        # Waiting before anyone can decide, so a quick decision's `busy` is the last word.
        self.set_tab_state(session, tab, "waiting_input")
        self.approvals.open(approval, partial(turn.adapter.answer, request.key))
        return None

    def list_approvals(self, session: Session) -> list[dict[str, Any]]:
        return [approval.public() for approval in self.approvals.open_approvals(session.id)]

    def decide(self, session: Session, approval_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The user decides an open approval; the decision goes to the agent.

        :raise ApiError 400: a decision that does not fit the approval; 404, 409.
        """
        approval = self.approvals.find(session.id, approval_id)
        decision = decision_from(body, approval.request.kind)
        return self._decided(session, approval_id, decision, "user")

    def _timed_out(self, approval: Approval) -> None:
        """The approval timeout fired (a timer thread): the request is denied."""
        timeout = self.manager.settings.approval_timeout_s
        try:
            session = self.manager.get(approval.session_id)
            self._decided(session, approval.id, Decision(
                "deny", f"No answer within {timeout:g} s: denied by Maestro Web"), "timeout")
        except ApiError:
            return  # decided, or its session deleted, meanwhile

    def _decided(self, session: Session, approval_id: str, decision: Decision,
                 by: str) -> dict[str, Any]:
        approval, answer = self.approvals.decide(session.id, approval_id, decision, by)
        tab = session.tab(approval.tab_id)
        if tab is not None and decision.decision == "allow_session":
            with self.bus.lock:
                if tab.session_rules_for != tab.agent_session_id:
                    tab.session_rules, tab.session_rules_for = [], tab.agent_session_id
                tab.session_rules = [*tab.session_rules, *remembered(approval.request)]
        answer(decision)
        if tab is not None:
            self._resume_tab(session, tab)
        return approval.public()

    def _resume_tab(self, session: Session, tab: Tab) -> None:
        """After a decision: back to `busy` unless another approval of the tab is open."""
        with self.bus.lock:
            running = self._turns.get(tab.id) is not None
        if running and not self.approvals.open_approvals(session.id, tab.id):
            self.set_tab_state(session, tab, "busy")
        else:
            self.manager.publish_tabs(session)  # saves the tab (and rules it remembered)

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
        """Stop the running turn of the tab (of every tab when None), denying what it asked;
        the conversation stays resumable. Returns what stopped it ("interrupt": the agent's
        own protocol, else the signal), None when nothing ran."""
        turns = self._running(session, tab_id)
        for turn in turns:
            if self.approvals.withdraw(session.id, turn.tab.id):
                self._resume_tab(session, turn.tab)
        stopped: list[str | None] = [None] * len(turns)

        def stop(index: int) -> None:
            stopped[index] = turns[index].adapter.interrupt()

        _parallel([partial(stop, index) for index in range(len(turns))])
        order = ("interrupt", "SIGINT", "SIGTERM", "SIGKILL")
        return max((sig for sig in stopped if sig), key=order.index, default=None)

    def close(self, session: Session, tab: Tab | None = None) -> None:
        """End the session's (or one tab's) running turns without reporting them."""
        turns = self._running(session, tab.id if tab else None)
        for turn in turns:
            self.approvals.withdraw(session.id, turn.tab.id)
        _parallel([turn.adapter.close for turn in turns])
        with self.bus.lock:
            for turn in turns:
                self._turns.pop(turn.tab.id, None)
            session.thinking_start_time = self._thinking_since(session)
        if turns and self.manager.is_current(session):
            self.sync_state(session)

    def shutdown(self) -> None:
        """Server stop: end every turn; each is logged and recorded as interrupted, and
        what it asked is closed."""
        with self.bus.lock:
            turns = [turn for turn in self._turns.values() if turn is not None]
        for turn in turns:
            self.approvals.withdraw(turn.session.id, turn.tab.id)
        _parallel([turn.adapter.close for turn in turns])
        for turn in turns:
            self._record_interrupted(turn.session, turn.tab, "the server stopped",
                                     turn.adapter.final_text, turn.usage)

    def restore(self, session: Session) -> None:
        """After a restart: close approvals and report turns a crash left unfinished, run
        prompts still queued."""
        self.approvals.close_stale(session.id)
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
