"""Output parsers: one agent CLI's stdout, line by line, into what a tab shows and counts.

Each parser turns a line into events: Output (a log entry: `ai`, `thinking`, `tool`,
`error`, `system`, `stdout`), Conversation (the agent's own session id, for resuming),
Usage (tokens and cost of this turn, in the contract's keys) and Result (the turn's final
text and whether it failed). A line that is not what the format expects is shown as it
is (`stdout`), never dropped. Formats follow each CLI's documented stream:

- claude-stream-json: `claude -p --output-format stream-json --verbose`
- codex-jsonl: `codex exec --json` (thread/turn/item events)
- gemini-stream-json: `gemini --output-format stream-json`
- opencode-json: `opencode run --format json`
- aider: plain text, plus aider's "Tokens: ... Cost: ..." report line
- text: plain text
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from ..screen import OutputCleaner

TOOL_LINE_CHARS = 200
# Tool inputs worth one readable line, most telling first.
_TOOL_KEYS = ("file_path", "path", "filePath", "command", "cmd", "pattern", "url", "query",
              "description", "prompt")


@dataclasses.dataclass(frozen=True)
class Output:
    """A log entry. `stream` marks a piece of streamed text that joins its neighbours."""

    source: str
    text: str
    stream: bool = False


@dataclasses.dataclass(frozen=True)
class Conversation:
    agent_session_id: str


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens and cost; `cumulative` when the CLI reports the conversation's running total."""

    stats: dict[str, Any]
    cumulative: bool = False


@dataclasses.dataclass(frozen=True)
class Result:
    text: str | None
    is_error: bool


Event = Output | Conversation | Usage | Result


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
    line = f"{name} {detail}".strip().replace("\n", " ")
    return line if len(line) <= TOOL_LINE_CHARS else line[:TOOL_LINE_CHARS - 3] + "..."


def _result_line(content: Any) -> str:
    """A tool result as one short line: its first line, and how many more there are."""
    if isinstance(content, list):
        content = "\n".join(str(part.get("text", "")) for part in content
                            if isinstance(part, dict))
    text = str(content or "").strip()
    if not text:
        return "(no output)"
    lines = text.split("\n")
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    first = lines[0] if len(lines[0]) <= TOOL_LINE_CHARS else lines[0][:TOOL_LINE_CHARS] + "..."
    return first + more


class TextParser:
    """Plain text: every line is agent text, cleaned of terminal escapes and streamed."""

    def __init__(self) -> None:
        self._cleaner = OutputCleaner()

    def feed(self, line: str) -> list[Event]:
        self._cleaner.feed(line + "\n")
        text = self._cleaner.take_complete()
        return [Output("ai", text, stream=True)] if text else []


class AiderParser(TextParser):
    """Aider's plain text; its report line gives usage (`Tokens: 2.1k sent, 96 received.
    Cost: $0.0012 message, $0.03 session.`), counted, and still shown as `system`."""

    _REPORT = re.compile(r"^Tokens: (?P<tokens>.+?)\.(\s+Cost: \$(?P<cost>[\d.]+) message.*)?$")
    _PART = re.compile(r"([\d.]+)(k|m)?\s+(sent|received|cache write|cache hit)")

    def feed(self, line: str) -> list[Event]:
        match = self._REPORT.match(line.strip())
        if not match:
            return super().feed(line)
        counts = {kind: _scaled(number, unit) for number, unit, kind
                  in self._PART.findall(match.group("tokens"))}
        cost = float(match.group("cost")) if match.group("cost") else None
        return [usage(counts.get("sent"), counts.get("received"), counts.get("cache hit"),
                      counts.get("cache write"), cost),
                Output("system", line.strip())]


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
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return [Output("stdout", line)]
        return self.event(event)

    def event(self, event: dict[str, Any]) -> list[Event]:
        raise NotImplementedError


