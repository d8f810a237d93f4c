"""Which program each agent toolType runs, with which arguments, and how its output reads.

Built-in agents cover the CLIs we know; the config file's `[agents.<id>]` tables adjust them
(`path`, `args`, `env`, and the tabs' default `permission_mode` and `model`) or add custom
agents (`command`, `format`, `env`). This module is pure data: config.py builds the registry at
start-up, the conductor picks the adapter of a spec's protocol, which turns it into an argv.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping
from typing import Any

from .parsers import FORMATS

PROMPT = "{prompt}"
AGENT_SESSION_ID = "{agentSessionId}"
# Every agent id a session may not use: "terminal" is the plain shell session.
RESERVED_IDS = ("terminal",)


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """How to run one agent for one prompt.

    `command` is an argv template: `{prompt}` is replaced by the prompt, `{agentSessionId}`
    by the conversation id of the tab. While a tab has no id yet (its first turn), an
    element holding `{agentSessionId}` is left out; when it is exactly `{agentSessionId}`,
    so is the element just before it (`--resume {agentSessionId}` goes as a pair). `args`
    (the user's extra arguments) go where `{args}` stands, else right after the program.
    """

    id: str
    command: tuple[str, ...]
    format: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Where to look for the program when it is not an absolute path: PATH, or this file.
    path: str | None = None
    # How a turn runs (adapters.ADAPTERS): "oneshot" (the command once per prompt) or an
    # agent's own protocol ("claude-control", "codex-app-server", "acp").
    protocol: str = "oneshot"
    # The permission modes the protocol can set per tab (none: the agent cannot ask), and the
    # tab's defaults; None: the agent's own default (which asks).
    permission_modes: tuple[str, ...] = ()
    permission_mode: str | None = None
    model: str | None = None
    # The flag that picks a model (None: the model cannot be chosen per tab).
    model_flag: str | None = None

    @property
    def program(self) -> str:
        return self.path or self.command[0]

    def argv(self, prompt: str, agent_session_id: str | None,
             extra: tuple[str, ...] = ()) -> list[str]:
        """The argument list for one turn (argv[0] is the program as configured); `extra`
        (the tab's mode and model flags) follows the user's `args`, so it wins."""
        argv: list[str] = []
        placed_args = False
        for part in self.command[1:]:
            if part == "{args}":
                argv.extend((*self.args, *extra))
                placed_args = True
            elif AGENT_SESSION_ID in part and agent_session_id is None:
                if part == AGENT_SESSION_ID and argv:
                    argv.pop()
            else:
                argv.append(part.replace(AGENT_SESSION_ID, agent_session_id or "")
                            .replace(PROMPT, prompt))
        if not placed_args:
            argv[0:0] = (*self.args, *extra)
        return [self.program, *argv]


# Claude Code speaks its control protocol (the prompt on stdin, approvals asked), Codex its
# app-server protocol, Gemini CLI and opencode the Agent Client Protocol; the others run in
# their non-interactive mode. The prompt is passed so that it is never read as an option (`--`,
# `--prompt=`, `--message=`, or in a protocol message), even when it starts with "-". We pass no
# permission or sandbox flags but the tab's mode and model, and opencode's "ask" (`args` in the
# config file is the user's). We do pass what a CLI needs to run at all in a folder it has not
# seen: Gemini in a folder it was never told to trust (Codex's app-server runs outside a git
# repo; its `exec` needs --skip-git-repo-check).
# Claude Code's permission modes (2.1.197); `default` asks before edits and commands.
CLAUDE_PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions", "dontAsk",
                           "auto")
# Codex's modes: an approval policy and a sandbox each (codex_app_server.CODEX_MODES); the
# first, `untrusted`, asks before commands and file changes.
CODEX_PERMISSION_MODES = ("untrusted", "on-request", "read-only", "never", "danger-full-access")
# Gemini CLI's approval modes (0.61, ACP `session/set_mode`; `default` asks) and opencode's
# agents (1.18, ACP config option `mode`), whose tool permissions OPENCODE_ASKS sets to ask.
GEMINI_PERMISSION_MODES = ("default", "autoEdit", "yolo", "plan")
OPENCODE_PERMISSION_MODES = ("build", "plan")
OPENCODE_ASKS = '{"permission": {"edit": "ask", "bash": "ask", "webfetch": "ask"}}'
BUILTIN_AGENTS: tuple[AgentSpec, ...] = (
    # The control protocol: the prompt goes to stdin, tool calls may be asked about.
    AgentSpec("claude-code",
              ("claude", "-p", "--input-format", "stream-json", "--output-format", "stream-json",
               "--verbose", "--permission-prompt-tool", "stdio",
               "--resume", AGENT_SESSION_ID, "{args}"),
              "claude-stream-json", protocol="claude-control",
              permission_modes=CLAUDE_PERMISSION_MODES, model_flag="--model"),
    # JSON-RPC on stdio: the prompt, thread id, mode and model go in its requests. (A config
    # `command` with {prompt}, such as `codex exec --json ... -- {prompt}`, runs once instead.)
    AgentSpec("codex", ("codex", "app-server", "{args}"), "codex-jsonl",
              protocol="codex-app-server", permission_modes=CODEX_PERMISSION_MODES,
              model_flag="--model"),
    # The Agent Client Protocol (acp.py): tool calls may be asked about. `format` is what a
    # one-shot `command` (with {prompt}) in the config file would print.
    AgentSpec("gemini-cli", ("gemini", "--acp", "--skip-trust", "{args}"), "gemini-stream-json",
              protocol="acp", permission_modes=GEMINI_PERMISSION_MODES, model_flag="--model"),
    # Aider continues the conversation from its history file in the folder. With stdin at
    # its end it would answer "yes" to all its questions; by default it does not commit, edit
    # .gitignore or offer shell commands (`args` can turn each back on: the last flag wins).
    AgentSpec("aider", ("aider", "--no-pretty", "--no-check-update", "--no-show-release-notes",
                        "--restore-chat-history", "--no-auto-commits", "--no-gitignore",
                        "--no-suggest-shell-commands", "{args}", f"--message={PROMPT}"),
              "aider", model_flag="--model"),
    # opencode runs every tool without asking unless its config says "ask".
    AgentSpec("opencode", ("opencode", "acp", "{args}"), "opencode-json",
              env={"OPENCODE_CONFIG_CONTENT": OPENCODE_ASKS}, protocol="acp",
              permission_modes=OPENCODE_PERMISSION_MODES, model_flag="--model"),
)


def builtin_agents() -> dict[str, AgentSpec]:
    return {spec.id: spec for spec in BUILTIN_AGENTS}


def agents_from_config(raw: Any) -> dict[str, AgentSpec]:
    """The registry: built-ins adjusted and extended by the config file's `agents` table.

    :raise ValueError: the table is malformed; the message names the agent and key.
    """
    agents = builtin_agents()
    if not isinstance(raw, dict):
        raise ValueError("'agents' must be a table of [agents.<id>] tables")
    for agent_id, table in raw.items():
        where = f"[agents.{agent_id}]"
        if agent_id in RESERVED_IDS or not agent_id.strip():
            raise ValueError(f"{where}: '{agent_id}' cannot be an agent id")
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table")
        unknown = set(table) - {"command", "format", "args", "env", "path", "permission_mode",
                                "model"}
        if unknown:
            raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r}; use command, "
                             "format, args, env, path, permission_mode, model")
        base = agents.get(agent_id)
        if base is None and "command" not in table:
            raise ValueError(f"{where}: a custom agent needs a 'command' with {PROMPT}")
        command = _words(table["command"], f"{where} command") if "command" in table \
            else base.command
        # A command with the prompt in it runs once per prompt, whatever the agent.
        protocol = "oneshot" if PROMPT in " ".join(command) or base is None else base.protocol
        if protocol == "oneshot" and PROMPT not in " ".join(command):
            raise ValueError(f"{where}: 'command' must contain {PROMPT}")
        modes = base.permission_modes if base and protocol == base.protocol else ()
        mode = _choice(table, "permission_mode", modes, where)
        model = _optional_text(table, "model", where)
        model_flag = base.model_flag if base else None
        if model is not None and model_flag is None:
            raise ValueError(f"{where}: this agent cannot choose a model (put its own flag in "
                             "'args')")
        fmt = table.get("format", base.format if base else "text")
        if fmt not in FORMATS:
            raise ValueError(f"{where}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        env = table.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ValueError(f"{where}: 'env' must be a table of strings")
        path = table.get("path")
        if path is not None and not isinstance(path, str):
            raise ValueError(f"{where}: 'path' must be a string")
        agents[agent_id] = AgentSpec(
            id=agent_id, command=command, format=fmt,
            args=_words(table.get("args", []), f"{where} args"),
            env={**(base.env if base else {}), **env}, path=path, protocol=protocol,
            permission_modes=modes, permission_mode=mode,
            model=model if model is not None else base.model if base else None,
            model_flag=model_flag)
    return agents


def _optional_text(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{where}: '{key}' must be a non-empty string")
    return value


def _choice(table: dict[str, Any], key: str, choices: tuple[str, ...], where: str) -> str | None:
    """A permission mode the agent's protocol knows; none of them when it has no modes."""
    value = _optional_text(table, key, where)
    if value is not None and value not in choices:
        allowed = f"one of {', '.join(choices)}" if choices else "not set: this agent cannot " \
            "ask for approval (it runs once per prompt)"
        raise ValueError(f"{where}: '{key}' must be {allowed}, got {value!r}")
    return value


def _words(value: Any, what: str) -> tuple[str, ...]:
    """A list of strings, or one string split like a shell would."""
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError(f"{what} must be a string or a list of strings")
