"""Gemini CLI and opencode through the Agent Client Protocol (ACP), so a turn can ask the user.

`gemini --acp` and `opencode acp` speak JSON-RPC 2.0, one message a line, on stdio. We send
`initialize` (declaring no `fs` and no `terminal` capability: both CLIs then read, write and run
commands themselves, in the session's folder), `session/new` (or `session/load` to continue a
conversation), `session/set_mode` / `session/set_config_option` / `session/set_model` for the
tab's mode and model, then `session/prompt`. The answer streams as `session/update`
notifications (`agent_message_chunk`, `tool_call`, `tool_call_update` with `diff` content,
`plan`); a tool call that needs approval arrives as a `session/request_permission` request,
answered with one of its options (`allow_once`, `allow_always`, `reject_once`); the prompt's
response ends the turn (`stopReason`, and the usage where the agent reports it). An interrupt
is `session/cancel` (open permission requests are answered `cancelled`), then the signals.

We speak the protocol ourselves rather than through the `agent-client-protocol` package: its
client is asyncio (`spawn_agent_process`, async callbacks, pydantic models) while our adapters
are threads around AgentProcess, which already reads the pipes, paces streamed text and
escalates signals; the part of ACP we need is a dozen JSON shapes.

One process holds a conversation: after a turn it is kept for the next turn of the same
conversation for LINGER_S, then ended (a later turn, or one after a server restart, starts a new
process and `session/load`s the conversation by id). Keeping it is not only faster: Gemini CLI
0.61 cannot load a conversation within the clock minute in which it began (a fresh process
reopens the same chat file and resets it: "No previous sessions found"). When a load fails,
the turn says so in a `system` entry and starts a new conversation.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

from .adapter import TurnEnd, TurnRequest, TurnSink
from .approvals import ApprovalRequest, Decision
from .diffs import content_diff
from .parsers import JsonLinesParser, Output, ToolCall, tool_line, usage
from .process import AgentProcess
from .registry import AgentSpec
from .transcript import Transcript

PROTOCOL_VERSION = 1
# Idle seconds an agent process keeps its conversation for the tab's next turn.
LINGER_S = 300.0
# We offer no file or terminal service: the agents read, write and run commands themselves
# (but see AcpAdapter._write).
CLIENT_CAPABILITIES = {"fs": {"readTextFile": False, "writeTextFile": False}, "terminal": False}
METHOD_NOT_FOUND = -32601
# Which option kinds answer each decision, the preferred one first.
OPTION_KINDS = {"allow": ("allow_once", "allow_always"),
                "allow_session": ("allow_always", "allow_once"),
                "deny": ("reject_once", "reject_always")}
# Stop reasons of a turn that did not finish its work (besides `cancelled`, an interrupt).
UNFINISHED = {"refusal": "The agent refused to go on",
              "max_tokens": "The agent reached its token limit",
              "max_turn_requests": "The agent reached its limit of model requests"}


@dataclasses.dataclass(frozen=True)
class Rpc:
    """A JSON-RPC message from the agent that is not streamed text."""

    message: dict[str, Any]


class AcpParser(JsonLinesParser):
    """The agent's stdout: streamed text as Output (AgentProcess paces it), everything else as
    Rpc. While a conversation is being loaded, the history the agent replays is dropped."""

    def __init__(self) -> None:
        self.replaying = False

    def event(self, message: dict[str, Any]) -> list[Any]:
        if message.get("method") != "session/update":
            return [Rpc(message)]
        if self.replaying:
            return []
        update = _dict(_dict(message.get("params")).get("update"))
        kind = update.get("sessionUpdate")
        if kind in ("agent_message_chunk", "agent_thought_chunk"):
            text = _dict(update.get("content")).get("text")
            source = "ai" if kind == "agent_message_chunk" else "thinking"
            return [Output(source, text, stream=True)] if isinstance(text, str) and text else []
        return [Rpc(message)]


@dataclasses.dataclass(frozen=True)
class AcpToolCall(ToolCall):
    """A tool call with the unified diff of the file change it makes, if any."""

    diff: str | None = None

    @property
    def summary(self) -> str:
        """Its title (the command, "Writing to notes.md"), not the title and the input."""
        return ToolCall.summary.fget(dataclasses.replace(self, input=None))  # type: ignore

    def detail(self) -> dict[str, Any]:
        return {**super().detail(), "diff": self.diff}


class AcpConnection:
    """One agent process in ACP mode: requests out, responses matched back, and what the
    agent sends on its own passed to the adapter of the turn it is running (`listener`)."""

    def __init__(self, argv: list[str], turn: TurnRequest) -> None:
        self.parser = AcpParser()
        self.process = AgentProcess(argv, turn.cwd, turn.env, self.parser, self,
                                    turn.interrupt_grace, talks=True)
        self.listener: AcpAdapter | None = None
        self.session_id: str | None = None
        self.session: dict[str, Any] = {}  # session/new or load result: modes, models, options
        self.current: dict[str, str | None] = {"mode": None, "model": None}
        self.defaults: dict[str, str | None] = {}  # the mode and model it began with
        self.capabilities: dict[str, Any] = {}
        self.exited = False
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, Callable[[dict[str, Any]], None]] = {}

    @property
    def alive(self) -> bool:
        return not self.exited and not self.process.closing

    def call(self, method: str, params: dict[str, Any],
             then: Callable[[dict[str, Any]], None]) -> None:
        """Send a request; `then` gets its response (on the reader thread)."""
        with self._lock:
            request_id = next(self._ids)
            self._waiting[request_id] = then
        self.process.write_line({"jsonrpc": "2.0", "id": request_id, "method": method,
                                 "params": params})

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.process.write_line({"jsonrpc": "2.0", "method": method, "params": params})

    def reply(self, request_id: Any, result: dict[str, Any]) -> None:
        self.process.write_line({"jsonrpc": "2.0", "id": request_id, "result": result})

    def refuse(self, request_id: Any, message: str) -> None:
        self.process.write_line({"jsonrpc": "2.0", "id": request_id,
                                 "error": {"code": METHOD_NOT_FOUND, "message": message}})

    def close(self) -> None:
        """End the process without reporting a turn."""
        self.exited = True
        self.process.close()

    # -- the reader thread (AgentProcess's listener) ----------------------------------------

    def on_event(self, event: Any) -> None:
        if self.process.closing:
            return
        listener = self.listener
        if not isinstance(event, Rpc):
            if listener is not None:
                listener.on_output(event)
            return
        message = event.message
        if "method" not in message:
            with self._lock:
                then = self._waiting.pop(message.get("id"), None)  # type: ignore[arg-type]
            if then is not None:
                then(message)
        elif "id" in message:
            if listener is None:
                self.refuse(message["id"], "No turn is running")
            else:
                listener.on_request(message)
        elif listener is not None:
            listener.on_notification(message)

    def on_exit(self, exit_code: int) -> None:
        self.exited = True
        IDLE.forget(self)
        if self.listener is not None:
            self.listener.on_exit(exit_code)


class _IdleConnections:
    """Agent processes between turns, by conversation, each ended after LINGER_S."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, ...], tuple[AcpConnection, threading.Timer]] = {}

    def take(self, key: tuple[str, ...]) -> AcpConnection | None:
        with self._lock:
            connection, timer = self._idle.pop(key, (None, None))
        if timer is not None:
            timer.cancel()
        if connection is not None and not connection.alive:
            return None
        return connection

    def park(self, key: tuple[str, ...], connection: AcpConnection) -> None:
        timer = threading.Timer(LINGER_S, self._expire, (key, connection))
        timer.daemon = True
        with self._lock:
            previous = self._idle.pop(key, None)
            self._idle[key] = (connection, timer)
        if previous is not None:
            previous[1].cancel()
            _close_later(previous[0])
        timer.start()

    def forget(self, connection: AcpConnection) -> None:
        with self._lock:
            for key, (idle, timer) in list(self._idle.items()):
                if idle is connection:
                    del self._idle[key]
                    timer.cancel()

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle.values()), {}
        for connection, timer in idle:
            timer.cancel()
            connection.close()

    def _expire(self, key: tuple[str, ...], connection: AcpConnection) -> None:
        with self._lock:
            if self._idle.get(key, (None,))[0] is not connection:
                return
            del self._idle[key]
        connection.close()


