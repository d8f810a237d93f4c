"""Codex through `codex app-server` (JSON-RPC 2.0 over stdio), so a turn can ask the user.

One `codex app-server` process per turn: `initialize` (+ `initialized`), then `thread/start`
(a new conversation) or `thread/resume` (the tab's thread id, also after a server restart: Codex
keeps its threads in CODEX_HOME), then `turn/start` with the prompt. Codex streams notifications
(`item/started`, `item/completed`, `item/agentMessage/delta`, `thread/tokenUsage/updated`,
`turn/completed`, ...) and asks with server requests: `item/commandExecution/requestApproval`
and `item/fileChange/requestApproval`, answered `accept`, `acceptForSession` or `decline`. Once
`turn/completed` is in, stdin is closed and the server exits. An interrupt is `turn/interrupt`.

We speak the protocol ourselves (JSON lines over the pipes AgentProcess already reads); its
shapes come from `codex app-server generate-json-schema` (codex-cli 0.171.0). Codex's `decline`
carries no message: a deny with a message first steers the turn (`turn/steer`) with that message,
so the model reads it right after the refused call's result.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

from .adapter import TurnRequest, TurnSink
from .approvals import ApprovalRequest, Decision
from .diffs import change_diff
from .oneshot import ProcessTurn
from .parsers import (
    Conversation,
    Event,
    JsonLinesParser,
    Output,
    Result,
    ToolCall,
    codex_tool_call,
    tool_line,
    usage,
)
from .registry import CODEX_PERMISSION_MODES, AgentSpec

# Each permission mode of a tab (CODEX_PERMISSION_MODES): Codex's approval policy and sandbox
# (see docs/API.md). A tab without a mode gets the first, which asks.
CODEX_MODES: dict[str, tuple[str, str]] = {
    "untrusted": ("untrusted", "workspace-write"),  # asks before all but known-safe reads
    "on-request": ("on-request", "workspace-write"),  # asks only to leave the sandbox
    "read-only": ("on-request", "read-only"),  # reads freely, asks before anything else
    "never": ("never", "workspace-write"),  # never asks: what the sandbox refuses fails
    "danger-full-access": ("never", "danger-full-access"),  # never asks, no sandbox
}
DEFAULT_MODE = CODEX_PERMISSION_MODES[0]
assert tuple(CODEX_MODES) == CODEX_PERMISSION_MODES
CLIENT_INFO = {"name": "maestro-web", "title": "Maestro Web", "version": "1"}
DENIED_PREFIX = "The user denied this from Maestro Web: "
UNSUPPORTED = -32601  # JSON-RPC "method not found": a server request we do not handle
_VERBS = {"add": "Add", "delete": "Delete", "update": "Edit"}


@dataclasses.dataclass(frozen=True)
class RpcReply:
    """Codex's answer to one of our requests."""

    id: Any
    result: Any
    error: dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class RpcRequest:
    """A request from Codex (an approval, or something we answer "not supported")."""

    id: Any
    method: str
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TurnStarted:
    turn_id: str


