"""A turn's parsed events written to the tab's log through its sink, whatever the protocol.

A streamed answer (Gemini's deltas, a plain-text agent's lines) is one `ai` entry that grows:
its first piece is appended, later pieces update the same entry (same id), until anything but
stderr comes between. A tool call is one `tool` entry, updated with its result.
"""

from __future__ import annotations

import collections
import os
import re
from typing import Any

from .adapter import TurnSink
from .diffs import tool_diff
from .parsers import Conversation, Event, Output, Result, ToolCall, Usage

STDERR_TAIL_LINES = 5  # kept to say why an agent that exited non-zero failed
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class Transcript:
    """Collects a turn's text, verdict and stderr tail while logging its events."""

    def __init__(self, sink: TurnSink, program: str, cwd: str) -> None:
        self.sink = sink
        self.cwd = cwd  # where the agent works: file changes are diffed against it
        self.program = os.path.basename(program)
        self.texts: list[str] = []  # the turn's answers, as the agent gave them
        self.answer: dict[str, Any] | None = None  # the entry of the answer still streaming
        self.tool_entries: dict[str, dict[str, Any]] = {}  # tool call id → its entry
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self.reported_error = False  # an `error` entry was logged
        self.result: Result | None = None
        self.interrupted = False  # set by the adapter before it stops the turn
        self.started_output = False

    def on_event(self, event: Event) -> None:
        if not self.started_output:
            self.started_output = True
            self.sink.set_state("busy")
        if isinstance(event, Output):
            self._output(event)
        elif isinstance(event, ToolCall):
            self._tool(event)
        elif isinstance(event, Conversation):
            self.sink.set_conversation(event.agent_session_id, event.slash_commands)
        elif isinstance(event, Usage):
            self.sink.record_usage(event)
        elif isinstance(event, Result):
            self.result = event
            if event.error and not self.interrupted:
                self._log("error", event.error)

    @property
    def final_text(self) -> str:
        if self.result is not None and self.result.text:
            return self.result.text
        return "\n\n".join(text.strip("\n") for text in self.texts)

    @property
    def agent_failed(self) -> bool:
        return bool(self.result and self.result.is_error)

    def exit_error(self, exit_code: int) -> str | None:
        """Why the turn failed, when the agent exited non-zero without saying so itself (a
        CLI refusing to run: an untrusted folder, a missing git repo, a bad option)."""
        if exit_code == 0 or self.interrupted or self.reported_error:
            return None
        reason = _ESCAPES.sub("", self.stderr_tail[-1]).strip() if self.stderr_tail else ""
        return f"{self.program} exited with code {exit_code}" + (f": {reason}" if reason else "")

    def _output(self, event: Output) -> None:
        if event.source == "ai" and event.stream:
            self._answer_piece(event.text)
            return
        if event.source == "stderr":  # it does not split a streamed answer around it
            self.stderr_tail.extend(line for line in event.text.split("\n") if line.strip())
        else:
            self.answer = None
        if event.source == "ai":
            self.texts.append(event.text)
        if event.text.strip():
            self._log(event.source, event.text.rstrip("\n"))

    def _answer_piece(self, text: str) -> None:
        if self.answer is None:
            if not text.strip():
                return  # blank lines before an answer
            self.texts.append(text)
            self.answer = self.sink.append("ai", text.rstrip("\n"))
            return
        self.texts[-1] += text
        grown = self.texts[-1].rstrip("\n")
        if grown != self.answer["text"]:
            self.answer = {**self.answer, "text": grown}
            self.sink.update(self.answer)

    def _tool(self, call: ToolCall) -> None:
        self.answer = None
        entry = self.tool_entries.get(call.call_id)
        if entry is None:
            # The CLI's own diff, else one made when the call is first reported: before it
            # runs, the file is as it was.
            made = tool_diff(call.name, call.input, self.cwd) if isinstance(call.input, dict) \
                else None
            self.tool_entries[call.call_id] = self.sink.append(
                "tool", call.summary, **{"diff": made, **call.detail()})
            return
        entry = {**entry, "text": call.summary, **call.detail()}
        self.tool_entries[call.call_id] = entry
        self.sink.update(entry)

    def _log(self, source: str, text: str) -> None:
        self.reported_error = self.reported_error or source == "error"
        self.sink.append(source, text)
