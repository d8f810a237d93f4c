"""Parsers and argv templates on their own: the raw output of the real CLIs (recorded in
tests/agents/recordings, see its README), formats without a stand-in CLI (opencode), and the
edges a stand-in would not produce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.sessions.agents.codex_app_server import AppServerParser, RpcReply, RpcRequest
from app.sessions.agents.parsers import (
    SLASH_COMMANDS_MAX,
    TOOL_DETAIL_BYTES,
    Conversation,
    Output,
    Result,
    ToolCall,
    Usage,
    add_usage,
    make_parser,
    tool_line,
)
from app.sessions.agents.registry import agents_from_config, builtin_agents

RECORDINGS = Path(__file__).resolve().parent / "agents" / "recordings"


def feed(fmt: str, *events: dict | str) -> list:
    parser = make_parser(fmt)
    return [out for event in events
            for out in parser.feed(event if isinstance(event, str) else json.dumps(event))]


def recorded(fmt: str, name: str) -> list:
    """A real CLI's recorded stdout, fed line by line as the reader does."""
    return feed(fmt, *(RECORDINGS / name).read_text(encoding="utf-8").split("\n"))


def of_type(events: list, kind: type) -> list:
    return [event for event in events if isinstance(event, kind)]


def streamed_answer(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, Output) and e.source == "ai")


def test_opencode_json_events():
    session = "ses_3b11bfdcdffeITCXse4fCuIRnU"
    events = feed(
        "opencode-json",
        {"type": "step_start", "timestamp": 1, "sessionID": session,
         "part": {"type": "step-start", "sessionID": session}},
        {"type": "tool_use", "timestamp": 2, "sessionID": session,
         "part": {"type": "tool", "tool": "bash", "callID": "call_1",
                  "state": {"status": "completed", "input": {"command": "ls"},
                            "output": "a\n"}}},
        {"type": "text", "timestamp": 3, "sessionID": session,
         "part": {"type": "text", "text": "Done."}},
        {"type": "step_finish", "timestamp": 4, "sessionID": session,
         "part": {"type": "step-finish", "cost": 0.002,
                  "tokens": {"input": 11, "output": 7, "reasoning": 0,
                             "cache": {"read": 5, "write": 3}}}},
    )
    assert Conversation(session) in events and Output("ai", "Done.") in events
    (tool,) = of_type(events, ToolCall)
    assert tool.summary == "bash ls\n→ a"
    (usage,) = of_type(events, Usage)
    assert usage.stats == {"inputTokens": 11, "outputTokens": 7, "cacheReadInputTokens": 5,
                           "cacheCreationInputTokens": 3, "totalCostUsd": 0.002,
                           "contextWindow": None}


def test_claude_recorded_turn_gives_answer_usage_and_conversation():
    events = recorded("claude-stream-json", "claude-turn1.jsonl")
    assert Conversation("802eb58a-9612-4324-9fc8-600e635fb982") in events
    assert Output("ai", "Hello from mock. MOCKREPLY\n```python\nprint(1)\n```") in events
    (usage,) = of_type(events, Usage)
    assert usage.stats["inputTokens"] == 321 and usage.stats["outputTokens"] == 42
    assert usage.stats["contextWindow"] == 1_000_000
    assert of_type(events, Result) == [
        Result("Hello from mock. MOCKREPLY\n```python\nprint(1)\n```", False, None)]


def test_claude_init_gives_the_slash_commands_it_advertises():
    conversation = of_type(recorded("claude-stream-json",
                                    "claude-control-protocol-allow.jsonl"), Conversation)[0]
    assert conversation.slash_commands[:3] == ("deep-research", "update-config", "verify")
    assert "compact" in conversation.slash_commands and len(conversation.slash_commands) == 25
    init = {"type": "system", "subtype": "init", "session_id": "s1"}
    (odd,) = feed("claude-stream-json", {**init, "slash_commands": [
        "/review", "review", 7, None, "two words", "x" * 101, "", "ok"]})
    assert odd.slash_commands == ("review", "ok")  # no doubles, no spaces, none too long
    many = feed("claude-stream-json", {**init, "slash_commands": [f"c{n}" for n in range(999)]})
    assert len(many[0].slash_commands) == SLASH_COMMANDS_MAX
    assert feed("claude-stream-json", init) == [Conversation("s1")]  # it did not say


