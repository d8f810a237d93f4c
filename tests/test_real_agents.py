"""The real agent CLIs (claude, codex, gemini, opencode, aider), driven by the real server,
against the local model endpoint (tests/model_endpoint.py): nothing leaves 127.0.0.1.

`.ci/install-agents` installs the CLIs into a cache folder outside the clone and links them into
`<cache>/bin` (`MAESTRO_CI_CACHE`, default ~/.cache/maestro-web-ci). A CLI missing there fails
its tests, with the reason, in CI (`CI` set) or with `MAESTRO_REAL_AGENTS=1`; elsewhere they are
skipped with a message naming the script. One server, HOME and model endpoint serve the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, ServerProcess, wait_for
from tests.model_endpoint import DEFAULT_REPLY, ModelEndpoint, Reply, ToolRequest
from tests.test_agents import ai_log, detail, prompt, tab_of, turns_done
from tests.test_sessions_api import create

pytestmark = pytest.mark.real_agents

CACHE = Path(os.environ.get("MAESTRO_CI_CACHE") or Path.home() / ".cache" / "maestro-web-ci")
AGENT_BIN = CACHE / "bin"
PROGRAMS = {"claude-code": "claude", "codex": "codex", "gemini-cli": "gemini",
            "opencode": "opencode", "aider": "aider"}
AGENTS = list(PROGRAMS)
TURN_TIMEOUT_S = 90  # opencode takes 5-20 s a turn on 2 cores
INTERRUPT_AFTER_S = 1.5  # into a slow answer (one piece per 0.3 s, 18 s in all)


def require_cli(agent: str) -> None:
    """Fail (in CI) or skip (elsewhere) when the agent's CLI is not installed."""
    program = PROGRAMS[agent]
    if os.access(AGENT_BIN / program, os.X_OK):
        return
    failed = CACHE / "failed" / program
    reason = failed.read_text().strip() if failed.exists() else \
        f"{program} is not installed in {AGENT_BIN}: run .ci/install-agents"
    if os.environ.get("CI") or os.environ.get("MAESTRO_REAL_AGENTS"):
        pytest.fail(f"{agent}: {reason}")
    pytest.skip(f"{agent}: {reason}")


def cli_environment(home: Path, url: str) -> dict[str, str]:
    """Each CLI's documented settings for a model endpoint, in a HOME of its own."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(f"""
model = "m"
model_provider = "mock"
check_for_update_on_startup = false

[model_providers.mock]
name = "mock"
base_url = "{url}/v1"
env_key = "MOCK_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
""")
    (home / ".gemini").mkdir()
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    (home / ".config" / "opencode").mkdir(parents=True)
    (home / ".config" / "opencode" / "opencode.json").write_text(json.dumps({
        "provider": {"mock": {"npm": "@ai-sdk/openai-compatible", "name": "mock",
                              "options": {"baseURL": f"{url}/v1", "apiKey": "x"},
                              "models": {"m": {"name": "m"}, "m2": {"name": "m2"}}}},
        "model": "mock/m"}))
    return {
        "PATH": f"{AGENT_BIN}:{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".local/state"),
        # claude
        "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "x",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1",
        # codex
        "CODEX_HOME": str(codex_home), "MOCK_API_KEY": "x",
        # gemini
        "GEMINI_API_KEY": "x", "GOOGLE_GEMINI_BASE_URL": url, "GEMINI_CLI_NO_RELAUNCH": "true",
        # opencode (npm offline: it would fetch its plugin package in the background)
        "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_SHARE": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1", "npm_config_offline": "true",
        # aider (the diff edit format leaves a code block in an answer alone)
        "OPENAI_API_BASE": f"{url}/v1", "OPENAI_API_KEY": "x", "AIDER_MODEL": "openai/m",
        "AIDER_EDIT_FORMAT": "diff", "AIDER_ANALYTICS_DISABLE": "true",
        "AIDER_CHECK_UPDATE": "false", "AIDER_SHOW_MODEL_WARNINGS": "false",
    }


@pytest.fixture(scope="module")
def endpoint() -> Iterator[ModelEndpoint]:
    with ModelEndpoint() as model:
        yield model


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory,
                endpoint: ModelEndpoint) -> Iterator[ServerProcess]:
    """The real server, with the real CLIs first on its PATH and a HOME of their own; the
    built-in agent commands as shipped (no config file)."""
    root = tmp_path_factory.mktemp("real-agents")
    home = root / "home"
    home.mkdir()
    server = ServerProcess(root / "data", home,
                           ["--token", str(uuid.uuid4()), "--no-rate-limit",
                            "--interrupt-grace-s", "3"],
                           env=cli_environment(home, endpoint.url))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A session folder that is not a git repo (codex and gemini refuse such folders unless
    told otherwise) and not the server's folder."""
    path = tmp_path / "work"
    path.mkdir()
    (path / "README.md").write_text("# Project\n")
    return path


