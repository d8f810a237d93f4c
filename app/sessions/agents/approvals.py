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
# What an agent offers to choose from (AskUserQuestion's questions, each with its options) is
# shown capped too, with `optionsCut: true`: at most this many entries per list, and strings of
# at most OPTION_CHARS (the agent gets the answer the user gave).
OPTIONS_MAX = 20
OPTION_CHARS = 1000


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
        options, options_cut = capped_options(request.options)
        item = {"id": self.id, "sessionId": self.session_id, "tabId": self.tab_id,
                "kind": request.kind, "tool": request.tool,
                "title": one_line(request.title, TITLE_CHARS),
                "input": shown, "diff": diff,
                "options": options,
                "createdAt": self.created_at}
        if cut or diff_cut:
            item["inputCut"] = True
        if options_cut:
            item["optionsCut"] = True
        if self.decision is not None:
            item.update(decision=self.decision.decision, message=self.decision.message,
                        answers=self.decision.answers, by=self.decided_by,
                        decidedAt=self.decided_at)
        return item


def capped_options(options: Any, nested: bool = True) -> tuple[list[dict[str, Any]], bool]:
    """The options as shown: at most OPTIONS_MAX objects, each keeping its strings (cut to
    OPTION_CHARS), numbers, booleans and, one level down only (a question's choices), an
    `options` list capped the same way; and whether anything was cut or left out."""
    if not isinstance(options, (list, tuple)):
        return [], True
    cut = len(options) > OPTIONS_MAX
    shown = []
    for option in options[:OPTIONS_MAX]:
        if not isinstance(option, dict):
            cut = True
            continue
        kept: dict[str, Any] = {}
        for key, value in list(option.items())[:OPTIONS_MAX]:
            if key == "options" and nested:
                value, nested_cut = capped_options(value, nested=False)
                cut = cut or nested_cut
            elif isinstance(value, str):
                cut = cut or len(value) > OPTION_CHARS
                value = value[:OPTION_CHARS]
            elif value is not None and not isinstance(value, (bool, int, float)):
                cut = True
                continue
            kept[str(key)[:OPTION_CHARS]] = value
        cut = cut or len(option) > OPTIONS_MAX
        shown.append(kept)
    return shown, cut


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