def test_claude_tool_call_keeps_its_full_input_and_result():
    started, done = of_type(recorded("claude-stream-json", "claude-tool-ls.jsonl"), ToolCall)
    assert started.call_id == done.call_id == "toolu_1953954bbd434ce5a3b1"
    assert (started.done, started.summary) == (False, "Bash ls")
    assert done.summary == "Bash ls\n→ README.md"
    assert done.detail() == {"toolName": "Bash", "input": {"command": "ls",
                                                           "description": "Run a command"},
                             "result": "README.md", "isError": False}


def test_claude_denied_tool_call_is_a_failed_tool_not_a_failed_turn():
    events = recorded("claude-stream-json", "claude-tool-write-denied.jsonl")
    done = of_type(events, ToolCall)[-1]
    assert done.is_error and done.detail()["result"].startswith("touch in '/home/user/")
    assert done.summary.startswith("Bash touch mock_created.txt\n→ touch in ")
    assert of_type(events, Result)[0].is_error is False


def test_claude_interrupted_turn_keeps_the_usage_seen_before_the_interrupt():
    events = recorded("claude-stream-json", "claude-interrupted-sigint.jsonl")
    (usage,) = of_type(events, Usage)  # the result itself reports zero
    assert usage.stats["inputTokens"] == 321 and usage.stats["outputTokens"] == 1
    (result,) = of_type(events, Result)
    assert result.is_error and result.error == \
        "The agent reported an error: error_during_execution"
    assert not [e for e in events if isinstance(e, Output) and e.source == "error"]


def test_codex_recorded_command_is_one_tool_call_started_then_done():
    events = recorded("codex-jsonl", "codex-tool-ls.jsonl")
    started, done = of_type(events, ToolCall)
    assert started.summary == "$ /bin/bash -lc ls"
    assert done.summary == "$ /bin/bash -lc ls\n→ README.md"
    assert done.detail()["result"] == "README.md\n"
    assert Output("system", "Model metadata for `mock-model` not found. Defaulting to fallback "
                            "metadata; this can degrade performance and cause issues.") in events


def test_codex_records_cache_writes_and_input_excludes_cached_parts():
    (total,) = feed("codex-jsonl", {"type": "turn.completed", "usage": {
        "input_tokens": 300, "cached_input_tokens": 100, "cache_write_input_tokens": 40,
        "output_tokens": 60, "reasoning_output_tokens": 0}})
    assert total.cumulative is True
    assert total.stats["inputTokens"] == 160
    assert total.stats["cacheReadInputTokens"] == 100
    assert total.stats["cacheCreationInputTokens"] == 40


def test_codex_failed_command_shows_its_exit_code():
    item = {"id": "item_1", "type": "command_execution", "command": "false",
            "aggregated_output": "", "exit_code": 1, "status": "failed"}
    (done,) = feed("codex-jsonl", {"type": "item.completed", "item": item})
    assert done.is_error and done.summary == "$ false\n→ (no output) (exit code 1)"


def app_server_events(name: str) -> tuple[AppServerParser, list]:
    """A recorded `codex app-server` stdout, fed to the adapter's parser."""
    parser = AppServerParser("/project/work")
    lines = (RECORDINGS / name).read_text(encoding="utf-8").split("\n")
    return parser, [event for line in lines for event in parser.feed(line)]


def test_codex_app_server_file_change_is_a_request_with_its_diff_and_usage_per_response():
    parser, events = app_server_events("codex-app-server-write.jsonl")
    (asked,) = of_type(events, RpcRequest)
    assert asked.method == "item/fileChange/requestApproval"
    (change,) = parser.file_changes[asked.params["itemId"]]
    assert change["kind"] == {"type": "add"}
    started, done = [e for e in of_type(events, ToolCall) if e.name == "file_change"]
    assert started.summary == "Add /project/work/notes.md" and not started.done
    assert done.summary == "Add /project/work/notes.md\n→ done"
    assert done.detail()["diff"] == ("--- /dev/null\n+++ b/notes.md\n@@ -0,0 +1,2 @@\n"
                                     "+# Notes\n+written\n")
    # The answer streams as deltas, once; the turn ends completed.
    assert [e.text for e in of_type(events, Output) if e.source == "ai"] == ["Wrote notes.md."]
    assert of_type(events, Result) == [Result(None, False)]
    assert of_type(events, Conversation)
    assert {reply.id for reply in of_type(events, RpcReply)} == {1, 2, 3}
    # One usage per model response (the call, then the answer): cached input taken out.
    usages = of_type(events, Usage)
    assert len(usages) == 2 and not any(u.cumulative for u in usages)
    assert usages[0].stats == {"inputTokens": 100, "outputTokens": 30,
                               "cacheReadInputTokens": 20, "cacheCreationInputTokens": 0,
                               "totalCostUsd": 0.0, "contextWindow": usages[0].stats[
                                   "contextWindow"]}
    assert usages[0].stats["contextWindow"] > 0