IDLE = _IdleConnections()
atexit.register(IDLE.close_all)


def _close_later(connection: AcpConnection) -> None:
    """Close from another thread (closing waits for the reader, which may be this one)."""
    threading.Thread(target=connection.close, daemon=True, name="acp-close").start()


class AcpAdapter:
    """One turn of a tab over ACP: opens or continues the conversation, prompts, maps what the
    agent sends into the tab's log and approvals."""

    def __init__(self, spec: AgentSpec, program: str) -> None:
        self.spec = spec
        self.program = program
        self.connection: AcpConnection | None = None
        self.turn: TurnRequest | None = None
        self.sink: TurnSink | None = None
        self.transcript: Transcript | None = None
        self.stopped_by: str | None = None
        self._asked: dict[str, Any] = {}  # approval key → the request's JSON-RPC id
        self._tools: dict[str, dict[str, Any]] = {}  # tool call id → its fields so far
        self._plan: dict[str, Any] | None = None  # the turn's `plan` entry
        self._prompted = False
        self._ended = threading.Event()
        self._end_lock = threading.Lock()

    @property
    def final_text(self) -> str:
        return self.transcript.final_text if self.transcript else ""

    def start(self, turn: TurnRequest, sink: TurnSink) -> None:
        self.turn, self.sink = turn, sink
        self.transcript = Transcript(sink, self.program, turn.cwd)
        connection = IDLE.take(self._key(turn.agent_session_id)) \
            if turn.agent_session_id else None
        if connection is not None:
            self.connection, connection.listener = connection, self
            self._configure()
            return
        argv = self.spec.argv("", None)
        connection = AcpConnection([self.program, *argv[1:]], turn)
        self.connection, connection.listener = connection, self
        connection.process.start()
        connection.call("initialize", {"protocolVersion": PROTOCOL_VERSION,
                                       "clientCapabilities": CLIENT_CAPABILITIES},
                        self._initialized)

    def _key(self, conversation: str | None) -> tuple[str, ...]:
        assert self.turn is not None
        return self.spec.id, self.program, self.turn.cwd, conversation or ""

    # -- opening the conversation (reader thread, one response after the other) -------------

    def _initialized(self, message: dict[str, Any]) -> None:
        connection, turn = self.connection, self.turn
        assert connection is not None and turn is not None
        if self._refused(message, "start its ACP session"):
            return
        connection.capabilities = _dict(_dict(message.get("result")).get("agentCapabilities"))
        params = {"cwd": turn.cwd, "mcpServers": []}
        if turn.agent_session_id and connection.capabilities.get("loadSession"):
            connection.parser.replaying = True
            connection.call("session/load", {**params, "sessionId": turn.agent_session_id},
                            self._loaded)
        else:
            connection.call("session/new", params, self._opened)

    def _loaded(self, message: dict[str, Any]) -> None:
        connection, turn = self.connection, self.turn
        assert connection is not None and turn is not None and self.sink is not None
        connection.parser.replaying = False
        if "error" in message:
            self.sink.append("system", f"{self.spec.id} could not continue conversation "
                             f"{turn.agent_session_id} ({_reason(message)}): this turn "
                             "starts a new one")
            connection.call("session/new", {"cwd": turn.cwd, "mcpServers": []}, self._opened)
            return
        assert turn.agent_session_id is not None
        self._opened_session(turn.agent_session_id, _dict(message.get("result")))

    def _opened(self, message: dict[str, Any]) -> None:
        if self._refused(message, "open a session"):
            return
        result = _dict(message.get("result"))
        self._opened_session(str(result.get("sessionId") or ""), result)

    def _opened_session(self, session_id: str, result: dict[str, Any]) -> None:
        connection, sink = self.connection, self.sink
        assert connection is not None and sink is not None
        connection.session_id, connection.session = session_id, result
        connection.current = {"mode": _current(result, "mode"),
                              "model": _current(result, "model")}
        connection.defaults = dict(connection.current)
        sink.set_conversation(session_id)
        self._configure()

    def _configure(self) -> None:
        """The tab's mode and model where they differ from the conversation's, then the
        prompt."""
        connection, turn = self.connection, self.turn
        assert connection is not None and turn is not None
        # A tab back on the agent's default gets the one the conversation began with.
        wanted = {"mode": turn.permission_mode or connection.defaults.get("mode"),
                  "model": turn.model or connection.defaults.get("model")}
        steps = [step for step in (_setting(connection, category, value)
                                   for category, value in wanted.items()) if step]
        self._next_step(steps)

    def _next_step(self, steps: list[tuple[str, str, dict[str, Any], str]]) -> None:
        connection = self.connection
        assert connection is not None
        if self.stopped_by is not None:
            self._end(0)
            return
        if not steps:
            self._prompt()
            return
        (what, method, params, value), rest = steps[0], steps[1:]

        def then(message: dict[str, Any]) -> None:
            if "error" in message:
                self._error(f"{self.spec.id} did not accept the {what} {value!r}: "
                            f"{_reason(message)}")
            else:
                connection.current[what] = value
            self._next_step(rest)

        connection.call(method, params, then)

    def _prompt(self) -> None:
        connection, turn = self.connection, self.turn
        assert connection is not None and turn is not None
        self._prompted = True
        connection.call("session/prompt", {
            "sessionId": connection.session_id,
            "prompt": [{"type": "text", "text": turn.prompt}]}, self._answered)

    def _answered(self, message: dict[str, Any]) -> None:
        assert self.transcript is not None
        if "error" in message:
            if self.stopped_by is None:
                self._error(f"The agent reported an error: {_reason(message)}")
            self._end(0, failed=True)
            return
        result = _dict(message.get("result"))
        reported = _usage(result)
        if reported is not None:
            self.transcript.on_event(reported)
        reason = UNFINISHED.get(str(result.get("stopReason")))
        if reason is not None:
            self._error(reason)
        self._end(0, failed=reason is not None)

    def _refused(self, message: dict[str, Any], what: str) -> bool:
        """A refusal (authentication, trust, a bad option) ends the turn as an error."""
        if "error" not in message:
            return False
        self._error(f"{self.spec.id} could not {what}: {_reason(message)}")
        self._end(0, failed=True)
        return True

    # -- what the agent sends during the turn -----------------------------------------------

    def on_output(self, event: Output) -> None:
        if self.transcript is not None and not self._ended.is_set():
            self.transcript.on_event(event)

    def on_notification(self, message: dict[str, Any]) -> None:
        params = _dict(message.get("params"))
        connection = self.connection
        if message.get("method") != "session/update" or connection is None \
                or params.get("sessionId") != connection.session_id:
            return
        update = _dict(params.get("update"))
        kind = update.get("sessionUpdate")
        if kind in ("tool_call", "tool_call_update"):
            self._tool(update)
        elif kind == "plan":
            self._plan_update(update)
        elif kind == "current_mode_update":
            connection.current["mode"] = update.get("currentModeId")

    def on_request(self, message: dict[str, Any]) -> None:
        connection = self.connection
        assert connection is not None
        method = message.get("method")
        if method == "session/request_permission":
            self._permission(message)
        elif method == "fs/write_text_file":
            self._write(message)
        else:  # fs/read_text_file, terminal/*: we declared neither capability
            connection.refuse(message["id"], f"{method} is not offered by this client")

    def _write(self, message: dict[str, Any]) -> None:
        """opencode 1.18 asks the client to write an edit it was allowed to make, whatever
        the capabilities say (and falls back to writing it itself, logging our refusal as an
        error): a text file inside the session's folder is written, nothing else."""
        connection, turn = self.connection, self.turn
        assert connection is not None and turn is not None
        params = _dict(message.get("params"))
        path, content = params.get("path"), params.get("content")
        folder = os.path.realpath(turn.cwd)
        try:
            target = os.path.realpath(os.path.join(folder, path)) \
                if isinstance(path, str) and "\0" not in path else "/"
            inside = isinstance(content, str) and os.path.commonpath([folder, target]) == folder
        except ValueError:
            inside = False
        if not inside:
            connection.refuse(message["id"], "Only text files inside the session's folder")
            return
        try:
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(content)
        except OSError as exc:
            connection.refuse(message["id"], f"Cannot write {path}: {exc.strerror}")
            return
        connection.reply(message["id"], {})

    def on_exit(self, exit_code: int) -> None:
        """The agent process ended (on its own, or after a signal)."""
        assert self.transcript is not None
        if self._ended.is_set():
            return
        failure = self.transcript.exit_error(exit_code)
        if failure is None and exit_code == 0 and self.stopped_by is None:
            failure = f"{self.spec.id} ended before the turn was over"
        self._end(exit_code, failure=failure)

    def _tool(self, update: dict[str, Any]) -> None:
        assert self.transcript is not None and self.turn is not None
        call_id = str(update.get("toolCallId") or "")
        fields = self._tools.setdefault(call_id, {})
        fields.update({key: value for key, value in update.items() if value is not None})
        status = fields.get("status")
        self.transcript.on_event(AcpToolCall(
            call_id, _tool_name(fields), _tool_input(fields), label=_tool_label(fields),
            done=status in ("completed", "failed"), result=_tool_result(fields),
            is_error=status == "failed", diff=self._diff(call_id, fields)))

    def _diff(self, call_id: str, fields: dict[str, Any]) -> str | None:
        """The call's diff, made once: from the first report with `diff` content (before the
        file changes; later reports may not repeat it)."""
        assert self.turn is not None
        known = self._tools.setdefault(call_id, {})
        if known.get("diff") is None:
            known["diff"] = _tool_diff(fields, self.turn.cwd)
        return known["diff"]

    def _plan_update(self, update: dict[str, Any]) -> None:
        assert self.sink is not None and self.transcript is not None
        marks = {"completed": "[x]", "in_progress": "[~]"}
        text = "\n".join(f"- {marks.get(entry.get('status'), '[ ]')} {entry.get('content', '')}"
                         for entry in update.get("entries") or [] if isinstance(entry, dict))
        self.transcript.answer = None
        if self._plan is None:
            self._plan = self.sink.append("plan", text or "(empty plan)")
        else:
            self._plan = {**self._plan, "text": text or "(empty plan)"}
            self.sink.update(self._plan)

    def _permission(self, message: dict[str, Any]) -> None:
        assert self.sink is not None and self.transcript is not None and self.turn is not None
        params = _dict(message.get("params"))
        call = _dict(params.get("toolCall"))
        call_id = str(call.get("toolCallId") or "")
        fields = self._tools.setdefault(call_id, {})
        fields.update({key: value for key, value in call.items() if value is not None})
        options = [option for option in params.get("options") or [] if isinstance(option, dict)]
        key = f"acp-{message['id']}"
        if key in self._asked:
            return  # the same request again while the first is open: asked once
        self._asked[key] = (message["id"], options)
        self.transcript.answer = None  # an answer that was streaming ends here
        tool, arguments = _tool_name(fields), _tool_input(fields)
        title = str(fields.get("title") or "") or tool_line(tool, arguments)
        decision = self.sink.open_approval(ApprovalRequest(
            key, "permission", tool, title, arguments,
            diff=self._diff(call_id, fields)))
        if decision is not None:
            self.answer(key, decision)

    def answer(self, key: str, decision: Decision) -> None:
        asked = self._asked.pop(key, None)
        if asked is None or self.connection is None:
            return
        request_id, options = asked
        option = next((option for kind in OPTION_KINDS[decision.decision]
                       for option in options if option.get("kind") == kind), None)
        outcome = {"outcome": "selected", "optionId": option.get("optionId")} if option \
            else {"outcome": "cancelled"}
        self.connection.reply(request_id, {"outcome": outcome})
        if not decision.allows and decision.message and self.sink is not None:
            # ACP's answer has no room for a reason: the tab keeps it.
            self.sink.append("system", f"Denied: {decision.message}")

    # -- ending ---------------------------------------------------------------------------

    def interrupt(self) -> str | None:
        """`session/cancel` (what the agent asked is answered `cancelled`); SIGINT, SIGTERM,
        SIGKILL when the turn has not ended within the grace period."""
        connection = self.connection
        if connection is None or self._ended.is_set():
            return None
        assert self.transcript is not None
        self.transcript.interrupted = True
        self.stopped_by = "interrupt"
        asked, self._asked = self._asked, {}
        for request_id, _ in asked.values():
            connection.reply(request_id, {"outcome": {"outcome": "cancelled"}})
        if self._prompted and connection.session_id:
            connection.notify("session/cancel", {"sessionId": connection.session_id})
        if self._ended.wait(connection.process.grace):
            return "interrupt"
        return connection.process.interrupt()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()

    def _error(self, text: str) -> None:
        assert self.transcript is not None
        self.transcript.on_event(Output("error", text))

    def _end(self, exit_code: int, failed: bool = False, failure: str | None = None) -> None:
        with self._end_lock:
            if self._ended.is_set():
                return
            self._ended.set()
        connection, sink, transcript = self.connection, self.sink, self.transcript
        assert connection is not None and sink is not None and transcript is not None
        connection.listener = None
        stopped_by = connection.process.sent_signal or self.stopped_by
        if connection.alive and connection.session_id and connection.process.sent_signal is None:
            IDLE.park(self._key(connection.session_id), connection)
        elif not connection.exited:
            _close_later(connection)
        sink.ended(TurnEnd(exit_code, stopped_by, failure, failed or transcript.agent_failed,
                           transcript.final_text))