class AppServerParser(JsonLinesParser):
    """Codex's JSON-RPC messages as events; items map to the entries `codex exec` gave."""

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        self.file_changes: dict[str, list[dict[str, Any]]] = {}  # item id → its changes
        self._streamed: set[str] = set()  # agent messages that arrived as deltas
        self._error: str | None = None  # the last error notification of the turn

    def event(self, message: dict[str, Any]) -> list[Any]:
        method = message.get("method")
        if "id" in message and method is None:
            error = message.get("error")
            return [RpcReply(message["id"], message.get("result"),
                             error if isinstance(error, dict) else None)]
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if "id" in message:
            return [RpcRequest(message["id"], str(method), params)]
        return self._notification(str(method), params)

    def _notification(self, method: str, params: dict[str, Any]) -> list[Any]:
        if method == "thread/started":
            thread = _obj(params.get("thread"))
            return [Conversation(str(thread["id"]))] if thread.get("id") else []
        if method == "turn/started":
            turn = _obj(params.get("turn"))
            return [TurnStarted(str(turn["id"]))] if turn.get("id") else []
        if method == "item/agentMessage/delta" and params.get("delta"):
            self._streamed.add(str(params.get("itemId")))
            return [Output("ai", str(params["delta"]), stream=True)]
        if method in ("item/started", "item/completed"):
            item = params.get("item")
            return self._item(item, method == "item/completed") if isinstance(item, dict) else []
        if method == "thread/tokenUsage/updated":
            return self._usage(_obj(params.get("tokenUsage")))
        if method == "turn/completed":
            return [self._turn_end(_obj(params.get("turn")))]
        if method == "error":
            text = str(_obj(params.get("error")).get("message") or "error")
            if params.get("willRetry"):
                return [Output("system", text)]
            self._error = text  # the failed turn's end says it
            return []
        if method in ("warning", "deprecationNotice", "model/rerouted"):
            text = params.get("message") or params.get("summary")
            return [Output("system", str(text))] if text else []
        return []

    @staticmethod
    def _usage(tokens: dict[str, Any]) -> list[Event]:
        """`last` is one model response's usage: a turn's usage is their sum. Codex counts
        the cached and the cache-written part in its input: taken out, as for `codex exec`."""
        last = tokens.get("last")
        if not isinstance(last, dict):
            return []
        cached, written = last.get("cachedInputTokens"), last.get("cacheWriteInputTokens")
        counts = [value if isinstance(value, int) else 0
                  for value in (last.get("inputTokens"), cached, written)]
        return [usage(counts[0] - counts[1] - counts[2], last.get("outputTokens"), cached,
                      written, None, tokens.get("modelContextWindow"))]

    def _turn_end(self, turn: dict[str, Any]) -> Result:
        status = turn.get("status")
        if status == "completed":
            return Result(None, False)
        if status == "interrupted":  # the server's own interrupt: no error of the agent's
            return Result(None, True)
        error = _obj(turn.get("error")).get("message") or self._error or "the turn failed"
        return Result(None, True, str(error))

    def _item(self, item: dict[str, Any], done: bool) -> list[Event]:
        kind, item_id = item.get("type"), str(item.get("id") or "")
        status = item.get("status")
        if kind == "commandExecution":
            code = item.get("exitCode")
            refused = status == "declined"
            failed = done and (refused or status == "failed" or code not in (0, None))
            note = " (declined)" if refused else f" (exit code {code})" if failed else ""
            return [ToolCall(item_id, "command_execution", {"command": item.get("command")},
                             label="$", done=done,
                             result=str(item.get("aggregatedOutput") or "") if done else None,
                             is_error=failed, note=note)]
        if kind == "fileChange":
            changes = [c for c in _list(item.get("changes")) if isinstance(c, dict)]
            self.file_changes[item_id] = changes
            return [self.file_change(f"{item_id}:{n}", change, done, status)
                    for n, change in enumerate(changes)]
        if kind in ("mcpToolCall", "webSearch"):
            return [codex_tool_call(item, done)]
        if not done:
            return []
        if kind == "agentMessage" and item.get("text") and item_id not in self._streamed:
            return [Output("ai", str(item["text"]))]
        if kind == "reasoning":
            parts = _list(item.get("summary")) or _list(item.get("content"))
            text = "\n\n".join(part for part in parts if isinstance(part, str) and part)
            return [Output("thinking", text)] if text else []
        return []

    def file_change(self, call_id: str, change: dict[str, Any], done: bool,
                     status: Any) -> ToolCall:
        kind = str(_obj(change.get("kind")).get("type") or "update")
        path = str(change.get("path") or "")
        return ToolCall(call_id, "file_change", {"path": path, "kind": kind},
                        label=_VERBS.get(kind, "Edit"), done=done,
                        is_error=done and status in ("failed", "declined"),
                        note=" (declined)" if done and status == "declined" else "",
                        diff=change_diff(path, kind, str(change.get("diff") or ""), self.cwd))