def test_codex_app_server_declined_command_is_a_failed_tool_call():
    _, events = app_server_events("codex-app-server-declined.jsonl")
    (asked,) = of_type(events, RpcRequest)
    assert asked.method == "item/commandExecution/requestApproval"
    assert "touch approved.txt" in asked.params["command"]
    done = [e for e in of_type(events, ToolCall) if e.done]
    assert [call.summary for call in done] == [
        "$ /bin/bash -lc 'touch approved.txt'\n→ (no output) (declined)"]
    assert done[0].is_error
    assert Output("system", "Model metadata for `m` not found. Defaulting to fallback metadata; "
                            "this can degrade performance and cause issues.") in events


def test_codex_app_server_failed_and_interrupted_turns():
    parser = AppServerParser("/w")

    def feed_one(method: str, **params) -> list:
        return parser.feed(json.dumps({"method": method, "params": params}))

    assert feed_one("error", error={"message": "retrying"}, willRetry=True) == [
        Output("system", "retrying")]
    assert feed_one("error", error={"message": "stream disconnected"}, willRetry=False) == []
    assert feed_one("turn/completed", turn={"status": "failed", "error": None}) == [
        Result(None, True, "stream disconnected")]
    assert feed_one("turn/completed", turn={"status": "interrupted"}) == [Result(None, True)]


def test_codex_app_server_messages_of_any_shape_are_read_without_failing():
    parser = AppServerParser("/w")

    def read(message) -> list:
        return parser.feed(message if isinstance(message, str) else json.dumps(message))

    def completed(**item) -> list:
        return read({"method": "item/completed", "params": {"item": item}})

    assert read("codex says hi") == [Output("stdout", "codex says hi")]
    assert read({"id": [1], "result": 1}) == [RpcReply([1], 1, None)]
    assert completed(type="fileChange", changes="x") == []
    assert completed(type="reasoning", summary="not a list") == []
    (change,) = completed(type="fileChange", changes=[{"kind": "add", "path": 5, "diff": None}])
    assert change.summary == "Edit 5\n→ done" and change.diff.startswith("--- a/5")
    (mcp,) = completed(type="mcpToolCall", error="boom", result=[1])
    assert mcp.is_error and mcp.result == "boom"
    assert read({"method": "turn/completed", "params": {"turn": "x"}}) == [
        Result(None, True, "the turn failed")]
    (counted,) = read({"method": "thread/tokenUsage/updated", "params": {
        "tokenUsage": {"last": {"inputTokens": "many", "outputTokens": 3}}}})
    assert counted.stats["inputTokens"] == 0 and counted.stats["outputTokens"] == 3
    assert read({"method": "item/started", "params": {"item": "x"}}) == []
    assert read({"method": "thread/started", "params": "x"}) == []


def test_gemini_tool_result_without_output_is_shown_as_done():
    events = recorded("gemini-stream-json", "gemini-tool-ls.jsonl")
    started, done = of_type(events, ToolCall)
    assert started.summary == "list_directory ."
    assert done.summary == "list_directory .\n→ done"
    assert done.detail()["input"] == {"dir_path": "."} and done.detail()["result"] is None
    assert streamed_answer(events) == "Tool finished. MOCKTOOLDONE"


def test_gemini_recorded_deltas_keep_their_line_breaks():
    events = recorded("gemini-stream-json", "gemini-turn1.jsonl")
    assert all(e.stream for e in events if isinstance(e, Output))
    assert streamed_answer(events) == "Hello from mock. MOCKREPLY\n```python\nprint(1)\n```"
    (usage,) = of_type(events, Usage)
    assert usage.stats["inputTokens"] == 800 and usage.stats["cacheReadInputTokens"] == 400


def test_gemini_interrupted_turn_has_no_result():
    events = recorded("gemini-stream-json", "gemini-interrupted-sigint.jsonl")
    assert of_type(events, Result) == [] and "slow piece 3" in streamed_answer(events)


def test_opencode_recorded_tool_shows_its_output():
    events = recorded("opencode-json", "opencode-tool-write.jsonl")
    (tool,) = of_type(events, ToolCall)
    assert tool.done and tool.summary == "bash touch mock_created.txt\n→ (no output)"
    assert tool.detail()["input"]["command"] == "touch mock_created.txt"


def test_opencode_error_event_fails_the_turn_with_its_message():
    (result,) = of_type(recorded("opencode-json", "opencode-error-api-unreachable.jsonl"),
                        Result)
    assert result.is_error and result.error.startswith("Cannot connect to API")