# -- the shapes of ACP ----------------------------------------------------------------------

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _reason(message: dict[str, Any]) -> str:
    """A JSON-RPC error as one line: its message and its details."""
    error = _dict(message.get("error"))
    data = error.get("data")
    details = (_dict(data).get("details") or _dict(data).get("message")) \
        if isinstance(data, dict) else data
    text = str(error.get("message") or "error")
    return f"{text}: {details}" if details and str(details) != text else text


def _current(session: dict[str, Any], category: str) -> str | None:
    """The conversation's mode or model now: ACP's `modes`/`models`, or a config option."""
    legacy = _dict(session.get("modes" if category == "mode" else "models"))
    value = legacy.get("currentModeId" if category == "mode" else "currentModelId")
    if value is None:
        option = _config_option(session, category)
        value = option.get("currentValue") if option else None
    return value if isinstance(value, str) else None


def _config_option(session: dict[str, Any], category: str) -> dict[str, Any] | None:
    return next((option for option in session.get("configOptions") or []
                 if isinstance(option, dict)
                 and category in (option.get("category"), option.get("id"))), None)


def _setting(connection: AcpConnection, category: str,
             wanted: str | None) -> tuple[str, str, dict[str, Any], str] | None:
    """The request that sets the tab's mode or model (None: already so, or the agent's own
    default); (what, method, params, value)."""
    if wanted is None or connection.current.get(category) == wanted:
        return None
    session_id = connection.session_id
    if category == "mode" and "modes" in connection.session:
        return category, "session/set_mode", {"sessionId": session_id, "modeId": wanted}, wanted
    if category == "model" and "models" in connection.session:
        return category, "session/set_model", {"sessionId": session_id, "modelId": wanted}, \
            wanted
    option = _config_option(connection.session, category) or {"id": category}
    return category, "session/set_config_option", {
        "sessionId": session_id, "configId": option.get("id"), "value": wanted}, wanted


