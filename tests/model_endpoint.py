"""A local stand-in for the model APIs that the real agent CLIs call, on 127.0.0.1.

It speaks enough of four wire formats for claude, codex, gemini, opencode and aider to run a
turn offline: the Anthropic Messages API (`POST /v1/messages`, streamed or not, plus
`count_tokens`), the OpenAI Responses API (`POST /v1/responses`, streamed), OpenAI Chat
Completions (`POST /v1/chat/completions`, streamed or not) and Gemini's `generateContent` /
`streamGenerateContent?alt=sse`. Any other path gets an empty JSON object and is logged in
`unknown`.

What it answers is picked by a marker in the newest user message (see SCRIPTS; tests add their
own with `script()`); a request without a marker gets DEFAULT_REPLY. A reply that calls a tool
asks for it on the user's turn and answers with its `after_tool` text once the tool's result
comes back. Every request body is kept in `requests`, so a test can check that a later turn
carried the earlier ones.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_PIECE_S = 0.3  # between the pieces of a slow reply
PIECE_S = 0.02  # between the pieces of any other streamed reply
USAGE = {"input": 120, "cached": 20, "output": 30}  # reported for every reply


@dataclasses.dataclass(frozen=True)
class ToolRequest:
    """A tool call the model asks for: a shell command, writing a file, or a named tool of
    the CLI with its input as given (`name`, `input`: e.g. Claude's AskUserQuestion)."""

    command: str | None = None
    write_path: str | None = None
    write_text: str = ""
    name: str | None = None
    input: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Reply:
    """A scripted answer: its text in streamed pieces, or a tool call first."""

    pieces: tuple[str, ...] = ()
    piece_delay: float = PIECE_S
    tool: ToolRequest | None = None
    after_tool: str = "The tool ran."

    @property
    def text(self) -> str:
        return "".join(self.pieces)


# Markdown with a code block, cut so that pieces end and start with line breaks.
DEFAULT_PIECES = ("Hello from the **model endpoint**.\n", "\n", "```python\n", "print(1)\n",
                  "```\n", "\nThat is ", "all.")
DEFAULT_REPLY = Reply(DEFAULT_PIECES)
SCRIPTS: dict[str, Reply] = {
    "[[slow]]": Reply(tuple(f"slow piece {n}. " for n in range(60)), SLOW_PIECE_S),
    "[[ls]]": Reply(tool=ToolRequest(command="ls"), after_tool="Listed the folder."),
    "[[touch]]": Reply(tool=ToolRequest(command="touch approved.txt"),
                       after_tool="Created approved.txt."),
    "[[write]]": Reply(tool=ToolRequest(write_path="notes.md", write_text="# Notes\nwritten\n"),
                       after_tool="Wrote notes.md."),
}
MARKER = re.compile(r"\[\[[a-z0-9:_-]+\]\]")
# The tools each CLI offers that run a command or write a file, most fitting first.
SHELL_TOOLS = ("Bash", "bash", "exec_command", "shell", "run_shell_command")
# Codex's apply_patch (offered for the models it knows) is a freeform tool: a patch as text.
WRITE_TOOLS = ("Write", "write", "write_file", "apply_patch")
LIST_TOOLS = ("list_directory",)  # gemini offers no shell tool without a terminal


@dataclasses.dataclass
class Recorded:
    path: str
    body: Any

    @property
    def text(self) -> str:
        return json.dumps(self.body)


class ModelEndpoint:
    """The HTTP server; `url` is its base (`http://127.0.0.1:PORT`)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.unknown: list[str] = []
        self.scripts = dict(SCRIPTS)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(_Handler):
            model = endpoint

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="model-endpoint")

    def __enter__(self) -> ModelEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, marker: str, reply: Reply) -> None:
        """Answer prompts that contain `marker` with `reply`."""
        with self._lock:
            self.scripts[marker] = reply

    def record(self, path: str, body: Any) -> None:
        with self._lock:
            self.requests.append(Recorded(path, body))

    def bodies_with(self, *texts: str) -> list[Recorded]:
        """The recorded requests whose body contains every one of `texts`."""
        with self._lock:
            return [r for r in self.requests if all(text in r.text for text in texts)]

    def reply_for(self, user_text: str) -> Reply:
        with self._lock:
            for marker in MARKER.findall(user_text):
                if marker in self.scripts:
                    return self.scripts[marker]
        return DEFAULT_REPLY


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    model: ModelEndpoint

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `requests` and `unknown`, not the console

    def do_GET(self) -> None:
        self.model.unknown.append(f"GET {self.path}")
        self._json({"data": [], "models": []})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")}
        path = self.path.split("?")[0]
        self.model.record(self.path, body)
        try:
            if path.endswith("/messages/count_tokens"):
                self._json({"input_tokens": USAGE["input"]})
            elif path.endswith("/messages"):
                self._anthropic(body)
            elif path.endswith("/responses"):
                self._responses(body)
            elif path.endswith("/chat/completions"):
                self._chat(body)
            elif ":streamGenerateContent" in path or ":generateContent" in path:
                self._gemini(body, stream=":streamGenerateContent" in path)
            elif path.endswith(":countTokens"):
                self._json({"totalTokens": USAGE["input"]})
            else:
                self.model.unknown.append(f"POST {self.path}")
                self._json({})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the CLI went away mid-answer (an interrupt)

    # -- transport --------------------------------------------------------------------------

    def _json(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: Iterator[tuple[str | None, Any]]) -> None:
        """Server-sent events, chunked; `events` yields (event name or None, data)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events:
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
            chunk = frame.encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- Anthropic Messages -----------------------------------------------------------------

    def _anthropic(self, body: dict[str, Any]) -> None:
        turns = [m for m in body.get("messages") or [] if isinstance(m, dict)
                 and m.get("role") in ("user", "assistant")]  # claude adds "system" ones
        last = turns[-1].get("content") if turns else ""
        blocks = last if isinstance(last, list) else [{"type": "text", "text": str(last)}]
        after_tool = any(b.get("type") == "tool_result" for b in blocks if isinstance(b, dict))
        reply = self.model.reply_for(_texts(blocks))
        tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
        call = None if after_tool else _tool_call(reply, tools, _schema_anthropic)
        text_pieces = () if call else _answer(reply, after_tool)
        message_id = "msg_" + uuid.uuid4().hex[:20]
        usage = {"input_tokens": USAGE["input"], "output_tokens": USAGE["output"],
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": USAGE["cached"]}
        content: list[dict[str, Any]] = []
        if text_pieces:
            content.append({"type": "text", "text": "".join(text_pieces)})
        if call:
            content.append({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20],
                            "name": call[0], "input": call[1]})
        stop = "tool_use" if call else "end_turn"
        if not body.get("stream"):
            self._json({"id": message_id, "type": "message", "role": "assistant",
                        "model": body.get("model", "m"), "content": content,
                        "stop_reason": stop, "stop_sequence": None, "usage": usage})
            return

        def events() -> Iterator[tuple[str, Any]]:
            yield "message_start", {"type": "message_start", "message": {
                "id": message_id, "type": "message", "role": "assistant",
                "model": body.get("model", "m"), "content": [], "stop_reason": None,
                "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}}
            for index, block in enumerate(content):
                if block["type"] == "text":
                    yield "content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {"type": "text", "text": ""}}
                    for piece in text_pieces:
                        time.sleep(reply.piece_delay)
                        yield "content_block_delta", {
                            "type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": piece}}
                else:
                    yield "content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {**block, "input": {}}}
                    yield "content_block_delta", {
                        "type": "content_block_delta", "index": index,
                        "delta": {"type": "input_json_delta",
                                  "partial_json": json.dumps(block["input"])}}
                yield "content_block_stop", {"type": "content_block_stop", "index": index}
            yield "message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop, "stop_sequence": None},
                                    "usage": {"output_tokens": USAGE["output"]}}
            yield "message_stop", {"type": "message_stop"}

        self._sse(events())

    # -- OpenAI Responses -------------------------------------------------------------------

    def _responses(self, body: dict[str, Any]) -> None:
        items = [i for i in body.get("input") or [] if isinstance(i, dict)]
        after_tool = bool(items) and items[-1].get("type") in ("function_call_output",
                                                               "custom_tool_call_output")
        users = [i for i in items if i.get("role") == "user"]
        reply = self.model.reply_for(_texts(users[-1].get("content")) if users else "")
        tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
        call = None if after_tool else _tool_call(reply, tools, _schema_openai)
        pieces = () if call else _answer(reply, after_tool)
        response_id = "resp_" + uuid.uuid4().hex[:20]

        def events() -> Iterator[tuple[str, Any]]:
            yield "response.created", {"type": "response.created",
                                       "response": {"id": response_id}}
            if call and tools[call[0]].get("type") == "custom":
                item = {"type": "custom_tool_call", "id": "ctc_" + uuid.uuid4().hex[:12],
                        "call_id": "call_" + uuid.uuid4().hex[:12], "name": call[0],
                        "input": call[1]["input"]}
                yield "response.output_item.done", {"type": "response.output_item.done",
                                                    "output_index": 0, "item": item}
            elif call:
                item = {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:12],
                        "call_id": "call_" + uuid.uuid4().hex[:12], "name": call[0],
                        "arguments": json.dumps(call[1])}
                yield "response.output_item.done", {"type": "response.output_item.done",
                                                    "output_index": 0, "item": item}
            else:
                item_id = "msg_" + uuid.uuid4().hex[:12]
                yield "response.output_item.added", {
                    "type": "response.output_item.added", "output_index": 0,
                    "item": {"type": "message", "id": item_id, "role": "assistant",
                             "content": []}}
                for piece in pieces:
                    time.sleep(reply.piece_delay)
                    yield "response.output_text.delta", {
                        "type": "response.output_text.delta", "item_id": item_id,
                        "output_index": 0, "content_index": 0, "delta": piece}
                yield "response.output_item.done", {
                    "type": "response.output_item.done", "output_index": 0,
                    "item": {"type": "message", "id": item_id, "role": "assistant",
                             "content": [{"type": "output_text", "text": "".join(pieces),
                                          "annotations": []}]}}
            yield "response.completed", {"type": "response.completed", "response": {
                "id": response_id, "usage": {
                    "input_tokens": USAGE["input"],
                    "input_tokens_details": {"cached_tokens": USAGE["cached"]},
                    "output_tokens": USAGE["output"],
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": USAGE["input"] + USAGE["output"]}}}

        self._sse(events())

    # -- OpenAI Chat Completions ------------------------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        after_tool = bool(messages) and messages[-1].get("role") == "tool"
        users = [m for m in messages if m.get("role") == "user"]
        reply = self.model.reply_for(_texts(users[-1].get("content")) if users else "")
        tools = {(t.get("function") or {}).get("name"): t.get("function")
                 for t in body.get("tools") or [] if isinstance(t, dict)}
        call = None if after_tool else _tool_call(reply, tools, _schema_openai)
        pieces = () if call else _answer(reply, after_tool)
        chat_id = "chatcmpl-" + uuid.uuid4().hex[:12]
        model = body.get("model", "m")
        usage = {"prompt_tokens": USAGE["input"], "completion_tokens": USAGE["output"],
                 "total_tokens": USAGE["input"] + USAGE["output"],
                 "prompt_tokens_details": {"cached_tokens": USAGE["cached"]}}
        tool_calls = [{"index": 0, "id": "call_" + uuid.uuid4().hex[:12], "type": "function",
                       "function": {"name": call[0], "arguments": json.dumps(call[1])}}] \
            if call else None
        finish = "tool_calls" if call else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces) or None}
            if tool_calls:
                message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"}
                                         for c in tool_calls]
            self._json({"id": chat_id, "object": "chat.completion", "created": int(time.time()),
                        "model": model, "choices": [{"index": 0, "message": message,
                                                     "finish_reason": finish}],
                        "usage": usage})
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"id": chat_id, "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        def events() -> Iterator[tuple[None, Any]]:
            yield None, chunk({"role": "assistant", "content": ""})
            for piece in pieces:
                time.sleep(reply.piece_delay)
                yield None, chunk({"content": piece})
            if tool_calls:
                yield None, chunk({"tool_calls": tool_calls})
            yield None, chunk({}, finish)
            yield None, {"id": chat_id, "object": "chat.completion.chunk",
                         "created": int(time.time()), "model": model, "choices": [],
                         "usage": usage}
            yield None, "[DONE]"

        self._sse(events())

    # -- Gemini -----------------------------------------------------------------------------

    def _gemini(self, body: dict[str, Any], stream: bool) -> None:
        contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
        parts = (contents[-1].get("parts") or []) if contents else []
        after_tool = any("functionResponse" in p for p in parts if isinstance(p, dict))
        users = [c for c in contents if c.get("role") == "user"
                 and not any("functionResponse" in p for p in c.get("parts") or [])]
        reply = self.model.reply_for(_texts(users[-1].get("parts")) if users else "")
        config = body.get("generationConfig") or {}
        usage = {"promptTokenCount": USAGE["input"], "candidatesTokenCount": USAGE["output"],
                 "totalTokenCount": USAGE["input"] + USAGE["output"],
                 "cachedContentTokenCount": USAGE["cached"]}
        if config.get("responseMimeType") == "application/json":
            # Gemini CLI's helpers (model routing, next-speaker check) want JSON.
            verdict = {"reasoning": "scripted", "model_choice": "flash", "next_speaker": "user",
                       "complexity_reasoning": "scripted", "complexity_score": 1}
            self._gemini_answer([{"text": json.dumps(verdict)}], usage, stream)
            return
        declarations = {d.get("name"): d for tool in body.get("tools") or []
                        for d in tool.get("functionDeclarations") or [] if isinstance(d, dict)}
        call = None if after_tool else _tool_call(reply, declarations, _schema_gemini)
        if call:
            self._gemini_answer([{"functionCall": {"name": call[0], "args": call[1]}}], usage,
                                stream)
            return
        pieces = _answer(reply, after_tool)
        if not stream:
            self._gemini_answer([{"text": "".join(pieces)}], usage, False)
            return

        def events() -> Iterator[tuple[None, Any]]:
            for index, piece in enumerate(pieces):
                time.sleep(reply.piece_delay)
                last = index == len(pieces) - 1
                yield None, _gemini_chunk([{"text": piece}], usage if last else None,
                                          "STOP" if last else None)

        self._sse(events())

    def _gemini_answer(self, parts: list[dict[str, Any]], usage: dict[str, Any],
                       stream: bool) -> None:
        chunk = _gemini_chunk(parts, usage, "STOP")
        if stream:
            self._sse(iter([(None, chunk)]))
        else:
            self._json(chunk)