def test_aider_banner_and_notices_are_system_entries_not_the_answer():
    events = recorded("aider", "aider-turn1.txt")
    assert streamed_answer(events) == "Hello from mock. MOCKREPLY\n```python\nprint(1)\n```\n"
    system = [e.text for e in events if isinstance(e, Output) and e.source == "system"]
    assert system[:2] == ["Analytics have been permanently disabled.",
                          'Update git name with: git config user.name "Your Name"']
    for notice in ("Aider v0.86.2", "Model: openai/mock with whole edit format",
                   "Git repo: .git with 1 files", "Repo-map: using 1024 tokens, auto refresh",
                   "Tokens: 772 sent, 16 received.", "Applied edit to Hello from mock. MOCKREPLY"):
        assert notice in system
    assert any(text.startswith("HTTPSConnectionPool(host='raw.githubusercontent.com'")
               for text in system)
    (usage,) = of_type(events, Usage)
    assert usage.stats["inputTokens"] == 772 and usage.stats["outputTokens"] == 16


def test_aider_restored_history_notice_and_interrupt_are_system():
    restored = recorded("aider", "aider-turn3-restore-chat-history.txt")
    assert Output("system", "Restored previous conversation history.") in restored
    interrupted = recorded("aider", "aider-interrupted-sigint.txt")
    assert Output("system", "^C again to exit") in interrupted
    assert streamed_answer(interrupted).strip() == "slow piece 0. slow piece 1. " \
                                                   "slow piece 2. slow piece 3."


