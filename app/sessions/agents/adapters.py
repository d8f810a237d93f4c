"""Which adapter runs each protocol named in the registry (AgentSpec.protocol)."""

from __future__ import annotations

from .acp import AcpAdapter
from .adapter import AgentAdapter
from .claude import ClaudeControlAdapter
from .codex_app_server import CodexAppServerAdapter
from .oneshot import OneShotAdapter
from .registry import AgentSpec

ADAPTERS: dict[str, type[OneShotAdapter] | type[ClaudeControlAdapter]
               | type[CodexAppServerAdapter] | type[AcpAdapter]] = {
    "oneshot": OneShotAdapter,
    "claude-control": ClaudeControlAdapter,
    "codex-app-server": CodexAppServerAdapter,
    "acp": AcpAdapter,
}


def make_adapter(spec: AgentSpec, program: str) -> AgentAdapter:
    """A fresh adapter for one turn of the agent; `program` is its resolved path."""
    return ADAPTERS[spec.protocol](spec, program)
