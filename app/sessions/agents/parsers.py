"""Output parsers: one agent CLI's stdout, line by line, into what a tab shows and counts.

Each parser turns a line into events: Output (a log entry: `ai`, `thinking`, `error`,
`system`, `stdout`), ToolCall (a `tool` entry, completed by its result), Conversation (the
agent's own session id, for resuming), Usage (tokens and cost of this turn, in the contract's
keys) and Result (the turn's final text and whether it failed). A line that is not what the
format expects is shown as it is (`stdout`), never dropped. Formats follow each CLI's stream
(raw recordings of the real CLIs: shared/reference/agent-recordings):

- claude-stream-json: `claude -p --output-format stream-json --verbose` (with the control
  protocol's `control_request` `can_use_tool` as PermissionRequest)
- codex-jsonl: `codex exec --json` (thread/turn/item events)
- gemini-stream-json: `gemini --output-format stream-json`
- opencode-json: `opencode run --format json`
- aider: plain text after a start-up banner, and aider's "Tokens: ... Cost: ..." report line
- text: plain text
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from ..screen import OutputCleaner

TOOL_LINE_CHARS = 200
# A tool call's input (as JSON) and its result are each kept up to this many bytes of UTF-8.
TOOL_DETAIL_BYTES = 64 * 1024
# The slash commands an agent advertises that a tab keeps (more are dropped), and their length.
SLASH_COMMANDS_MAX = 200
SLASH_COMMAND_CHARS = 100
# Tool inputs worth one readable line, most telling first.
_TOOL_KEYS = ("file_path", "path", "filePath", "dir_path", "command", "cmd", "pattern", "url",
              "query", "description", "prompt")


@dataclasses.dataclass(frozen=True)
class Output:
    """A log entry. `stream` marks a piece of streamed text that joins its neighbours."""

    source: str
    text: str
    stream: bool = False


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """A tool call, reported when it starts and again when it is `done` (or only once,
    done): every report with the same `call_id` is the same `tool` entry."""

    call_id: str
    name: str
    input: Any = None
    label: str | None = None  # how its one-line summary starts, when not with `name` ("$")
    done: bool = False
    result: str | None = None  # None: the CLI does not report what the tool returned
    is_error: bool = False
    note: str = ""  # added to the result's line, such as " (exit code 1)"
    diff: str | None = None  # the unified diff of a file change, when the CLI reports it

    @property
    def summary(self) -> str:
        """The entry's text: the call on one line, its outcome on a second once done."""
        line = tool_line(self.label or self.name, self.input)
        if not self.done:
            return line
        outcome = _result_line(self.result) if self.result is not None else \
            ("failed" if self.is_error else "done")
        return f"{line}\n→ {outcome}{self.note}"

    def detail(self) -> dict[str, Any]:
        """The entry's detail fields: the full input and result, each capped."""
        arguments, input_cut = capped_input(self.input)
        result, result_cut = capped_text(self.result)
        detail = {"toolName": self.name, "input": arguments, "result": result,
                  "isError": self.is_error}
        if self.diff is not None:
            detail["diff"] = self.diff
        if input_cut or result_cut:
            detail["truncated"] = True
        return detail


@dataclasses.dataclass(frozen=True)
class Conversation:
    """The agent's conversation id; `slash_commands` are the commands it advertises (Claude's
    `system/init`), None when it does not say."""

    agent_session_id: str
    slash_commands: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens and cost; `cumulative` when the CLI reports the conversation's running total."""

    stats: dict[str, Any]
    cumulative: bool = False


@dataclasses.dataclass(frozen=True)
class Result:
    """The agent's verdict on the turn. `error` is what it says went wrong: shown as an
    `error` entry, unless the server interrupted the turn (then it is the interrupt)."""

    text: str | None
    is_error: bool
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class PermissionRequest:
    """The agent asks whether it may run a tool call (Claude's control request
    `can_use_tool`); `key` is the id its answer must carry. `suggestions` are the CLI's own
    rules that would allow such calls from now on."""

    key: str
    tool: str
    input: dict[str, Any]
    suggestions: tuple[dict[str, Any], ...] = ()
    description: str | None = None


Event = Output | ToolCall | Conversation | Usage | Result | PermissionRequest


