"""Parsers and argv templates on their own: formats without a stand-in CLI (opencode), and
the edges a stand-in would not produce."""

from __future__ import annotations

import json

import pytest

from app.sessions.agents.parsers import (
    Conversation,
    Output,
    Result,
    Usage,
    add_usage,
    make_parser,
    tool_line,
)
from app.sessions.agents.registry import agents_from_config, builtin_agents


def feed(fmt: str, *events: dict | str) -> list:
    parser = make_parser(fmt)
    return [out for event in events
            for out in parser.feed(event if isinstance(event, str) else json.dumps(event))]


def test_opencode_json_events():
    session = "ses_3b11bfdcdffeITCXse4fCuIRnU"
    events = feed(
        "opencode-json",
        {"type": "step_start", "timestamp": 1, "sessionID": session,
         "part": {"type": "step-start", "sessionID": session}},
        {"type": "tool_use", "timestamp": 2, "sessionID": session,
         "part": {"type": "tool", "tool": "bash",
                  "state": {"status": "completed", "input": {"command": "ls"},
                            "output": "a\n"}}},
        {"type": "text", "timestamp": 3, "sessionID": session,
         "part": {"type": "text", "text": "Done."}},
        {"type": "step_finish", "timestamp": 4, "sessionID": session,
         "part": {"type": "step-finish", "cost": 0.002,
                  "tokens": {"input": 11, "output": 7, "reasoning": 0,
                             "cache": {"read": 5, "write": 3}}}},
    )
    assert Conversation(session) in events
    assert Output("tool", "bash ls") in events and Output("ai", "Done.") in events
    (usage,) = [event for event in events if isinstance(event, Usage)]
    assert usage.stats == {"inputTokens": 11, "outputTokens": 7, "cacheReadInputTokens": 5,
                           "cacheCreationInputTokens": 3, "totalCostUsd": 0.002,
                           "contextWindow": None}


def test_non_json_lines_are_shown_not_dropped():
    assert feed("claude-stream-json", "Warning: something odd", "") == [
        Output("stdout", "Warning: something odd")]
    assert feed("codex-jsonl", "[1, 2]") == [Output("stdout", "[1, 2]")]


def test_claude_error_result_without_text():
    events = feed("claude-stream-json", {"type": "result", "subtype": "error_max_turns",
                                         "is_error": True, "session_id": "s"})
    assert events[-1] == Result(None, True)
    assert Output("error", "The agent reported an error: error_max_turns") in events


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
    codex = builtin_agents()["codex"]
    assert codex.argv("-hi", None) == ["codex", "exec", "--json", "-hi"]
    assert codex.argv("hi", "T") == ["codex", "exec", "--json", "resume", "T", "hi"]
    custom = agents_from_config({
        "mine": {"command": "my-agent --session={agentSessionId} {args} -- {prompt}",
                 "args": "--fast", "env": {"A": "1"}},
        "claude-code": {"args": ["--permission-mode", "plan"], "path": "/opt/claude"},
    })
    assert custom["mine"].argv("p", None) == ["my-agent", "--fast", "--", "p"]
    assert custom["mine"].argv("p", "S") == ["my-agent", "--session=S", "--fast", "--", "p"]
    assert custom["mine"].format == "text" and custom["mine"].env == {"A": "1"}
    claude = custom["claude-code"].argv("p", None)
    assert claude[0] == "/opt/claude" and claude[-4:] == ["--permission-mode", "plan", "--", "p"]


@pytest.mark.parametrize(("table", "message"), [
    ({"terminal": {"command": "x {prompt}"}}, "cannot be an agent id"),
    ({"x": {"command": "x"}}, "must contain {prompt}"),
    ({"x": {"command": "x {prompt}", "format": "xml"}}, "format must be one of"),
    ({"x": {"command": "x {prompt}", "model": "y"}}, "unknown key 'model'"),
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
    assert claude[0].source == "error"  # shown, but the turn's verdict is the result's
    assert Result("Fixed it", False) in claude


def test_codex_usage_is_a_running_total_and_input_excludes_cached():
    (total,) = feed("codex-jsonl", {"type": "turn.completed", "usage": {
        "input_tokens": 300, "cached_input_tokens": 100, "output_tokens": 60}})
    assert total.cumulative is True
    assert total.stats["inputTokens"] == 200 and total.stats["cacheReadInputTokens"] == 100