def _tool_name(fields: dict[str, Any]) -> str:
    """ACP names no tool, it classifies it: `execute`, `edit`, `read`, `fetch`, ..."""
    return str(fields.get("kind") or "other")


def _tool_label(fields: dict[str, Any]) -> str:
    """The log line of a call: `$ <command>` for a command, else the agent's title."""
    title = str(fields.get("title") or "")
    if fields.get("kind") == "execute":
        return f"$ {_tool_input(fields).get('command') or title}"
    return title or _tool_name(fields)


def _tool_input(fields: dict[str, Any]) -> dict[str, Any]:
    """The call's input as the agent gives it (`rawInput`, opencode); else what its title and
    locations say (Gemini CLI sends no input: the title is the command or the file)."""
    raw = fields.get("rawInput")
    if isinstance(raw, dict) and set(raw) - {"cwd"}:
        return raw
    title = str(fields.get("title") or "")
    arguments: dict[str, Any] = {"command": title} if fields.get("kind") == "execute" \
        else {"title": title}
    paths = [str(place["path"]) for place in fields.get("locations") or []
             if isinstance(place, dict) and place.get("path")]
    if paths and fields.get("kind") != "execute":
        arguments["path"] = paths[0]
    return arguments


def _tool_result(fields: dict[str, Any]) -> str | None:
    """The text a finished tool call returned (None: the agent did not say)."""
    texts = [str(_dict(item.get("content")).get("text"))
             for item in fields.get("content") or [] if isinstance(item, dict)
             and item.get("type") == "content" and _dict(item.get("content")).get("text")]
    if texts:
        return "\n".join(texts)
    output = _dict(fields.get("rawOutput")).get("output")
    return output if isinstance(output, str) else None