class CodexAppServerAdapter(ProcessTurn):
    """One `codex app-server` per turn, answering its approval requests."""

    def __init__(self, spec: AgentSpec, program: str) -> None:
        super().__init__(spec, program)
        self._ids = itertools.count(1)
        # Our requests waiting for Codex's reply: id → (method, on result, on error).
        self._calls: dict[int, tuple[str, Callable[[Any], None],
                                     Callable[[dict[str, Any]], None] | None]] = {}
        self._asked: dict[str, RpcRequest] = {}  # open approvals by their key
        self.parser: AppServerParser | None = None
        self.turn: TurnRequest | None = None
        self.thread_id: str | None = None
        self.turn_id: str | None = None

    def start(self, turn: TurnRequest, sink: TurnSink) -> None:
        self.turn = turn
        self.parser = AppServerParser(turn.cwd)
        argv = self.spec.argv(turn.prompt, turn.agent_session_id)
        self.spawn(turn, sink, [self.program, *argv[1:]], talks=True, parser=self.parser)
        self._call("initialize", {"clientInfo": CLIENT_INFO}, self._initialized)

    # -- the conversation: initialize → thread → turn ----------------------------------------

    def _initialized(self, _result: Any) -> None:
        assert self.turn is not None
        self._send({"method": "initialized"})
        policy, sandbox = CODEX_MODES.get(self.turn.permission_mode or DEFAULT_MODE,
                                          CODEX_MODES[DEFAULT_MODE])
        params: dict[str, Any] = {"cwd": self.turn.cwd, "approvalPolicy": policy,
                                  "sandbox": sandbox}
        if self.turn.model:
            params["model"] = self.turn.model
        if self.turn.agent_session_id:
            self._call("thread/resume", {**params, "threadId": self.turn.agent_session_id},
                       self._thread_ready)
        else:
            self._call("thread/start", params, self._thread_ready)

    def _thread_ready(self, result: Any) -> None:
        assert self.turn is not None
        thread_id = _obj(_obj(result).get("thread")).get("id")
        if not thread_id:
            self._fail("codex app-server started no thread")
            return
        self.thread_id = str(thread_id)
        super().on_event(Conversation(self.thread_id))
        params: dict[str, Any] = {"threadId": self.thread_id,
                                  "input": [{"type": "text", "text": self.turn.prompt}]}
        if self.turn.model:
            params["model"] = self.turn.model
        self._call("turn/start", params, self._turn_started)

    def _turn_started(self, result: Any) -> None:
        turn_id = _obj(_obj(result).get("turn")).get("id")
        if turn_id:
            self.turn_id = str(turn_id)

    # -- what Codex sends --------------------------------------------------------------------

    def on_event(self, event: Any) -> None:
        if self.process is None or self.process.closing:
            return
        if isinstance(event, RpcReply):
            self._reply(event)
        elif isinstance(event, RpcRequest):
            self._request(event)
        elif isinstance(event, TurnStarted):
            self.turn_id = event.turn_id
        else:
            super().on_event(event)
            if isinstance(event, Result):
                self.process.close_stdin()  # the turn is over: the server exits

    def _reply(self, reply: RpcReply) -> None:
        call = self._calls.pop(reply.id, None) if isinstance(reply.id, int) else None
        if call is None:
            return
        method, on_result, on_error = call
        if reply.error is None:
            on_result(reply.result)
        elif on_error is not None:
            on_error(reply.error)
        else:
            self._fail(f"codex app-server refused {method}: "
                       f"{reply.error.get('message') or reply.error}")

    def _request(self, request: RpcRequest) -> None:
        assert self.sink is not None and self.transcript is not None
        approval = self._approval(request)
        if approval is None:
            self._send({"id": request.id, "error": {
                "code": UNSUPPORTED, "message": f"Maestro Web does not answer {request.method}"}})
            return
        if approval.key in self._asked:
            return  # the same request again while the first is open: asked once
        self.transcript.answer = None  # an answer that was streaming ends here
        self._asked[approval.key] = request
        decision = self.sink.open_approval(approval)
        if decision is not None:
            self.answer(approval.key, decision)

    def _approval(self, request: RpcRequest) -> ApprovalRequest | None:
        """How a command or file-change request is shown; None for other requests."""
        params, key = request.params, str(request.id)
        if request.method == "item/commandExecution/requestApproval":
            arguments = {"command": params.get("command"), "cwd": params.get("cwd")}
            title = tool_line("$", arguments)
            if params.get("reason"):
                title = f"{title} ({params['reason']})"
            return ApprovalRequest(key, "permission", "command_execution", title, arguments)
        if request.method == "item/fileChange/requestApproval":
            assert self.parser is not None
            changes = self.parser.file_changes.get(str(params.get("itemId")), [])
            calls = [self.parser.file_change("", change, False, None) for change in changes]
            arguments = {"changes": [{**call.input, "diff": change.get("diff")}
                                     for call, change in zip(calls, changes, strict=True)]}
            if params.get("grantRoot"):
                arguments["grantRoot"] = params["grantRoot"]
            title = "; ".join(call.summary for call in calls) or "Change files"
            diff = "".join(call.diff or "" for call in calls) or None
            return ApprovalRequest(key, "permission", "file_change", title, arguments, diff=diff)
        return None

    def answer(self, key: str, decision: Decision) -> None:
        asked = self._asked.pop(key, None)
        if asked is None or self.process is None:
            return
        if decision.allows:
            # Codex lists what a command's request may be answered (0.171 offers no
            # acceptForSession for commands): our own rule for the tab covers the rest.
            offered = asked.params.get("availableDecisions")
            for_session = decision.decision == "allow_session" and (
                not isinstance(offered, list) or "acceptForSession" in offered)
            verdict = "acceptForSession" if for_session else "accept"
            self._send({"id": asked.id, "result": {"decision": verdict}})
            return

        def decline(_: Any = None) -> None:
            self._send({"id": asked.id, "result": {"decision": "decline"}})

        if decision.message and self.thread_id and self.turn_id:
            # The message first, so that the model reads it with the refusal.
            self._call("turn/steer", {
                "threadId": self.thread_id, "expectedTurnId": self.turn_id,
                "input": [{"type": "text", "text": DENIED_PREFIX + decision.message}]},
                decline, decline)
        else:
            decline()

    def interrupt(self) -> str | None:
        """The protocol's `turn/interrupt` (Codex ends the turn `interrupted`, dropping what
        it asked); SIGINT, SIGTERM, SIGKILL when the turn does not end within the grace."""
        self._asked.clear()
        return self.stop_turn(lambda: bool(self.thread_id and self.turn_id) and self._send({
            "id": next(self._ids), "method": "turn/interrupt",
            "params": {"threadId": self.thread_id, "turnId": self.turn_id}}))

    def unfinished(self) -> str | None:
        transcript = self.transcript
        if transcript is None or transcript.result is not None or transcript.interrupted \
                or transcript.reported_error:
            return None
        return "codex app-server ended before the turn finished"

    # -- sending -----------------------------------------------------------------------------

    def _call(self, method: str, params: dict[str, Any], on_result: Callable[[Any], None],
              on_error: Callable[[dict[str, Any]], None] | None = None) -> None:
        """A request to Codex; `on_result` (or `on_error`, default: the turn fails) runs on
        the reader thread when the reply comes."""
        request_id = next(self._ids)
        self._calls[request_id] = (method, on_result, on_error)
        if not self._send({"id": request_id, "method": method, "params": params}):
            self._calls.pop(request_id, None)

    def _send(self, message: dict[str, Any]) -> bool:
        return self.process is not None and self.process.write_line(message)

    def _fail(self, reason: str) -> None:
        """The turn cannot go on: an `error` entry, and the server is let go."""
        super().on_event(Result(None, True, reason))
        if self.process is not None:
            self.process.close_stdin()


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object Codex sent, or an empty one when it sent anything else."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
