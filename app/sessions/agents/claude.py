"""Claude Code through its stream-json control protocol, so a turn can ask the user.

`claude -p --input-format stream-json --output-format stream-json --verbose
--permission-prompt-tool stdio [--resume ID] [--permission-mode M] [--model X]`: the prompt
goes to stdin as one `user` message line; a tool call that needs approval arrives on stdout as a
`control_request` `can_use_tool` and is answered on stdin with a `control_response` (allow with
`updatedInput`, or deny with `message`); an interrupt is a `control_request` `interrupt`. Once
the `result` line is out, stdin is closed and claude exits: one process per turn, resumed by
conversation id, so turns survive a server restart like the one-shot runs do.

We speak the protocol ourselves rather than through the `claude-agent-sdk` package: it is a few
JSON lines over pipes we already read and parse (the stream-json output is the one-shot
format), and the SDK would add an asyncio runtime and a dependency pinned to CLI versions.
AskUserQuestion becomes a `question` approval (the answers go back in `updatedInput.answers`),
ExitPlanMode a `plan` approval (Markdown; deny = keep planning).
"""

from __future__ import annotations

import itertools
from typing import Any

from .adapter import TurnRequest, TurnSink
from .approvals import PLAN_OPTIONS, TITLE_CHARS, ApprovalRequest, Decision
from .diffs import tool_diff
from .oneshot import ProcessTurn
from .parsers import Event, PermissionRequest, Result, one_line, tool_line
from .registry import AgentSpec
from .session_rules import suggested_rules

DENIED = "The user denied this from Maestro Web."
KEEP_PLANNING = "The user wants to keep planning: refine the plan before making changes."


class ClaudeControlAdapter(ProcessTurn):
    """One claude process per turn, answering its control requests."""

    _ids = itertools.count(1)

    def __init__(self, spec: AgentSpec, program: str) -> None:
        super().__init__(spec, program)
        self.cwd = ""
        self._asked: dict[str, PermissionRequest] = {}  # open requests by their request_id

    def start(self, turn: TurnRequest, sink: TurnSink) -> None:
        self.cwd = turn.cwd
        extra = [*(("--permission-mode", turn.permission_mode) if turn.permission_mode else ()),
                 *(("--model", turn.model) if turn.model else ())]
        argv = self.spec.argv(turn.prompt, turn.agent_session_id, tuple(extra))
        process = self.spawn(turn, sink, [self.program, *argv[1:]], talks=True)
        process.write_line({"type": "user", "message": {"role": "user", "content": turn.prompt}})

    def on_event(self, event: Event) -> None:
        if self.process is None or self.process.closing:
            return
        if isinstance(event, PermissionRequest):
            self._permission(event)
            return
        super().on_event(event)
        if isinstance(event, Result):
            self.process.close_stdin()  # the turn is over: claude exits

    def _permission(self, event: PermissionRequest) -> None:
        assert self.sink is not None and self.transcript is not None
        self.transcript.answer = None  # an answer that was streaming ends here
        if event.key in self._asked:
            return  # a request id still open: one answer per id, so it is asked once
        self._asked[event.key] = event
        decision = self.sink.open_approval(approval_request(event, self.cwd))
        if decision is not None:
            self.answer(event.key, decision)

    def answer(self, key: str, decision: Decision) -> None:
        asked = self._asked.pop(key, None)
        if asked is None or self.process is None:
            return
        self.process.write_line({"type": "control_response", "response": {
            "subtype": "success", "request_id": key, "response": _verdict(asked, decision)}})

    def interrupt(self) -> str | None:
        """The protocol's interrupt (claude ends the turn with a result, cancelling what it
        asked); SIGINT, SIGTERM, SIGKILL when it does not end within the grace period."""
        self._asked.clear()
        return self.stop_turn(lambda: self.process is not None and self.process.write_line({
            "type": "control_request", "request_id": f"interrupt-{next(self._ids)}",
            "request": {"subtype": "interrupt"}}))


def approval_request(event: PermissionRequest, cwd: str) -> ApprovalRequest:
    """How a `can_use_tool` request is shown: a question, a plan, or a permission."""
    arguments = event.input
    if event.tool == "AskUserQuestion":
        questions = [q for q in arguments.get("questions") or [] if isinstance(q, dict)]
        title = next((str(q["question"]) for q in questions if q.get("question")),
                     "Claude has a question")
        return ApprovalRequest(event.key, "question", event.tool, _short(title), arguments,
                               options=tuple(questions))
    if event.tool == "ExitPlanMode":
        plan = str(arguments.get("plan") or "")
        heading = next((line.lstrip("# ").strip() for line in plan.splitlines() if line.strip()),
                       "")
        return ApprovalRequest(event.key, "plan", event.tool,
                               _short(f"Plan: {heading}" if heading else "Plan ready"),
                               arguments, options=PLAN_OPTIONS)
    return ApprovalRequest(event.key, "permission", event.tool,
                           tool_line(event.tool, arguments), arguments,
                           diff=tool_diff(event.tool, arguments, cwd),
                           rules=suggested_rules(event.suggestions))


def _verdict(asked: PermissionRequest, decision: Decision) -> dict[str, Any]:
    """The control response's `response` for a decision."""
    if not decision.allows:
        default = KEEP_PLANNING if asked.tool == "ExitPlanMode" else DENIED
        return {"behavior": "deny", "message": decision.message or default}
    updated = dict(asked.input)
    if asked.tool == "AskUserQuestion" and decision.answers:
        updated["answers"] = dict(decision.answers)
    return {"behavior": "allow", "updatedInput": updated}


def _short(text: str) -> str:
    return one_line(text, TITLE_CHARS)