def _gemini_chunk(parts: list[dict[str, Any]], usage: dict[str, Any] | None,
                  finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": "m"}
    if usage:
        chunk["usageMetadata"] = usage
    return chunk


def _answer(reply: Reply, after_tool: bool) -> tuple[str, ...]:
    """The text pieces of an answer that calls no tool."""
    if after_tool:
        return (reply.after_tool,)
    return reply.pieces or ("This CLI offers no tool that fits the request.",)


def _texts(content: Any) -> str:
    """All text in a message's content, whatever its API's shape."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_texts(part) for part in content)
    if isinstance(content, dict):
        return "\n".join(str(value) for key, value in content.items()
                         if key == "text" and isinstance(value, str)) or \
            _texts(content.get("content"))
    return ""


def _schema_anthropic(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("input_schema") or {}


def _schema_openai(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("parameters") or {}


def _schema_gemini(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("parametersJsonSchema") or tool.get("parameters") or {}


def _tool_call(reply: Reply, tools: dict[str, Any], schema_of) -> tuple[str, dict] | None:
    """(tool name, arguments) for the reply's tool request, in the tool's own schema; None
    when the reply calls no tool or the CLI offers none that fits."""
    request = reply.tool
    if request is None:
        return None
    if request.name is not None:
        return (request.name, dict(request.input or {})) if request.name in tools else None
    if request.write_path is not None:
        name = next((n for n in WRITE_TOOLS if n in tools), None)
        if name is None:
            return None
        if name == "apply_patch":
            added = "".join(f"+{line}\n" for line in request.write_text.splitlines())
            return name, {"input": f"*** Begin Patch\n*** Add File: {request.write_path}\n"
                                   f"{added}*** End Patch\n"}
        props = schema_of(tools[name]).get("properties") or {}
        path_key = next((k for k in ("file_path", "filePath", "path") if k in props), "path")
        return name, {path_key: request.write_path, "content": request.write_text}
    name = next((n for n in SHELL_TOOLS if n in tools), None)
    if name is None:
        listing = next((n for n in LIST_TOOLS if n in tools), None)
        if listing is None:
            return None
        props = schema_of(tools[listing]).get("properties") or {}
        return listing, {next(iter(props), "path"): "."}
    schema = schema_of(tools[name])
    props = schema.get("properties") or {}
    key = "cmd" if "cmd" in props else "command"
    value: Any = request.command
    if (props.get(key) or {}).get("type") == "array":
        value = ["bash", "-lc", request.command]
    arguments: dict[str, Any] = {key: value}
    if "description" in (schema.get("required") or []):
        arguments["description"] = "Run a command"
    return name, arguments
