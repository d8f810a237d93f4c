"""AI mode through the real server, with stand-in agent CLIs (tests/agents) first on PATH."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.test_sessions_api import create
from tests.wsclient import LiveClient

STAND_INS = Path(__file__).resolve().parent / "agents"


def agent_env(path: str = f"{STAND_INS}:{os.environ['PATH']}") -> dict[str, str]:
    return {"PATH": path}


@pytest.fixture
def agents(make_server):
    """A server whose PATH finds the stand-in claude, codex, gemini and aider (not opencode)."""
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--interrupt-grace-s", "1", "--max-queued-prompts", "2",
                       env=agent_env())


def prompt(server, sid: str, text: str, **fields) -> dict:
    response = server.api("POST", f"session/{sid}/send", json={"command": text, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def detail(server, sid: str, tab: str | None = None) -> dict:
    query = f"?tabId={tab}" if tab else ""
    return server.api("GET", f"session/{sid}{query}").json()["session"]


def ai_log(server, sid: str, tab: str | None = None) -> list[tuple[str, str]]:
    return [(entry["source"], entry["text"]) for entry in detail(server, sid, tab)["aiLogs"]]


def history(server, sid: str) -> list[dict]:
    """Oldest first."""
    return server.api("GET", f"history?sessionId={sid}").json()["entries"][::-1]


def turns_done(server, sid: str, count: int, timeout: float = 20) -> list[dict]:
    return wait_for(lambda: len(entries := history(server, sid)) >= count and entries, timeout)


def tab_of(session: dict, tab_id: str | None = None) -> dict:
    wanted = tab_id or session["activeTabId"]
    return next(tab for tab in session["aiTabs"] if tab["id"] == wanted)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def hanging_pids(project: Path) -> list[int]:
    pid_file = project / ".standin-pids"
    text = wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
    return [int(pid) for pid in text.split()]


def test_claude_prompt_streams_tool_use_usage_and_history(agents, project):
    session = create(agents, project, toolType="claude-code")
    sid = session["id"]
    assert session["inputMode"] == "ai" and session["state"] == "idle"
    sent = prompt(agents, sid, "use a tool")
    assert sent["mode"] == "prompt" and sent["queued"] is False and sent["entryId"]
    (entry,) = turns_done(agents, sid, 1)
    assert ai_log(agents, sid) == [
        ("user", "use a tool"),
        ("tool", "Edit src/app.py\n→ The file src/app.py has been updated. (+1 lines)"),
        ("ai", "Echo: use a tool"),
    ]
    tool = detail(agents, sid)["aiLogs"][1]
    assert tool["toolName"] == "Edit" and tool["isError"] is False
    assert tool["input"] == {"file_path": "src/app.py", "old_string": "a", "new_string": "b"}
    assert tool["result"] == "The file src/app.py has been updated.\nline 2"
    usage = {"inputTokens": 10, "outputTokens": 40, "cacheReadInputTokens": 30,
             "cacheCreationInputTokens": 20, "totalCostUsd": 0.0125, "contextWindow": 200000}
    assert entry["usageStats"] == usage and entry["success"] is True
    assert entry["exitCode"] == 0 and entry["summary"] == "use a tool"
    assert entry["fullResponse"] == "Echo: use a tool" and entry["elapsedTimeMs"] >= 0
    now = detail(agents, sid)
    tab = tab_of(now)
    assert entry["agentSessionId"] == tab["agentSessionId"] == now["agentSessionId"]
    assert tab["usageStats"] == usage and now["usageStats"] == usage
    assert tab["state"] == "idle" and tab["thinkingStartTime"] is None
    assert now["state"] == "idle" and now["lastResponse"]["text"] == "Echo: use a tool"
    assert now["lastResponse"]["source"] == "ai"


def test_second_prompt_resumes_the_conversation_and_sums_usage(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "hello")
    turns_done(agents, sid, 1)
    conversation = tab_of(detail(agents, sid))["agentSessionId"]
    assert conversation
    prompt(agents, sid, "again")
    second = turns_done(agents, sid, 2)[1]
    assert second["fullResponse"] == f"Echo: again\nresumed {conversation}"
    now = detail(agents, sid)
    assert tab_of(now)["agentSessionId"] == conversation
    assert now["usageStats"]["outputTokens"] == 80
    assert now["usageStats"]["totalCostUsd"] == pytest.approx(0.025)
    assert now["lastResponse"]["text"] == f"Echo: again\nresumed {conversation}"


def test_live_events_of_a_slow_answer_arrive_in_order(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    client = LiveClient(agents, session_id=sid)
    try:
        reply = client.request({"type": "send_command", "sessionId": sid,
                                "command": "slow please"}, "command_result")
        assert reply["success"] is True and reply["queued"] is False
        client.wait_for(lambda m: m["type"] == "session:state" and m["state"] == "idle",
                        timeout=20)
        events = client.events()
        outputs = [(m["entry"]["source"], m["entry"]["text"]) for m in events
                   if m["type"] == "session:output"]
        assert outputs == [("user", "slow please"), ("thinking", "Let me think about this."),
                           ("ai", "Part 1 of the answer."), ("ai", "Part 2 of the answer."),
                           ("ai", "Part 3 of the answer."), ("ai", "Echo: slow please")]
        states = [m["state"] for m in events
                  if m["type"] == "session:state" and m["state"] != m["previousState"]]
        assert states == ["connecting", "busy", "idle"]
        busy_tabs = [tab for m in events if m["type"] == "tabs:change"
                     for tab in m["aiTabs"] if tab["state"] == "busy"]
        assert busy_tabs and all(tab["thinkingStartTime"] for tab in busy_tabs)
        types = [m["type"] for m in events]
        end = types.index("session:exit")
        assert types[end + 1] == "history:added"
        assert events[end]["tabId"] and events[end]["exitCode"] == 0
        assert events[end]["signal"] is None
        assert all(m["tabId"] == events[end]["tabId"] for m in events
                   if m["type"] == "session:output")
    finally:
        client.close()


def test_prompts_queue_while_the_tab_is_busy(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "slow first")
    second = prompt(agents, sid, "second")
    third = prompt(agents, sid, "third")
    assert (second["queued"], second["position"], second["entryId"]) == (True, 1, None)
    assert (third["queued"], third["position"]) == (True, 2)
    queued = tab_of(detail(agents, sid))["queuedPrompts"]
    assert [item["text"] for item in queued] == ["second", "third"]
    full = agents.api("POST", f"session/{sid}/send", json={"command": "fourth"})
    assert full.status_code == 409 and "2 prompts queued" in full.json()["message"]
    entries = turns_done(agents, sid, 3, timeout=30)
    assert [entry["summary"] for entry in entries] == ["slow first", "second", "third"]
    users = [text for source, text in ai_log(agents, sid) if source == "user"]
    assert users == ["slow first", "second", "third"]
    assert tab_of(detail(agents, sid))["queuedPrompts"] == []


def test_interrupt_stops_the_turn_and_the_next_prompt_resumes(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "hang on")
    pids = hanging_pids(project)
    wait_for(lambda: ("ai", "Working on it...") in ai_log(agents, sid))
    conversation = tab_of(detail(agents, sid))["agentSessionId"]
    assert detail(agents, sid)["state"] == "busy"
    reply = agents.api("POST", f"session/{sid}/interrupt").json()
    assert reply["wasRunning"] is True and reply["stoppedBy"] == "SIGINT"
    (entry,) = turns_done(agents, sid, 1)
    assert entry["success"] is False and entry["exitCode"] == 130
    assert ("system", "Interrupted (SIGINT)") in ai_log(agents, sid)
    wait_for(lambda: not any(alive(pid) for pid in pids))
    assert detail(agents, sid)["state"] == "idle"
    nothing = agents.api("POST", f"session/{sid}/interrupt").json()
    assert nothing["wasRunning"] is False and nothing["stoppedBy"] is None
    prompt(agents, sid, "continue")
    assert turns_done(agents, sid, 2)[1]["fullResponse"].endswith(f"resumed {conversation}")


def test_interrupt_escalates_when_the_agent_ignores_sigint(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "stubborn hang")
    pids = hanging_pids(project)
    wait_for(lambda: ("ai", "Working on it...") in ai_log(agents, sid))
    client = LiveClient(agents)
    try:
        reply = client.request({"type": "interrupt", "sessionId": sid,
                                "tabId": detail(agents, sid)["activeTabId"]},
                               "interrupt_result")
    finally:
        client.close()
    assert reply["success"] is True and reply["stoppedBy"] == "SIGTERM"
    assert turns_done(agents, sid, 1)[0]["exitCode"] == 143
    assert ("system", "Interrupted (SIGTERM)") in ai_log(agents, sid)
    assert not any(alive(pid) for pid in pids)


def test_a_failed_turn_is_reported(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "fail now")
    (entry,) = turns_done(agents, sid, 1)
    assert entry["success"] is False and entry["exitCode"] == 1
    assert ("error", "The agent reported an error: error_during_execution") in ai_log(agents, sid)
    assert detail(agents, sid)["state"] == "idle"


def test_a_missing_cli_puts_the_session_in_error(agents, project):
    sid = create(agents, project, toolType="opencode")["id"]
    sent = prompt(agents, sid, "hello")
    assert sent["queued"] is False
    wait_for(lambda: detail(agents, sid)["state"] == "error")
    (_, (source, text)) = ai_log(agents, sid)
    assert source == "system"
    assert text.startswith("opencode not found on PATH; install it or set [agents.opencode] "
                           'path = "/full/path/to/opencode" in ')
    assert history(agents, sid) == []
    assert agents.process.poll() is None


def test_terminal_sessions_take_no_prompts(agents, project):
    sid = create(agents, project)["id"]
    refused = agents.api("POST", f"session/{sid}/send",
                         json={"command": "hi", "inputMode": "ai"})
    assert refused.status_code == 400
    assert refused.json()["message"] == ("A terminal session has no agent; send with "
                                         "inputMode 'terminal'")


def test_codex_turns_stream_and_resume_the_thread(agents, project):
    sid = create(agents, project, toolType="codex")["id"]
    prompt(agents, sid, "tool time")
    (entry,) = turns_done(agents, sid, 1)
    assert ai_log(agents, sid) == [
        ("user", "tool time"), ("thinking", "**Planning** the change"),
        ("tool", "$ bash -lc ls\n→ README.md"), ("tool", "Edit src/app.py\n→ done"),
        ("ai", "Echo: tool time"),
    ]
    per_turn = {"inputTokens": 50, "outputTokens": 20, "cacheReadInputTokens": 50,
                "cacheCreationInputTokens": 0, "totalCostUsd": 0.0, "contextWindow": None}
    assert entry["usageStats"] == per_turn  # input excludes the cached part, as for Claude
    thread = tab_of(detail(agents, sid))["agentSessionId"]
    prompt(agents, sid, "more")
    second = turns_done(agents, sid, 2)[1]
    assert second["fullResponse"] == f"Echo: more\nresumed {thread}"
    # Codex reports the thread's running total (200/100/40 now): the turn gets its share
    assert second["usageStats"] == per_turn
    assert detail(agents, sid)["usageStats"]["inputTokens"] == 100
    prompt(agents, sid, "fail")
    failed = turns_done(agents, sid, 3)[2]
    assert failed["success"] is False  # the turn failed; the app-server itself exits 0
    assert ("error", "stream disconnected") in ai_log(agents, sid)
    # A request Codex refuses, or a server that ends mid-turn: a failed turn that says why.
    prompt(agents, sid, "refuse")
    prompt(agents, sid, "vanish")
    refused, vanished = turns_done(agents, sid, 5)[3:]
    assert refused["success"] is False and vanished["success"] is False
    log = ai_log(agents, sid)
    assert ("error", "codex app-server refused turn/start: bad input") in log
    assert ("error", "codex app-server ended before the turn finished") in log


def test_gemini_deltas_are_joined_and_the_session_resumed(make_server, project, tmp_path):
    # Gemini CLI's one-shot stream-json run, as a config file can still choose it.
    config = tmp_path / "config.toml"
    config.write_text("""