def usage(input_tokens: Any = 0, output_tokens: Any = 0, cache_read: Any = 0,
          cache_creation: Any = 0, cost: Any = None, context_window: Any = None) -> Usage:
    """Usage in the contract's keys; missing, non-numeric or negative counts are 0."""
    return Usage({
        "inputTokens": max(0, _count(input_tokens)),
        "outputTokens": max(0, _count(output_tokens)),
        "cacheReadInputTokens": max(0, _count(cache_read)),
        "cacheCreationInputTokens": max(0, _count(cache_creation)),
        "totalCostUsd": float(cost) if isinstance(cost, int | float) else 0.0,
        "contextWindow": context_window if isinstance(context_window, int) else None,
    })


def _count(value: Any) -> int:
    """A token count from JSON; anything that is not a number counts 0."""
    return int(value) if isinstance(value, int | float) else 0


def add_usage(total: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """Sum two usage records; the context window is the latest one known."""
    if total is None:
        return dict(more)
    summed = {key: total.get(key, 0) + more.get(key, 0)
              for key in ("inputTokens", "outputTokens", "cacheReadInputTokens",
                          "cacheCreationInputTokens", "totalCostUsd")}
    summed["totalCostUsd"] = round(summed["totalCostUsd"], 6)
    summed["contextWindow"] = more.get("contextWindow") or total.get("contextWindow")
    return summed


def tool_line(name: str, arguments: Any) -> str:
    """One readable line for a tool call, such as `Edit src/app.py` or `Bash npm test`."""
    detail = ""
    if isinstance(arguments, dict):
        detail = next((str(arguments[key]) for key in _TOOL_KEYS
                       if isinstance(arguments.get(key), str | int) and arguments[key] != ""), "")
    elif isinstance(arguments, str):
        detail = arguments
    return one_line(f"{name} {detail}", TOOL_LINE_CHARS)


def one_line(text: str, limit: int) -> str:
    """The text on one line, cut with "..." to at most `limit` characters."""
    line = text.strip().replace("\n", " ")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def slash_commands(raw: Any) -> tuple[str, ...] | None:
    """The command names an agent advertises (without "/"), capped; None when it names none
    or not as a list of strings."""
    if not isinstance(raw, list):
        return None
    names = (str(name).strip().lstrip("/") for name in raw if isinstance(name, str))
    return tuple(dict.fromkeys(name for name in names
                               if name and len(name) <= SLASH_COMMAND_CHARS
                               and not any(c.isspace() for c in name)))[:SLASH_COMMANDS_MAX]


def _result_line(text: str) -> str:
    """A tool result as one short line: its first line, and how many more there are."""
    text = text.strip()
    if not text:
        return "(no output)"
    lines = text.split("\n")
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    first = lines[0] if len(lines[0]) <= TOOL_LINE_CHARS else lines[0][:TOOL_LINE_CHARS] + "..."
    return first + more


def _text_of(content: Any) -> str:
    """A tool result's text, whether a string or a list of content blocks."""
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content
                         if isinstance(part, dict) and part.get("type", "text") == "text")
    return "" if content is None else str(content)


def capped_text(text: str | None) -> tuple[str | None, bool]:
    """The text while it fits TOOL_DETAIL_BYTES of UTF-8, else cut there; and whether cut."""
    if text is None:
        return None, False
    data = text.encode("utf-8", "replace")
    if len(data) <= TOOL_DETAIL_BYTES:
        return text, False
    return data[:TOOL_DETAIL_BYTES].decode("utf-8", "ignore"), True


def capped_input(arguments: Any) -> tuple[Any, bool]:
    """The input as given while its JSON fits the cap; else that JSON, cut, as a string."""
    try:
        encoded = json.dumps(arguments, ensure_ascii=False)
    except RecursionError:  # nested deeper than Python's recursion limit
        return "(input nested too deeply to show)", True
    if len(encoded.encode("utf-8", "replace")) <= TOOL_DETAIL_BYTES:
        return arguments, False
    return capped_text(encoded)[0], True


class TextParser:
    """Plain text: every line is agent text, cleaned of terminal escapes and streamed."""

    def __init__(self) -> None:
        self._cleaner = OutputCleaner()

    def feed(self, line: str) -> list[Event]:
        self._cleaner.feed(line + "\n")
        text = self._cleaner.take_complete()
        return [Output("ai", text, stream=True)] if text else []


