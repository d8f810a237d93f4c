"""The one small interface between the conductor and an agent's protocol.

The conductor starts a turn on an adapter (a one-shot CLI run, Claude Code's control protocol,
...) with a TurnRequest and a TurnSink. The adapter runs the agent its own way and reports only
through the sink: it never sees the session manager, the store or the bus. Adding an agent that
speaks a new protocol is one adapter module plus its entry in adapters.ADAPTERS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from .approvals import ApprovalRequest, Decision
from .parsers import Usage


@dataclasses.dataclass(frozen=True)
class TurnRequest:
    """One prompt to run in a tab's conversation, and how."""

    prompt: str
    cwd: str
    env: Mapping[str, str]
    agent_session_id: str | None  # None: a new conversation
    permission_mode: str | None  # None: the agent's own default (which asks)
    model: str | None  # None: the agent's own default
    interrupt_grace: float  # seconds each step of an interrupt may take


@dataclasses.dataclass(frozen=True)
class TurnEnd:
    """How a turn ended, as the conductor records it."""

    exit_code: int  # 128+N when killed by signal N
    stopped_by: str | None  # what stopped an interrupted turn: "interrupt", "SIGINT", ...
    failure: str | None  # why it failed, when the agent did not say so itself
    agent_failed: bool  # the agent's own verdict on the turn
    final_text: str

    @property
    def success(self) -> bool:
        """Exit 0 and the agent's verdict, unless the server stopped it (CLIs may exit 0
        after an interrupt); a failed tool call along the way does not fail the turn."""
        return self.exit_code == 0 and self.stopped_by is None and not self.agent_failed


class TurnSink(Protocol):
    """What an adapter may do to the tab it runs a turn for (reader threads call it)."""

    def append(self, source: str, text: str, **detail: Any) -> dict[str, Any]:
        """Log a new entry; returns it with its id."""

    def update(self, entry: dict[str, Any]) -> None:
        """Replace an entry logged before (same id): a growing answer, a finished tool."""

    def set_state(self, state: str) -> None:
        """The tab is `busy` (the agent has started answering)."""

    def set_conversation(self, agent_session_id: str,
                         slash_commands: tuple[str, ...] | None = None) -> None:
        """The agent's own conversation id, to resume the tab's next turn, and the slash
        commands it advertises (None: it did not say)."""

    def record_usage(self, usage: Usage) -> None:
        """Tokens and cost the agent reported."""

    def open_approval(self, request: ApprovalRequest) -> Decision | None:
        """The agent asks the user. Returns the decision at once when a rule the user chose
        covers the request; else None, and the decision comes later through
        AgentAdapter.answer(request.key, ...)."""

    def ended(self, end: TurnEnd) -> None:
        """The turn is over (called once, last)."""


class AgentAdapter(Protocol):
    """Runs the turns of one tab, one at a time, in the agent's own protocol."""

    program: str  # the program's name, for messages

    def start(self, turn: TurnRequest, sink: TurnSink) -> None:
        """Start the turn and send its prompt.

        :raise OSError, subprocess.SubprocessError: the agent could not be started.
        """

    def answer(self, key: str, decision: Decision) -> None:
        """Pass the user's decision on an approval the sink opened back to the agent."""

    def interrupt(self) -> str | None:
        """Stop the running turn (blocks up to a few grace periods); returns what stopped it,
        None when nothing ran. The sink's ended() still follows."""

    def close(self) -> None:
        """End the agent without reporting the turn (tab closed, session deleted, shutdown)."""

    @property
    def final_text(self) -> str:
        """The turn's answer so far."""