def _tool_diff(fields: dict[str, Any], cwd: str) -> str | None:
    diffs = [content_diff(str(item["path"]), _old_text(item, cwd), str(item.get("newText") or ""),
                          cwd)
             for item in fields.get("content") or []
             if isinstance(item, dict) and item.get("type") == "diff" and item.get("path")]
    return "".join(diffs) or None


def _old_text(item: dict[str, Any], cwd: str) -> str | None:
    """A diff's text before; None for a new file (ACP's null `oldText`; Gemini CLI and opencode
    send "" and, Gemini, `_meta.kind` "add")."""
    old = item.get("oldText")
    if _dict(item.get("_meta")).get("kind") == "add" or (
            not old and not os.path.exists(os.path.join(cwd, str(item["path"])))):
        return None
    return old if isinstance(old, str) else None


def _usage(result: dict[str, Any]) -> Any:
    """The turn's tokens: ACP's `usage` (opencode; input without the cache), or Gemini CLI's
    `_meta.quota.token_count`."""
    reported = result.get("usage")
    if isinstance(reported, dict):
        return usage(reported.get("inputTokens"), reported.get("outputTokens"),
                     reported.get("cachedReadTokens"), reported.get("cachedWriteTokens"))
    tokens = _dict(_dict(_dict(result.get("_meta")).get("quota")).get("token_count"))
    if tokens:
        return usage(tokens.get("input_tokens"), tokens.get("output_tokens"))
    return None