class AiderParser(TextParser):
    """Aider's plain text: a start-up banner and notices (`system`), the streamed answer, then
    its report line (`Tokens: 2.1k sent, 96 received. Cost: $0.0012 message, $0.03 session.`),
    counted as usage and shown as `system`, like every line after it (edits applied, commits,
    its own remarks)."""

    _REPORT = re.compile(r"^Tokens: (?P<tokens>.+?)\.(\s+Cost: \$(?P<cost>[\d.]+) message.*)?$")
    _PART = re.compile(r"([\d.]+)(k|m)?\s+(sent|received|cache write|cache hit)")
    # What aider prints before the answer: its banner, set-up notes, and litellm's complaint
    # that it cannot fetch a price list.
    _BANNER = re.compile(
        r"^(Aider v\d|(Main |Weak |Editor )?[Mm]odel: |Git repo: |Repo-map: |Analytics |"
        r"Added \S+ to \.gitignore|Update git (name|email) with|You can skip this check|"
        r"Restored previous conversation|Cur working dir|Note: |Warning: |Newer aider version|"
        r"https://aider\.chat/|Can't initialize prompt toolkit|Loaded \S+\.env|"
        r"Creating empty file|Added \S+ to the chat|HTTPSConnectionPool\(|[A-Za-z.]*Error: )")
    _NOTICE = re.compile(r"^(\^C again to exit|HTTPSConnectionPool\()")

    def __init__(self) -> None:
        super().__init__()
        self._phase = "banner"  # then "answer", then "after" (the report line was seen)

    def feed(self, line: str) -> list[Event]:
        stripped = line.strip()
        report = self._REPORT.match(stripped)
        if report:
            self._phase = "after"
            counts = {kind: _scaled(number, unit) for number, unit, kind
                      in self._PART.findall(report.group("tokens"))}
            cost = float(report.group("cost")) if report.group("cost") else None
            return [usage(counts.get("sent"), counts.get("received"), counts.get("cache hit"),
                          counts.get("cache write"), cost),
                    Output("system", stripped)]
        if self._phase == "banner" and (not stripped or self._BANNER.match(stripped)):
            return [Output("system", stripped)] if stripped else []
        if self._phase == "after" or self._NOTICE.match(stripped):
            return [Output("system", stripped)] if stripped else []
        self._phase = "answer"
        return super().feed(line)


def _scaled(number: str, unit: str) -> int:
    """Aider's "12.3k" style counts."""
    return round(float(number) * {"": 1, "k": 1000, "m": 1_000_000}[unit.lower()])


class JsonLinesParser:
    """One JSON object per line; anything else is shown as raw stdout."""

    def feed(self, line: str) -> list[Event]:
        if not line.strip():
            return []
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            event = None
        if not isinstance(event, dict):
            return [Output("stdout", line)]
        return self.event(event)

    def event(self, event: dict[str, Any]) -> list[Event]:
        raise NotImplementedError