def test_tool_input_and_result_are_capped():
    call = ToolCall("c1", "Write", {"file_path": "big.txt", "content": "x" * 100_000},
                    done=True, result="é" * 40_000)
    detail = call.detail()
    assert detail["truncated"] is True
    assert isinstance(detail["input"], str) and len(detail["input"]) == TOOL_DETAIL_BYTES
    assert len(detail["result"].encode()) <= TOOL_DETAIL_BYTES
    assert detail["result"] == "é" * (TOOL_DETAIL_BYTES // 2)
    assert call.summary == "Write big.txt\n→ " + "é" * 200 + "..."


def test_non_json_lines_are_shown_not_dropped():
    assert feed("claude-stream-json", "Warning: something odd", "") == [
        Output("stdout", "Warning: something odd")]
    assert feed("codex-jsonl", "[1, 2]") == [Output("stdout", "[1, 2]")]


def test_claude_error_result_without_text():
    events = feed("claude-stream-json", {"type": "result", "subtype": "error_max_turns",
                                         "is_error": True, "session_id": "s"})
    assert events[-1] == Result(None, True, "The agent reported an error: error_max_turns")


def test_text_output_is_cleaned_of_terminal_escapes():
    assert feed("text", "\x1b[2Kprogress 10%\rprogress 100%") == [
        Output("ai", "progress 100%\n", stream=True)]


def test_usage_sums_and_tool_lines():
    one = {"inputTokens": 1, "outputTokens": 2, "cacheReadInputTokens": 3,
           "cacheCreationInputTokens": 4, "totalCostUsd": 0.1, "contextWindow": None}
    two = {**one, "totalCostUsd": 0.2, "contextWindow": 1000}
    assert add_usage(add_usage(None, one), two) == {
        "inputTokens": 2, "outputTokens": 4, "cacheReadInputTokens": 6,
        "cacheCreationInputTokens": 8, "totalCostUsd": 0.3, "contextWindow": 1000}
    assert tool_line("Bash", {"command": "npm test\n-- --watch", "timeout": 5}) == \
        "Bash npm test -- --watch"
    assert len(tool_line("Read", {"file_path": "x" * 500})) == 200


def test_argv_templates_drop_the_resume_pair_on_the_first_turn():
    opencode = agents_from_config({"opencode": {  # its one-shot run, chosen in the config
        "command": "opencode run --format json --session {agentSessionId} {args} -- {prompt}"}
    })["opencode"]
    assert opencode.protocol == "oneshot" and opencode.format == "opencode-json"
    assert opencode.argv("hi", None) == ["opencode", "run", "--format", "json", "--", "hi"]
    assert opencode.argv("hi", "T") == ["opencode", "run", "--format", "json",
                                        "--session", "T", "--", "hi"]
    custom = agents_from_config({
        "mine": {"command": "my-agent --session={agentSessionId} {args} -- {prompt}",
                 "args": "--fast", "env": {"A": "1"}},
        "claude-code": {"args": ["--permission-mode", "plan"], "path": "/opt/claude"},
    })
    assert custom["mine"].argv("p", None) == ["my-agent", "--fast", "--", "p"]
    assert custom["mine"].argv("p", "S") == ["my-agent", "--session=S", "--fast", "--", "p"]
    assert custom["mine"].format == "text" and custom["mine"].env == {"A": "1"}
    claude = custom["claude-code"].argv("p", None, ("--model", "m"))
    # Claude Code takes its prompt on stdin (the control protocol); the tab's flags come last.
    assert claude[0] == "/opt/claude" and "p" not in claude
    assert claude[-4:] == ["--permission-mode", "plan", "--model", "m"]
    assert custom["claude-code"].protocol == "claude-control"


def test_a_command_with_the_prompt_in_it_runs_once_per_prompt_and_modes_are_checked():
    agents = agents_from_config({
        "claude-code": {"command": "claude -p --output-format stream-json --verbose -- {prompt}",
                        "model": "opus"},
        "codex": {"model": "gpt-x"}})
    assert agents["claude-code"].protocol == "oneshot"
    assert agents["claude-code"].permission_modes == () and agents["claude-code"].model == "opus"
    assert agents["codex"].model == "gpt-x" and agents["codex"].model_flag == "--model"
    assert agents_from_config({"claude-code": {"permission_mode": "plan"}})[
        "claude-code"].permission_mode == "plan"
    for table, message in (
            ({"claude-code": {"permission_mode": "yolo"}}, "must be one of default"),
            ({"aider": {"permission_mode": "plan"}}, "cannot ask for approval"),
            ({"codex": {"permission_mode": "plan"}}, "must be one of untrusted"),
            ({"claude-code": {"model": ""}}, "'model' must be a non-empty string")):
        with pytest.raises(ValueError, match=message):
            agents_from_config(table)


def test_a_prompt_starting_with_a_dash_is_never_an_option():
    # (the agents with a protocol get the prompt in a message: tests/test_real_agents.py)
    assert builtin_agents()["aider"].argv("-v please", "S")[-1] == "--message=-v please"


def test_first_run_refusals_are_avoided_and_aider_asks_nothing_by_default():
    agents = builtin_agents()
    # Gemini CLI and opencode get the prompt over ACP; Gemini runs in an untrusted folder.
    assert agents["gemini-cli"].argv("p", None) == ["gemini", "--acp", "--skip-trust"]
    assert agents["opencode"].argv("p", None) == ["opencode", "acp"]
    # Codex's app-server gets the prompt in a JSON-RPC message and runs outside a git repo.
    assert agents["codex"].argv("p", None) == ["codex", "app-server"]
    aider = agents["aider"].argv("p", None)
    for flag in ("--restore-chat-history", "--no-auto-commits", "--no-gitignore",
                 "--no-suggest-shell-commands"):
        assert flag in aider
    # The config's args come after the defaults, so they can turn one back on.
    chosen = agents_from_config({"aider": {"args": ["--auto-commits"]}})["aider"]
    argv = chosen.argv("p", None)
    assert argv.index("--auto-commits") > argv.index("--no-auto-commits")


@pytest.mark.parametrize(("table", "message"), [
    ({"terminal": {"command": "x {prompt}"}}, "cannot be an agent id"),
    ({"x": {"command": "x"}}, "must contain {prompt}"),
    ({"x": {"command": "x {prompt}", "format": "xml"}}, "format must be one of"),
    ({"x": {"command": "x {prompt}", "colour": "y"}}, "unknown key 'colour'"),
    ({"x": {"command": "x {prompt}", "model": "y"}}, "cannot choose a model"),
    ({"codex": {"env": {"A": 1}}}, "'env' must be a table of strings"),
])
def test_bad_agent_tables(table, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        agents_from_config(table)


def test_notices_and_failed_tool_calls_do_not_fail_a_turn():
    codex = feed("codex-jsonl", {"type": "item.completed", "item": {
        "id": "item_9", "type": "error", "message": "model rerouted to gpt-5"}})
    assert codex == [Output("system", "model rerouted to gpt-5")]
    claude = feed("claude-stream-json",
                  {"type": "user", "message": {"content": [{
                      "type": "tool_result", "tool_use_id": "t1", "is_error": True,
                      "content": "npm test exited 1"}]}},
                  {"type": "result", "subtype": "success", "is_error": False,
                   "result": "Fixed it", "session_id": "s"})
    assert claude[0].is_error  # shown, but the turn's verdict is the result's
    assert Result("Fixed it", False) in claude
