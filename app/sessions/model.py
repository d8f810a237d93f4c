"""The session and tab model: what is persisted, what is runtime-only, and the public views."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from ..errors import now_ms

TERMINAL_TOOL = "terminal"  # every other toolType is an agent id (built-in or configured)
INPUT_MODES = ("ai", "terminal")
LAST_RESPONSE_LINES = 3
LAST_RESPONSE_CHARS = 500


def new_id() -> str:
    return str(uuid.uuid4())


@dataclasses.dataclass
class Tab:
    """An AI conversation inside a session."""

    id: str
    name: str | None
    created_at: int
    agent_session_id: str | None = None
    starred: bool = False
    usage_stats: dict[str, Any] | None = None
    has_unread: bool = False
    # Prompts waiting for the running turn to end: {"id", "text", "queuedAt"}, oldest first.
    queue: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The prompt whose turn is running ({"text", "startedAt"}), persisted so a crash can be
    # reported after restart.
    running_prompt: dict[str, Any] | None = None
    # The last running usage total a CLI reported (Codex), and for which conversation.
    usage_baseline: dict[str, Any] | None = None
    usage_baseline_for: str | None = None
    # The agent's permission mode and model for the tab's next turns (None: the agent's
    # default from the config file, else its own).
    permission_mode: str | None = None
    model: str | None = None
    # The slash commands the agent advertised (names without "/"; None: it never said).
    slash_commands: list[str] | None = None
    # What "Allow for this session" remembered, and for which conversation (agents.session_rules).
    session_rules: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    session_rules_for: str | None = None
    # Runtime only: "connecting" (agent spawned, no output yet), "busy", "waiting_input" (an
    # approval is open), "idle".
    state: str = "idle"
    thinking_start_time: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agentSessionId": self.agent_session_id,
            "name": self.name,
            "starred": self.starred,
            "state": self.state,
            "createdAt": self.created_at,
            "usageStats": self.usage_stats,
            "thinkingStartTime": self.thinking_start_time,
            "hasUnread": self.has_unread,
            "queuedPrompts": [dict(item) for item in self.queue],
            "permissionMode": self.permission_mode,
            "model": self.model,
            "slashCommands": self.slash_commands,
        }

    def doc(self) -> dict[str, Any]:
        doc = {key: value for key, value in self.public().items()
               if key not in ("state", "thinkingStartTime")}
        doc["runningPrompt"] = self.running_prompt
        doc["usageBaseline"] = self.usage_baseline
        doc["usageBaselineFor"] = self.usage_baseline_for
        doc["sessionRules"] = self.session_rules
        doc["sessionRulesFor"] = self.session_rules_for
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Tab:
        return cls(
            id=doc["id"],
            name=doc.get("name"),
            created_at=doc["createdAt"],
            agent_session_id=doc.get("agentSessionId"),
            starred=bool(doc.get("starred")),
            usage_stats=doc.get("usageStats"),
            has_unread=bool(doc.get("hasUnread")),
            queue=list(doc.get("queuedPrompts") or []),
            running_prompt=doc.get("runningPrompt"),
            usage_baseline=doc.get("usageBaseline"),
            usage_baseline_for=doc.get("usageBaselineFor"),
            permission_mode=doc.get("permissionMode"),
            model=doc.get("model"),
            slash_commands=doc.get("slashCommands"),
            session_rules=list(doc.get("sessionRules") or []),
            session_rules_for=doc.get("sessionRulesFor"),
        )


@dataclasses.dataclass
class Session:
    """One session: persisted fields plus runtime state. Mutate only under the bus lock."""

    id: str
    name: str
    tool_type: str
    input_mode: str
    cwd: str
    created_at: int
    tabs: list[Tab]
    active_tab_id: str
    shell_cwd: str | None = None
    # The tmux session its terminal attaches to (terminal sessions only; never changes).
    tmux: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    group_emoji: str | None = None
    usage_stats: dict[str, Any] | None = None
    last_response: dict[str, Any] | None = None
    agent_session_id: str | None = None
    is_live: bool = True
    live_enabled_at: int | None = None
    last_output_at: int | None = None
    # The command running in the shell, persisted so a crash can be reported after restart.
    running_command: dict[str, Any] | None = None
    # Runtime only.
    state: str = "idle"
    thinking_start_time: int | None = None

    @classmethod
    def create(cls, name: str, tool_type: str, input_mode: str, cwd: str) -> Session:
        created = now_ms()
        tab = Tab(id=new_id(), name=None, created_at=created)
        return cls(id=new_id(), name=name, tool_type=tool_type, input_mode=input_mode, cwd=cwd,
                   created_at=created, tabs=[tab], active_tab_id=tab.id,
                   live_enabled_at=created)

    def tab(self, tab_id: str | None) -> Tab | None:
        wanted = tab_id or self.active_tab_id
        return next((tab for tab in self.tabs if tab.id == wanted), None)

    def public(self) -> dict[str, Any]:
        """The session as a list item of the contract."""
        item = {
            "id": self.id,
            "name": self.name,
            "toolType": self.tool_type,
            "state": self.state,
            "inputMode": self.input_mode,
            "cwd": self.cwd,
            "shellCwd": self.shell_cwd or self.cwd,
            "tmux": self.tmux,
            "groupId": self.group_id,
            "groupName": self.group_name,
            "groupEmoji": self.group_emoji,
            "usageStats": self.usage_stats,
            "lastResponse": self.last_response,
            "agentSessionId": self.agent_session_id,
            "thinkingStartTime": self.thinking_start_time,
            "aiTabs": [tab.public() for tab in self.tabs],
            "activeTabId": self.active_tab_id,
            "isLive": self.is_live,
            "lastOutputAt": self.last_output_at,
            "createdAt": self.created_at,
        }
        if self.is_live:
            item["liveEnabledAt"] = self.live_enabled_at
        return item

    def doc(self) -> dict[str, Any]:
        """The persisted form."""
        doc = self.public()
        for runtime in ("state", "thinkingStartTime", "liveEnabledAt"):
            doc.pop(runtime, None)
        doc["aiTabs"] = [tab.doc() for tab in self.tabs]
        doc["liveEnabledAt"] = self.live_enabled_at
        doc["runningCommand"] = self.running_command
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Session:
        tabs = [Tab.from_doc(tab) for tab in doc.get("aiTabs") or []]
        return cls(
            id=doc["id"],
            name=doc["name"],
            tool_type=doc["toolType"],
            input_mode=doc["inputMode"],
            cwd=doc["cwd"],
            created_at=doc["createdAt"],
            tabs=tabs,
            active_tab_id=doc.get("activeTabId") or tabs[0].id,
            shell_cwd=doc.get("shellCwd"),
            tmux=doc.get("tmux"),
            group_id=doc.get("groupId"),
            group_name=doc.get("groupName"),
            group_emoji=doc.get("groupEmoji"),
            usage_stats=doc.get("usageStats"),
            last_response=doc.get("lastResponse"),
            agent_session_id=doc.get("agentSessionId"),
            is_live=bool(doc.get("isLive", True)),
            live_enabled_at=doc.get("liveEnabledAt"),
            last_output_at=doc.get("lastOutputAt"),
            running_command=doc.get("runningCommand"),
        )


def summarize_response(text: str, source: str,
                       full_length: int | None = None) -> dict[str, Any] | None:
    """The contract's lastResponse: first 3 lines, at most 500 characters, '...' when cut.

    `full_length` is the length of the whole response `text` was taken from.
    """
    stripped = text.strip("\n")
    if not stripped.strip():
        return None
    lines = stripped.split("\n")
    preview = "\n".join(lines[:LAST_RESPONSE_LINES])
    cut = len(lines) > LAST_RESPONSE_LINES or len(preview) > LAST_RESPONSE_CHARS
    if cut:
        preview = preview[: LAST_RESPONSE_CHARS - 3] + "..."
    return {"text": preview, "timestamp": now_ms(), "source": source,
            "fullLength": len(text) if full_length is None else full_length}