class ClaudeStreamParser(JsonLinesParser):
    """Claude Code's stream-json: system/init, assistant and user messages, result."""

    def __init__(self) -> None:
        self._calls: dict[str, ToolCall] = {}
        # Usage of each assistant message so far: an interrupted turn's result reports none.
        self._message_usage: dict[str, dict[str, Any]] = {}

    def event(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init" and event.get("session_id"):
            return [Conversation(str(event["session_id"]),
                                 slash_commands(event.get("slash_commands")))]
        if kind == "assistant":
            message = event.get("message") or {}
            if isinstance(message.get("usage"), dict) and message.get("id"):
                self._message_usage[str(message["id"])] = message["usage"]
            return [out for block in _blocks(event) for out in self._assistant_block(block)]
        if kind == "user":
            return [self._tool_result(block) for block in _blocks(event)
                    if block.get("type") == "tool_result"]
        if kind == "result":
            return self._result(event)
        if kind == "control_request":
            return self._control_request(event)
        return []  # control responses and cancels, status notes: the adapter's business

    @staticmethod
    def _control_request(event: dict[str, Any]) -> list[Event]:
        request = event.get("request") or {}
        if request.get("subtype") != "can_use_tool" or not event.get("request_id"):
            return []
        arguments = request.get("input")
        suggestions = request.get("permission_suggestions")
        return [PermissionRequest(
            str(event["request_id"]), str(request.get("tool_name") or "tool"),
            arguments if isinstance(arguments, dict) else {},
            tuple(s for s in suggestions if isinstance(s, dict))
            if isinstance(suggestions, list) else (),
            request.get("description") if isinstance(request.get("description"), str)
            else None)]

    def _assistant_block(self, block: dict[str, Any]) -> list[Event]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [Output("ai", block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [Output("thinking", block["thinking"])]
        if kind == "tool_use":
            call = ToolCall(str(block.get("id") or len(self._calls)),
                            str(block.get("name", "tool")), block.get("input"))
            self._calls[call.call_id] = call
            return [call]
        return []

    def _tool_result(self, block: dict[str, Any]) -> ToolCall:
        call_id = str(block.get("tool_use_id") or "")
        call = self._calls.get(call_id) or ToolCall(call_id, "tool")
        return dataclasses.replace(call, done=True, result=_text_of(block.get("content")),
                                   is_error=bool(block.get("is_error")))

    def _result(self, event: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if event.get("session_id"):
            events.append(Conversation(str(event["session_id"])))
        tokens = event.get("usage") or {}
        keys = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                "cache_creation_input_tokens")
        if not any(_count(tokens.get(key)) for key in keys):
            tokens = {key: sum(_count(seen.get(key)) for seen in self._message_usage.values())
                      for key in keys}
        events.append(usage(*(tokens.get(key) for key in keys), event.get("total_cost_usd"),
                            _context_window(event)))
        failed = bool(event.get("is_error")) or event.get("subtype") != "success"
        text = event.get("result") if isinstance(event.get("result"), str) else None
        reason = (text or str(event.get("subtype") or "error")) if failed else None
        events.append(Result(text, failed,
                             f"The agent reported an error: {reason}" if reason else None))
        return events


def _blocks(event: dict[str, Any]) -> list[dict[str, Any]]:
    content = (event.get("message") or {}).get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content or [] if isinstance(block, dict)]


def _context_window(event: dict[str, Any]) -> int | None:
    """Claude's result lists per-model usage with each model's context window."""
    models = event.get("modelUsage")
    if isinstance(models, dict):
        windows = [m.get("contextWindow") for m in models.values() if isinstance(m, dict)]
        return next((w for w in windows if isinstance(w, int)), None)
    return None


class CodexJsonParser(JsonLinesParser):
    """`codex exec --json`: thread.started, turn.*, item.started/completed, error."""

    def event(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        if kind == "thread.started" and event.get("thread_id"):
            return [Conversation(str(event["thread_id"]))]
        if kind in ("item.started", "item.completed"):
            return self._item(event.get("item") or {}, done=kind == "item.completed")
        if kind == "turn.completed":
            # Codex reports the thread's running total, and counts the cached and the
            # cache-written part in its input: the conductor turns it into this turn's share.
            tokens = event.get("usage") or {}
            cached = _count(tokens.get("cached_input_tokens"))
            written = _count(tokens.get("cache_write_input_tokens"))
            stats = usage(_count(tokens.get("input_tokens")) - cached - written,
                          tokens.get("output_tokens"), cached, written).stats
            return [Usage(stats, cumulative=True)]
        if kind == "turn.failed":
            message = str((event.get("error") or {}).get("message") or "the turn failed")
            return [Result(None, True, message)]
        if kind == "error":
            return [Output("error", str(event.get("message") or "error"))]
        return []

    @staticmethod
    def _item(item: dict[str, Any], done: bool) -> list[Event]:
        kind, item_id = item.get("type"), str(item.get("id") or "")
        if kind == "command_execution":
            code = item.get("exit_code")
            failed = done and code not in (0, None)
            return [ToolCall(item_id, "command_execution", {"command": item.get("command")},
                             label="$", done=done,
                             result=str(item.get("aggregated_output") or "") if done else None,
                             is_error=failed, note=f" (exit code {code})" if failed else "")]
        if kind in ("mcp_tool_call", "web_search"):
            return [codex_tool_call(item, done)]
        if not done:
            return []
        if kind == "agent_message" and item.get("text"):
            return [Output("ai", item["text"])]
        if kind == "reasoning" and item.get("text"):
            return [Output("thinking", item["text"])]
        if kind == "file_change":
            verbs = {"add": "Add", "delete": "Delete", "update": "Edit"}
            return [ToolCall(f"{item_id}:{n}", "file_change", change,
                             label=verbs.get(change.get("kind"), "Edit"), done=True,
                             is_error=item.get("status") == "failed")
                    for n, change in enumerate(item.get("changes") or [])
                    if isinstance(change, dict)]
        if kind == "error":  # Codex's non-fatal notices (config warnings, reroutes)
            return [Output("system", str(item.get("message") or "error"))]
        return []


def codex_tool_call(item: dict[str, Any], done: bool) -> ToolCall:
    """An MCP tool call or a web search of Codex (the same fields in `codex exec --json` and
    in its app-server protocol)."""
    item_id = str(item.get("id") or "")
    if item.get("type") in ("web_search", "webSearch"):
        return ToolCall(item_id, "web_search", {"query": item.get("query")}, label="Search",
                        done=done)
    error = item.get("error")
    error = (error.get("message") if isinstance(error, dict) else str(error)) if error else None
    result = item.get("result")
    result = error or _text_of(result.get("content") if isinstance(result, dict) else result)
    return ToolCall(item_id, f"{item.get('server', 'mcp')}.{item.get('tool', 'tool')}",
                    item.get("arguments"), done=done, result=result if done else None,
                    is_error=bool(error) or item.get("status") == "failed")


class GeminiStreamParser(JsonLinesParser):
    """Gemini CLI's stream-json: init, message (assistant deltas), tool_use/result, result."""

    def __init__(self) -> None:
        self._calls: dict[str, ToolCall] = {}

    def event(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        if kind == "init":
            sid = event.get("session_id") or event.get("sessionId")
            return [Conversation(str(sid))] if sid else []
        if kind == "message" and event.get("role") == "assistant" and event.get("content"):
            return [Output("ai", str(event["content"]), stream=bool(event.get("delta")))]
        if kind == "tool_use":
            call = ToolCall(str(event.get("tool_id") or len(self._calls)),
                            str(event.get("tool_name", "tool")), event.get("parameters"))
            self._calls[call.call_id] = call
            return [call]
        if kind == "tool_result":
            call_id = str(event.get("tool_id") or "")
            failed = event.get("status") not in (None, "success")
            output = (event.get("error") or {}).get("message") if failed \
                else event.get("output")
            # Gemini often reports no output (list_directory): then the entry says "done".
            call = self._calls.get(call_id) or ToolCall(call_id, "tool")
            return [dataclasses.replace(call, done=True, is_error=failed,
                                        result=None if output is None else str(output))]
        if kind == "error":
            source = "system" if event.get("severity") == "warning" else "error"
            return [Output(source, str(event.get("message") or "error"))]
        if kind == "result":
            stats = event.get("stats") or {}
            failed = event.get("status") not in (None, "success")
            cached = _count(stats.get("cached"))  # part of Gemini's input count
            message = (event.get("error") or {}).get("message") or "the turn failed"
            return [usage(_count(stats.get("input_tokens")) - cached,
                          stats.get("output_tokens"), cached),
                    Result(None, failed, str(message) if failed else None)]
        return []


class OpencodeJsonParser(JsonLinesParser):
    """`opencode run --format json`: step_start/step_finish, text, reasoning, tool_use, error."""

    def event(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        part = event.get("part") or {}
        events: list[Event] = []
        if event.get("sessionID"):
            events.append(Conversation(str(event["sessionID"])))
        if kind == "text" and part.get("text"):
            events.append(Output("ai", str(part["text"])))
        elif kind == "reasoning" and part.get("text"):
            events.append(Output("thinking", str(part["text"])))
        elif kind == "tool_use":
            events.append(self._tool(part))
        elif kind == "step_finish":
            tokens = part.get("tokens") or {}
            cache = tokens.get("cache") or {}
            events.append(usage(tokens.get("input"), tokens.get("output"), cache.get("read"),
                                cache.get("write"), part.get("cost")))
        elif kind == "error":
            error = event.get("error") or {}
            message = (error.get("data") or {}).get("message") or error.get("name") or "error"
            events.append(Result(None, True, str(message)))
        return events

    @staticmethod
    def _tool(part: dict[str, Any]) -> ToolCall:
        """opencode reports a tool once, when it has finished (or failed)."""
        state = part.get("state") or {}
        status = state.get("status")
        failed = status == "error"
        done = failed or status == "completed"
        result = state.get("error") if failed else state.get("output")
        return ToolCall(str(part.get("callID") or part.get("id") or ""),
                        str(part.get("tool", "tool")), state.get("input"), done=done,
                        result=None if result is None or not done else str(result),
                        is_error=failed)


_PARSERS = {
    "claude-stream-json": ClaudeStreamParser,
    "codex-jsonl": CodexJsonParser,
    "gemini-stream-json": GeminiStreamParser,
    "opencode-json": OpencodeJsonParser,
    "aider": AiderParser,
    "text": TextParser,
}
FORMATS = tuple(_PARSERS)


def make_parser(fmt: str) -> TextParser | JsonLinesParser:
    return _PARSERS[fmt]()