class ClaudeStreamParser(JsonLinesParser):
    """Claude Code's stream-json: system/init, assistant and user messages, result."""

    def event(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init" and event.get("session_id"):
            return [Conversation(str(event["session_id"]))]
        if kind == "assistant":
            return [out for block in _blocks(event) for out in self._assistant_block(block)]
        if kind == "user":
            return [Output("error" if block.get("is_error") else "tool",
                           "→ " + _result_line(block.get("content")))
                    for block in _blocks(event) if block.get("type") == "tool_result"]
        if kind == "result":
            return self._result(event)
        return []

    @staticmethod
    def _assistant_block(block: dict[str, Any]) -> list[Event]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [Output("ai", block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [Output("thinking", block["thinking"])]
        if kind == "tool_use":
            return [Output("tool", tool_line(str(block.get("name", "tool")),
                                             block.get("input")))]
        return []

    @staticmethod
    def _result(event: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if event.get("session_id"):
            events.append(Conversation(str(event["session_id"])))
        tokens = event.get("usage") or {}
        events.append(usage(tokens.get("input_tokens"), tokens.get("output_tokens"),
                            tokens.get("cache_read_input_tokens"),
                            tokens.get("cache_creation_input_tokens"),
                            event.get("total_cost_usd"), _context_window(event)))
        failed = bool(event.get("is_error")) or event.get("subtype") != "success"
        text = event.get("result") if isinstance(event.get("result"), str) else None
        if failed:
            reason = text or str(event.get("subtype") or "error")
            events.append(Output("error", f"The agent reported an error: {reason}"))
        events.append(Result(text, failed))
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
        if kind == "item.started":
            return self._started(event.get("item") or {})
        if kind == "item.completed":
            return self._completed(event.get("item") or {})
        if kind == "turn.completed":
            # Codex reports the thread's running total (its input count includes the cached
            # part): the conductor turns it into this turn's share.
            tokens = event.get("usage") or {}
            cached = _count(tokens.get("cached_input_tokens"))
            stats = usage(_count(tokens.get("input_tokens")) - cached,
                          tokens.get("output_tokens"), cached).stats
            return [Usage(stats, cumulative=True)]
        if kind == "turn.failed":
            message = str((event.get("error") or {}).get("message") or "the turn failed")
            return [Output("error", message), Result(None, True)]
        if kind == "error":
            return [Output("error", str(event.get("message") or "error"))]
        return []

    @staticmethod
    def _started(item: dict[str, Any]) -> list[Event]:
        kind = item.get("type")
        if kind == "command_execution":
            return [Output("tool", tool_line("$", item.get("command")))]
        if kind == "mcp_tool_call":
            name = f"{item.get('server', 'mcp')}.{item.get('tool', 'tool')}"
            return [Output("tool", tool_line(name, item.get("arguments")))]
        if kind == "web_search":
            return [Output("tool", tool_line("Search", item.get("query")))]
        return []

    @staticmethod
    def _completed(item: dict[str, Any]) -> list[Event]:
        kind = item.get("type")
        if kind == "agent_message" and item.get("text"):
            return [Output("ai", item["text"])]
        if kind == "reasoning" and item.get("text"):
            return [Output("thinking", item["text"])]
        if kind == "command_execution":
            code = item.get("exit_code")
            source = "tool" if code in (0, None) else "error"
            return [Output(source, "→ " + _result_line(item.get("aggregated_output"))
                           + ("" if code in (0, None) else f" (exit code {code})"))]
        if kind == "file_change":
            verbs = {"add": "Add", "delete": "Delete", "update": "Edit"}
            return [Output("tool", tool_line(verbs.get(change.get("kind"), "Edit"),
                                             change.get("path")))
                    for change in item.get("changes") or [] if isinstance(change, dict)]
        if kind == "error":  # Codex's non-fatal notices (config warnings, reroutes)
            return [Output("system", str(item.get("message") or "error"))]
        return []


class GeminiStreamParser(JsonLinesParser):
    """Gemini CLI's stream-json: init, message (assistant deltas), tool_use/result, result."""

    def event(self, event: dict[str, Any]) -> list[Event]:
        kind = event.get("type")
        if kind == "init":
            sid = event.get("session_id") or event.get("sessionId")
            return [Conversation(str(sid))] if sid else []
        if kind == "message" and event.get("role") == "assistant" and event.get("content"):
            return [Output("ai", str(event["content"]), stream=bool(event.get("delta")))]
        if kind == "tool_use":
            return [Output("tool", tool_line(str(event.get("tool_name", "tool")),
                                             event.get("parameters")))]
        if kind == "tool_result":
            failed = event.get("status") not in (None, "success")
            text = (event.get("error") or {}).get("message") if failed else event.get("output")
            return [Output("error" if failed else "tool", "→ " + _result_line(text))]
        if kind == "error":
            source = "system" if event.get("severity") == "warning" else "error"
            return [Output(source, str(event.get("message") or "error"))]
        if kind == "result":
            stats = event.get("stats") or {}
            failed = event.get("status") not in (None, "success")
            cached = _count(stats.get("cached"))  # part of Gemini's input count
            events: list[Event] = [usage(_count(stats.get("input_tokens")) - cached,
                                         stats.get("output_tokens"), cached)]
            if failed:
                message = (event.get("error") or {}).get("message") or "the turn failed"
                events.append(Output("error", str(message)))
            return [*events, Result(None, failed)]
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
            state = part.get("state") or {}
            events.append(Output("tool", tool_line(str(part.get("tool", "tool")),
                                                   state.get("input"))))
        elif kind == "step_finish":
            tokens = part.get("tokens") or {}
            cache = tokens.get("cache") or {}
            events.append(usage(tokens.get("input"), tokens.get("output"), cache.get("read"),
                                cache.get("write"), part.get("cost")))
        elif kind == "error":
            error = event.get("error") or {}
            message = (error.get("data") or {}).get("message") or error.get("name") or "error"
            events += [Output("error", str(message)), Result(None, True)]
        return events


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