[agents.gemini-cli]
command = ["gemini", "--output-format", "stream-json", "--skip-trust", "--resume",
           "{agentSessionId}", "--prompt={prompt}"]
""")
    agents = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--config", str(config), env=agent_env())
    sid = create(agents, project, toolType="gemini-cli")["id"]
    prompt(agents, sid, "slow tool answer")
    (entry,) = turns_done(agents, sid, 1)
    # Token-sized deltas, 10 ms apart, make one answer entry.
    assert ai_log(agents, sid) == [("user", "slow tool answer"),
                                   ("tool", "read_file README.md\n→ # Project"),
                                   ("ai", "Echo: slow tool answer")]
    assert entry["fullResponse"] == "Echo: slow tool answer"
    assert entry["usageStats"]["inputTokens"] == 60  # 120 reported, 60 of them cached
    assert entry["usageStats"]["cacheReadInputTokens"] == 60
    session_id = tab_of(detail(agents, sid))["agentSessionId"]
    prompt(agents, sid, "more")
    assert turns_done(agents, sid, 2)[1]["fullResponse"] == f"Echo: more\nresumed {session_id}"
    prompt(agents, sid, "fail")
    assert turns_done(agents, sid, 3)[2]["success"] is False
    assert ("error", "Quota exceeded") in ai_log(agents, sid)


def test_aider_answer_is_one_entry_and_its_banner_is_system(agents, project):
    sid = create(agents, project, toolType="aider")["id"]
    prompt(agents, sid, "slow edit")
    (entry,) = turns_done(agents, sid, 1)
    answer = "Line 1: Echo: slow edit\nLine 2: Echo: slow edit\nLine 3: Echo: slow edit"
    assert ai_log(agents, sid) == [
        ("user", "slow edit"), ("system", "Analytics have been permanently disabled."),
        ("system", "Aider v0.86.1"), ("system", "Model: sonnet with diff edit format"),
        ("system", "Git repo: none"), ("ai", answer),
        ("stderr", "Warning: a notice on stderr"),  # it came mid-answer, and did not split it
        ("system", "Tokens: 2.1k sent, 96 received. Cost: $0.0012 message, $0.0034 session."),
    ]
    assert entry["fullResponse"] == answer
    assert detail(agents, sid)["lastResponse"]["text"] == answer
    assert entry["usageStats"]["inputTokens"] == 2100
    assert entry["usageStats"]["totalCostUsd"] == 0.0012
    prompt(agents, sid, "next")
    second = turns_done(agents, sid, 2)[1]
    assert "(continuing after 1 earlier messages)" in second["fullResponse"]


def test_a_streamed_answer_is_one_entry_that_grows_live(agents, project):
    sid = create(agents, project, toolType="aider")["id"]
    client = LiveClient(agents, session_id=sid)
    try:
        prompt(agents, sid, "slow answer")
        client.wait_for(lambda m: m["type"] == "session:exit", timeout=20)
        outputs = [m["entry"] for m in client.events() if m["type"] == "session:output"]
    finally:
        client.close()
    answers = [entry for entry in outputs if entry["source"] == "ai"]
    assert len(answers) >= 2 and len({entry["id"] for entry in answers}) == 1
    texts = [entry["text"] for entry in answers]
    assert texts[0] == "Line 1: Echo: slow answer"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1] == "\n".join(f"Line {n}: Echo: slow answer" for n in (1, 2, 3))
    stored = [text for source, text in ai_log(agents, sid) if source == "ai"]
    assert stored == [texts[-1]]


def test_an_interrupted_turn_is_not_a_success_even_when_the_agent_exits_0(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "graceful hang")
    hanging_pids(project)
    wait_for(lambda: ("ai", "Working on it...") in ai_log(agents, sid))
    assert agents.api("POST", f"session/{sid}/interrupt").json()["stoppedBy"] == "SIGINT"
    (entry,) = turns_done(agents, sid, 1)
    assert entry["exitCode"] == 0 and entry["success"] is False
    log = ai_log(agents, sid)
    assert ("system", "Interrupted (SIGINT)") in log
    assert [text for source, text in log if source == "error"] == []  # the user's own doing
    # claude's result reports no usage after an interrupt: the turn keeps what it saw used
    assert entry["usageStats"]["inputTokens"] == 3 and entry["usageStats"]["outputTokens"] == 5


def test_agents_run_with_pwd_set_to_the_session_folder(make_server, project):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={**agent_env(), "PWD": "/"})
    sid = create(server, project, toolType="claude-code")["id"]
    prompt(server, sid, "where am I")
    assert turns_done(server, sid, 1)[0]["fullResponse"] == f"Echo: where am I\nPWD {project}"


def test_a_cli_that_refuses_to_run_is_reported_as_an_error(make_server, project, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("""
[agents.gemini-cli]
command = ["gemini", "--output-format", "stream-json", "--prompt={prompt}"]
""")
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--config", str(config), env=agent_env())
    sid = create(server, project, toolType="gemini-cli")["id"]
    prompt(server, sid, "hello")
    (entry,) = turns_done(server, sid, 1)
    assert entry["success"] is False and entry["exitCode"] == 55
    errors = [text for source, text in ai_log(server, sid) if source == "error"]
    assert errors == ["gemini exited with code 55: Gemini CLI is not running in a trusted "
                      "directory. To proceed, either use `--skip-trust` or trust this directory "
                      "in interactive mode."]


def test_custom_agents_and_extra_arguments_come_from_the_config(make_server, project, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"""
[agents.claude-code]
args = ["--permission-mode", "acceptEdits"]

