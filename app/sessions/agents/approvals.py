"""Approvals: what an agent asks the user (may I run this? which option? is the plan good?).

An adapter describes the request (ApprovalRequest); the conductor turns it into an Approval of
a session's tab, persisted and published until it is decided once: by the user, a timeout or
an interrupt. Decision is the answer that goes back to the adapter.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import ApiError
from .parsers import capped_input, capped_text, one_line

KINDS = ("permission", "question", "plan")
DECISIONS = ("allow", "allow_session", "deny")
# Who decided: the user, the approval timeout, or an interrupt (also a restart or a turn that
# ended while the approval was open).
DECIDERS = ("user", "timeout", "interrupt")
PERMISSION_OPTIONS = ({"decision": "allow", "label": "Allow"},
                      {"decision": "allow_session", "label": "Allow for this session"},
                      {"decision": "deny", "label": "Deny"})
PLAN_OPTIONS = ({"decision": "allow", "label": "Approve"},
                {"decision": "deny", "label": "Keep planning"})
MESSAGE_MAX = 10_000
# An approval's title is one line of at most this many characters; its input (as JSON) and
# diff are capped as a tool entry's are (parsers.TOOL_DETAIL_BYTES), with `inputCut: true`.
TITLE_CHARS = 200


@dataclasses.dataclass(frozen=True)
class ApprovalRequest:
    """What the agent asks, as the user sees it. `key` is the adapter's own id for it;
    `rules` are what `allow_session` remembers besides the identical call (the CLI's own
    suggestions: {"tool", "content"})."""

    key: str
    kind: str
    tool: str
    title: str
    input: dict[str, Any]
    diff: str | None = None
    options: tuple[dict[str, Any], ...] = PERMISSION_OPTIONS
    rules: tuple[dict[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class Decision:
    """The answer to an approval: `message` tells the agent why (deny), `answers` maps each
    question to the answer chosen or typed (question)."""

    decision: str
    message: str | None = None
    answers: dict[str, str] | None = None

    @property
    def allows(self) -> bool:
        return self.decision != "deny"


@dataclasses.dataclass
class Approval:
    """An approval of one tab; mutate only under the bus lock."""

    id: str
    session_id: str
    tab_id: str
    created_at: int
    request: ApprovalRequest
    decision: Decision | None = None
    decided_by: str | None = None
    decided_at: int | None = None

    def public(self) -> dict[str, Any]:
        """Its API form (also what is stored): the input, title and diff capped (what the
        agent sent is unchanged, and what it gets back after `allow`)."""
        request = self.request
        shown, cut = capped_input(request.input)
        diff, diff_cut = capped_text(request.diff)
        item = {"id": self.id, "sessionId": self.session_id, "tabId": self.tab_id,
                "kind": request.kind, "tool": request.tool,
                "title": one_line(request.title, TITLE_CHARS),
                "input": shown, "diff": diff,
                "options": [dict(option) for option in request.options],
                "createdAt": self.created_at}
        if cut or diff_cut:
            item["inputCut"] = True
        if self.decision is not None:
            item.update(decision=self.decision.decision, message=self.decision.message,
                        answers=self.decision.answers, by=self.decided_by,
                        decidedAt=self.decided_at)
        return item


def decision_from(body: dict[str, Any], kind: str) -> Decision:
    """The decision in a request body (REST or WebSocket) for an approval of `kind`.

    :raise ApiError 400: naming what is wrong.
    """
    decision = body.get("decision")
    allowed = DECISIONS if kind == "permission" else ("allow", "deny")
    if decision not in allowed:
        raise ApiError(400, f"'decision' must be one of {', '.join(allowed)} for a {kind}")
    message = body.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > MESSAGE_MAX):
        raise ApiError(400, f"'message' must be a string of at most {MESSAGE_MAX} characters")
    answers = body.get("answers")
    if answers is not None and not (isinstance(answers, dict) and all(
            isinstance(value, str) and len(value) <= MESSAGE_MAX for value in answers.values())):
        raise ApiError(400, "'answers' must be an object of strings (question → answer)")
    if kind == "question" and decision == "allow" and not answers:
        raise ApiError(400, "Answer a question with 'answers': {\"<question>\": \"<answer>\"}")
    return Decision(decision, message or None, answers or None)