def session_for(server: ServerProcess, agent: str, folder: Path) -> str:
    require_cli(agent)
    if agent == "aider":  # aider would otherwise ask to create one, and answer yes
        subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    return create(server, folder, toolType=agent)["id"]


def finished(server: ServerProcess, sid: str, count: int) -> list[dict]:
    return turns_done(server, sid, count, timeout=TURN_TIMEOUT_S)


def errors(server: ServerProcess, sid: str) -> list[str]:
    return [text for source, text in ai_log(server, sid) if source == "error"]


@pytest.mark.parametrize("agent", AGENTS)
def test_a_turn_shows_the_answer_and_the_next_turn_carries_it(real_server, endpoint, folder,
                                                              agent):
    sid = session_for(real_server, agent, folder)
    first, second = f"first-{uuid.uuid4().hex[:8]}", f"second-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, f"-v {first}")  # a leading dash is never read as an option
    (entry,) = finished(real_server, sid, 1)
    assert entry["success"] is True, (ai_log(real_server, sid), real_server.log_text)
    assert errors(real_server, sid) == []
    # One continuous Markdown text, its code block intact, and nothing of aider's banner.
    answer = DEFAULT_REPLY.text
    assert [text for source, text in ai_log(real_server, sid) if source == "ai"] == [answer]
    assert entry["fullResponse"] == answer
    assert detail(real_server, sid)["lastResponse"]["text"].startswith("Hello from the")
    usage = entry["usageStats"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0, usage
    conversation = tab_of(detail(real_server, sid))["agentSessionId"]

    prompt(real_server, sid, f"And again, {second}")
    turn_two = finished(real_server, sid, 2)[1]
    assert turn_two["success"] is True, ai_log(real_server, sid)
    assert endpoint.bodies_with(first, second, "model endpoint"), \
        "the second turn's request did not carry the first turn"
    assert tab_of(detail(real_server, sid))["agentSessionId"] == conversation
    assert detail(real_server, sid)["usageStats"]["inputTokens"] > usage["inputTokens"]


@pytest.mark.parametrize("agent", AGENTS)
def test_an_interrupted_turn_is_not_a_success_nor_an_agent_error(real_server, endpoint,
                                                                 folder, agent):
    sid = session_for(real_server, agent, folder)
    tag = f"story-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, f"[[slow]] tell a long story {tag}")
    wait_for(lambda: endpoint.bodies_with("[[slow]]", tag), timeout=TURN_TIMEOUT_S)
    time.sleep(INTERRUPT_AFTER_S)
    reply = real_server.api("POST", f"session/{sid}/interrupt").json()
    assert reply["wasRunning"] is True, ai_log(real_server, sid)
    (entry,) = finished(real_server, sid, 1)
    assert entry["success"] is False
    assert "slow piece 10" not in entry["fullResponse"]  # it stopped early
    log = ai_log(real_server, sid)
    assert ("system", f"Interrupted ({reply['stoppedBy']})") in log
    assert errors(real_server, sid) == [], log
    assert detail(real_server, sid)["state"] == "idle"


# What each CLI's tool call looks like in the log: (entry text, tool name, input key).
TOOL_CALLS = {
    "claude-code": ("[[ls]]", "Bash ls\n→ README.md", "Bash", "command"),
    "codex": ("[[ls]]", "$ /bin/bash -lc ls\n→ README.md", "command_execution", "command"),
    "gemini-cli": ("[[ls]]", "$ ls\n→ done", "execute", "command"),
    "opencode": ("[[touch]]", "$ touch approved.txt\n→ (no output)", "execute", "command"),
}
# Codex's default mode asks before every command (`ls` too): this test is about the log entry,
# so its tab reads freely (a read-only sandbox, asking only to go beyond it).
TOOL_MODES = {"codex": "read-only"}
# The agents whose default mode asks before this command (opencode over ACP; Gemini CLI runs
# a read-only `ls` without asking): the test allows it.
ASKS_FIRST = ("opencode",)


def allow_what_is_asked(server: ServerProcess, sid: str) -> None:
    """Allow the session's first approval, once it is asked."""
    def asked() -> list[dict]:
        return server.api("GET", f"session/{sid}/approvals").json()["approvals"]

    (approval,) = wait_for(asked, timeout=TURN_TIMEOUT_S)
    decided = server.api("POST", f"session/{sid}/approvals/{approval['id']}",
                         json={"decision": "allow"})
    assert decided.status_code == 200, decided.text


@pytest.mark.parametrize("agent", list(TOOL_CALLS))
def test_a_tool_call_keeps_its_input_and_result_and_runs_in_the_session_folder(
        real_server, folder, agent):
    marker, text, name, key = TOOL_CALLS[agent]
    sid = session_for(real_server, agent, folder)
    if agent in TOOL_MODES:
        tab = detail(real_server, sid)["activeTabId"]
        assert real_server.api("PATCH", f"session/{sid}/tabs/{tab}", json={
            "permissionMode": TOOL_MODES[agent]}).status_code == 200
    prompt(real_server, sid, f"Use a tool {marker}")
    if agent in ASKS_FIRST:
        allow_what_is_asked(real_server, sid)
    (entry,) = finished(real_server, sid, 1)
    assert entry["success"] is True, ai_log(real_server, sid)
    tools = [e for e in detail(real_server, sid)["aiLogs"] if e["source"] == "tool"]
    assert [tool["text"] for tool in tools] == [text]
    (tool,) = tools
    assert tool["toolName"] == name and tool["isError"] is False
    assert key in tool["input"]
    if agent == "opencode":  # it takes its folder from $PWD: the session's, not the server's
        assert (folder / "approved.txt").exists()
        assert not (ROOT / "approved.txt").exists()
    elif agent != "gemini-cli":  # gemini reports no output for its tools, also over ACP
        assert "README.md" in tool["result"]



def test_the_model_endpoint_answers_as_scripted_and_records_every_request(endpoint):
    endpoint.script("[[mine]]", Reply(("Scripted ", "answer."),
                                      tool=ToolRequest(command="touch approved.txt")))
    chat = {"model": "m", "messages": [{"role": "user", "content": "go [[mine]]"}],
            "tools": [{"type": "function", "function": {
                "name": "bash", "parameters": {"properties": {"command": {"type": "string"}},
                                               "required": ["command", "description"]}}}]}
    called = requests.post(f"{endpoint.url}/v1/chat/completions", json=chat, timeout=10).json()
    (call,) = called["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "bash"
    assert json.loads(call["function"]["arguments"]) == {"command": "touch approved.txt",
                                                         "description": "Run a command"}
    chat["messages"].append({"role": "tool", "tool_call_id": call["id"], "content": ""})
    answered = requests.post(f"{endpoint.url}/v1/chat/completions", json=chat, timeout=10)
    assert answered.json()["choices"][0]["message"]["content"] == "The tool ran."
    plain = requests.post(f"{endpoint.url}/v1/messages", timeout=10, json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]}).json()
    assert plain["content"] == [{"type": "text", "text": DEFAULT_REPLY.text}]
    assert requests.post(f"{endpoint.url}/v1/elsewhere", json={}, timeout=10).json() == {}
    assert "POST /v1/elsewhere" in endpoint.unknown
    assert len(endpoint.bodies_with("[[mine]]")) == 2