[agents.echo-bot]
command = ["{STAND_INS / 'claude'}", "-p", "--output-format", "stream-json", "--verbose",
           "--resume", "{{agentSessionId}}", "--", "{{prompt}}"]
format = "claude-stream-json"

[agents.plain]
command = "sh -c 'echo \\"plain: $0 $GREETING\\"' {{prompt}}"
env = {{ GREETING = "hi" }}
""")
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--config", str(config), env=agent_env())
    claude = create(server, project, toolType="claude-code")["id"]
    prompt(server, claude, "hello")
    assert turns_done(server, claude, 1)[0]["fullResponse"] == \
        "Echo: hello\nargs --permission-mode acceptEdits"
    custom = create(server, project, toolType="echo-bot")["id"]
    prompt(server, custom, "one")
    prompt(server, custom, "two")
    second = turns_done(server, custom, 2)[1]
    conversation = tab_of(detail(server, custom))["agentSessionId"]
    assert second["fullResponse"] == f"Echo: two\nresumed {conversation}"
    plain = create(server, project, toolType="plain")["id"]
    prompt(server, plain, "text")
    assert turns_done(server, plain, 1)[0]["fullResponse"] == "plain: text hi"
    unknown = server.api("POST", "sessions", json={"name": "x", "cwd": str(project),
                                                   "toolType": "nope"})
    assert unknown.status_code == 400 and "echo-bot" in unknown.json()["message"]


def test_tool_details_are_kept_also_in_a_database_from_before_them(tmp_path):
    import sqlite3

    from app.store import Store

    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE log_entries (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id "
                "TEXT NOT NULL, tab_id TEXT NOT NULL, source TEXT NOT NULL, text TEXT NOT NULL, "
                "timestamp INTEGER NOT NULL)")
    old.execute("INSERT INTO log_entries (session_id, tab_id, source, text, timestamp) "
                "VALUES ('s', 't', 'ai', 'before', 1)")
    old.commit()
    old.close()
    store = Store(path)
    try:
        (tool,) = store.append_logs("s", "t", [{"source": "tool", "text": "Bash ls",
                                                "timestamp": 2, "toolName": "Bash",
                                                "input": {"command": "ls"}, "result": None,
                                                "isError": False}])
        assert store.update_log(tool["id"], {**tool, "text": "Bash ls\n→ a", "result": "a"})
        entries, _ = store.page_logs("s", "t")
    finally:
        store.close()
    assert entries == [
        {"id": 1, "timestamp": 1, "source": "ai", "text": "before"},
        {"id": tool["id"], "timestamp": 2, "source": "tool", "text": "Bash ls\n→ a",
         "toolName": "Bash", "input": {"command": "ls"}, "result": "a", "isError": False}]


def test_a_bad_agent_table_stops_start_up(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    config.write_text('[agents.mine]\nformat = "text"\n')
    result = subprocess.run([sys.executable, "run.py", "--config", str(config), "--data-dir",
                             str(tmp_path / "data")], cwd=Path(__file__).parent.parent,
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "[agents.mine]: a custom agent needs a 'command'" in result.stderr


def test_tabs_are_separate_conversations(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    first = detail(agents, sid)["activeTabId"]
    prompt(agents, sid, "in the first tab")
    turns_done(agents, sid, 1)
    client = LiveClient(agents)
    try:
        reply = client.request({"type": "new_tab", "sessionId": sid, "name": "review"},
                               "new_tab_result")
        second = reply["tab"]["id"]
        # The tabs:change of the new tab may come before or after the reply.
        if not any(m["activeTabId"] == second for m in client.events("tabs:change")):
            client.wait_for(lambda m: m["type"] == "tabs:change" and m["activeTabId"] == second)
        client.request({"type": "select_tab", "sessionId": sid, "tabId": first},
                       "select_tab_result")
        prompt(agents, sid, "in the second tab", tabId=second)
        turns_done(agents, sid, 2)
        change = client.wait_for(lambda m: m["type"] == "tabs:change" and any(
            t["id"] == second and t["hasUnread"] for t in m["aiTabs"]))
        assert change["activeTabId"] == first
    finally:
        client.close()
    now = detail(agents, sid)
    one, two = tab_of(now, first), tab_of(now, second)
    assert one["agentSessionId"] and two["agentSessionId"]
    assert one["agentSessionId"] != two["agentSessionId"]
    assert one["usageStats"]["outputTokens"] == two["usageStats"]["outputTokens"] == 40
    assert now["usageStats"]["outputTokens"] == 80
    assert [text for _, text in ai_log(agents, sid, second)] == [
        "in the second tab", "Echo: in the second tab"]
    renamed = agents.api("PATCH", f"session/{sid}/tabs/{second}", json={"starred": True})
    assert renamed.json()["tab"]["starred"] is True


def test_closing_a_tab_or_deleting_a_session_ends_its_agent(agents, project, tmp_path):
    sid = create(agents, project, toolType="claude-code")["id"]
    tab = agents.api("POST", f"session/{sid}/tabs", json={}).json()["tab"]["id"]
    prompt(agents, sid, "hang", tabId=tab)
    pids = hanging_pids(project)
    assert all(alive(pid) for pid in pids)
    assert agents.api("DELETE", f"session/{sid}/tabs/{tab}").status_code == 200
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=5)
    after = detail(agents, sid)  # nothing runs any more, so the session says so
    assert after["state"] == "idle" and after["thinkingStartTime"] is None
    (project / ".standin-pids").unlink()
    prompt(agents, sid, "hang again")
    pids = hanging_pids(project)
    assert agents.api("DELETE", f"session/{sid}").status_code == 200
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=5)
    assert history(agents, sid) == []


def test_what_an_agent_leaves_running_ends_with_its_turn(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "orphan")
    (child,) = hanging_pids(project)
    assert turns_done(agents, sid, 1)[0]["success"] is True
    wait_for(lambda: not alive(child), timeout=5)


def test_server_shutdown_ends_running_agents(agents, project):
    sid = create(agents, project, toolType="codex")["id"]
    prompt(agents, sid, "hang")
    assert prompt(agents, sid, "queued one")["queued"] is True
    pids = hanging_pids(project)
    started = time.monotonic()
    assert agents.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    assert not any(alive(pid) for pid in pids)
    restarted = agents.start()
    interrupted, resumed = turns_done(restarted, sid, 2)
    assert interrupted["success"] is False and interrupted["exitCode"] is None
    assert ("system", "Turn interrupted (the server stopped)") in ai_log(restarted, sid)
    # The queued prompt survived the restart and ran, continuing the same thread.
    assert resumed["summary"] == "queued one" and resumed["success"] is True
    assert resumed["fullResponse"].startswith("Echo: queued one\nresumed ")
    wait_for(lambda: detail(restarted, sid)["state"] == "idle")


def test_a_turn_cut_short_by_a_crash_is_reported_at_the_next_start(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "hang")
    pids = hanging_pids(project)
    try:
        agents.stop(signal.SIGKILL)
    finally:
        for pid in pids:  # a crashed server cannot end its agents
            os.kill(pid, signal.SIGKILL)
    restarted = agents.start()
    (entry,) = history(restarted, sid)
    assert entry["summary"] == "hang" and entry["success"] is False
    assert entry["exitCode"] is None
    assert ai_log(restarted, sid)[-1] == (
        "system", "Turn interrupted (the server stopped while it was running)")
    assert tab_of(detail(restarted, sid))["state"] == "idle"


@pytest.mark.parametrize("text", ["a\u0000b", "\ud800 lone surrogate"])
def test_prompts_that_cannot_be_passed_on_are_refused_and_nothing_sticks(agents, project, text):
    sid = create(agents, project, toolType="claude-code")["id"]
    body = json.dumps({"command": text})  # JSON escapes: \u0000 and a lone \ud800
    refused = agents.api("POST", f"session/{sid}/send", data=body,
                         headers={"Content-Type": "application/json"})
    assert refused.status_code == 400
    assert any(reason in refused.json()["message"] for reason in ("NUL", "invalid Unicode"))
    prompt(agents, sid, "still works")
    assert turns_done(agents, sid, 1)[0]["success"] is True


def test_an_ai_turn_and_a_shell_command_share_the_session_state(agents, project):
    sid = create(agents, project, toolType="claude-code")["id"]
    prompt(agents, sid, "sleep 2; echo shell-done", inputMode="terminal")
    wait_for(lambda: detail(agents, sid)["state"] == "busy")
    prompt(agents, sid, "quick answer")
    turns_done(agents, sid, 1)
    assert detail(agents, sid)["state"] == "busy"  # the shell command still runs
    wait_for(lambda: len(history(agents, sid)) == 2)
    wait_for(lambda: detail(agents, sid)["state"] == "idle")


def test_interrupting_a_tab_reaches_its_agent_in_terminal_mode(agents, project):
    session = create(agents, project, toolType="claude-code", inputMode="terminal")
    sid, tab = session["id"], session["activeTabId"]
    prompt(agents, sid, "hang", inputMode="ai")
    pids = hanging_pids(project)
    reply = agents.api("POST", f"session/{sid}/interrupt", json={"tabId": tab}).json()
    assert reply["wasRunning"] is True and reply["stoppedBy"] == "SIGINT"
    wait_for(lambda: not any(alive(pid) for pid in pids))
