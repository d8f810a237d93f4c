"""Approvals: what an agent asks the user, held until decided, through the real server.

Fast tests drive the stand-in claude (tests/agents/claude speaks the control protocol); the
`real_agents` ones drive the real Claude Code against the local model endpoint, which scripts
the tool calls (fixtures of tests/test_real_agents.py).
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import wait_for
from tests.model_endpoint import Reply, ToolRequest
from tests.test_agents import agent_env, ai_log, detail, history, prompt, tab_of, turns_done
from tests.test_real_agents import finished, session_for
from tests.test_sessions_api import create
from tests.wsclient import LiveClient

# The real CLIs' fixtures (endpoint, real_server, folder): one server for both modules' tests.
pytest_plugins = ("tests.test_real_agents",)


@pytest.fixture
def asking(make_server):
    """A server whose PATH finds the stand-in claude, with a view-only token."""
    viewer = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--interrupt-grace-s", "1", env={**agent_env(),
                                                          "MAESTRO_VIEWER_TOKEN": viewer})
    server.viewer = viewer
    return server


def open_approvals(server, sid: str) -> list[dict]:
    response = server.api("GET", f"session/{sid}/approvals")
    assert response.status_code == 200, response.text
    return response.json()["approvals"]


def approval_of(server, sid: str, timeout: float = 20) -> dict:
    """The session's one open approval, once there is one."""
    (approval,) = wait_for(lambda: open_approvals(server, sid), timeout=timeout)
    return approval


def decide(server, sid: str, approval_id: str, **body) -> dict:
    response = server.api("POST", f"session/{sid}/approvals/{approval_id}", json=body)
    assert response.status_code == 200, response.text
    return response.json()["approval"]


def approvals_requested(client: LiveClient, sid: str, turns: int) -> list[dict]:
    """The `approval:requested` events of the session, read until its `turns` have ended."""
    def ended(messages: list[dict]) -> bool:
        return turns <= sum(1 for m in messages if m.get("type") == "history:added"
                            and m["entry"]["sessionId"] == sid)

    client.wait_until(ended, timeout=60)
    return [m for m in client.events("approval:requested") if m["sessionId"] == sid]


def tools(server, sid: str) -> list[dict]:
    return [entry for entry in detail(server, sid)["aiLogs"] if entry["source"] == "tool"]


# -- with the stand-in claude ---------------------------------------------------------------

def test_a_tool_call_waits_for_the_user_and_allow_runs_it(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    client = LiveClient(asking)
    try:
        prompt(asking, sid, "ask to touch")
        approval = approval_of(asking, sid)
        assert approval["kind"] == "permission" and approval["tool"] == "Bash"
        assert approval["title"] == "Bash touch approved.txt"
        assert approval["input"] == {"command": "touch approved.txt",
                                     "description": "Create a file"}
        assert approval["tabId"] == detail(asking, sid)["activeTabId"]
        assert [o["decision"] for o in approval["options"]] == ["allow", "allow_session", "deny"]
        requested = client.wait_for(lambda m: m["type"] == "approval:requested")
        assert requested["approval"] == approval and requested["sessionId"] == sid
        now = detail(asking, sid)
        assert now["state"] == "waiting_input" and tab_of(now)["state"] == "waiting_input"
        assert not (project / "approved.txt").exists()
        decided = decide(asking, sid, approval["id"], decision="allow")
        assert decided["decision"] == "allow" and decided["by"] == "user"
        resolved = client.wait_for(lambda m: m["type"] == "approval:resolved")
        assert resolved == {**resolved, "sessionId": sid, "tabId": approval["tabId"],
                            "approvalId": approval["id"], "decision": "allow", "by": "user"}
        (entry,) = turns_done(asking, sid, 1)
    finally:
        client.close()
    assert entry["success"] is True and (project / "approved.txt").exists()
    assert open_approvals(asking, sid) == []
    again = asking.api("POST", f"session/{sid}/approvals/{approval['id']}",
                       json={"decision": "deny"})
    assert again.status_code == 409 and "already decided (allow by user)" in \
        again.json()["message"]
    unknown = asking.api("POST", f"session/{sid}/approvals/{uuid.uuid4()}",
                         json={"decision": "allow"})
    assert unknown.status_code == 404
    assert detail(asking, sid)["state"] == "idle"


def test_deny_sends_the_message_and_nothing_runs(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    prompt(asking, sid, "ask to touch")
    approval = approval_of(asking, sid)
    bad = asking.api("POST", f"session/{sid}/approvals/{approval['id']}",
                     json={"decision": "maybe"})
    assert bad.status_code == 400 and "allow, allow_session, deny" in bad.json()["message"]
    decide(asking, sid, approval["id"], decision="deny", message="not in this folder")
    assert turns_done(asking, sid, 1)[0]["success"] is True  # a refused tool fails no turn
    assert not (project / "approved.txt").exists()
    (tool,) = tools(asking, sid)
    assert tool["isError"] is True and tool["result"] == "not in this folder"


def test_allow_session_is_not_asked_again_in_the_conversation(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    client = LiveClient(asking)
    try:
        prompt(asking, sid, "ask twice")
        decide(asking, sid, approval_of(asking, sid)["id"], decision="allow_session")
        turns_done(asking, sid, 1)
        prompt(asking, sid, "ask once more")  # the next turn of the same conversation
        second = turns_done(asking, sid, 2)[1]
        requested = approvals_requested(client, sid, 2)
    finally:
        client.close()
    assert second["success"] is True and len(requested) == 1
    assert len(tools(asking, sid)) == 3 and (project / "approved.txt").exists()
    # Another tab is another conversation: it asks.
    other = asking.api("POST", f"session/{sid}/tabs", json={}).json()["tab"]["id"]
    prompt(asking, sid, "ask there", tabId=other)
    assert approval_of(asking, sid)["tabId"] == other


def test_an_interrupt_denies_what_is_open_and_ends_the_turn(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    client = LiveClient(asking)
    try:
        prompt(asking, sid, "ask to touch")
        approval = approval_of(asking, sid)
        reply = asking.api("POST", f"session/{sid}/interrupt").json()
        assert reply["wasRunning"] is True and reply["stoppedBy"] == "interrupt"
        resolved = client.wait_for(lambda m: m["type"] == "approval:resolved")
    finally:
        client.close()
    assert (resolved["approvalId"], resolved["decision"], resolved["by"]) == (
        approval["id"], "deny", "interrupt")
    (entry,) = turns_done(asking, sid, 1)
    assert entry["success"] is False and not (project / "approved.txt").exists()
    log = ai_log(asking, sid)
    assert ("system", "Interrupted (interrupt)") in log
    assert [text for source, text in log if source == "error"] == []
    assert detail(asking, sid)["state"] == "idle"


def test_a_huge_input_is_shown_capped_and_the_agent_gets_it_whole(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    size = 3 * 1024 * 1024  # twice in its line (input, suggested rule): under the 8 MiB cap
    client = LiveClient(asking)
    try:
        prompt(asking, sid, f"ask huge: {size}")
        approval = approval_of(asking, sid)
        (requested,) = approvals_requested_so_far(client, sid)
    finally:
        client.close()
    for shown in (approval, requested):
        assert shown["inputCut"] is True and len(shown["title"]) <= 200
        assert isinstance(shown["input"], str) and shown["input"].startswith('{"command": "true x')
        assert len(shown["input"].encode()) <= 64 * 1024
    decide(asking, sid, approval["id"], decision="allow")
    assert turns_done(asking, sid, 1)[0]["success"] is True
    assert ("ai", f"Tool said: ran {size + 5} characters") in ai_log(asking, sid)


def test_a_flood_of_questions_and_options_is_shown_capped_and_the_answer_reaches_the_agent(
        asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    client = LiveClient(asking)
    try:
        prompt(asking, sid, "ask many questions: 30")
        approval = approval_of(asking, sid)
        (requested,) = approvals_requested_so_far(client, sid)
    finally:
        client.close()
    for shown in (approval, requested):
        assert shown["kind"] == "question" and shown["optionsCut"] is True
        assert len(shown["options"]) == 20
        assert [len(q["options"]) for q in shown["options"]] == [20] * 20
        assert shown["options"][3]["question"] == "Question 3?"
        assert len(shown["options"][3]["header"]) == 1000
        assert shown["options"][3]["options"][2]["label"].startswith("3.2 ooo")
        assert len(shown["options"][3]["options"][2]["label"]) == 1000
    decide(asking, sid, approval["id"], decision="allow", answers={"Question 3?": "3.2"})
    assert turns_done(asking, sid, 1)[0]["success"] is True
    assert ("ai", 'Tool said: answers {"Question 3?": "3.2"}') in ai_log(asking, sid)


def test_a_request_nested_too_deep_is_shown_as_text_and_the_turn_goes_on(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    prompt(asking, sid, "ask deep, then touch")
    approval = approval_of(asking, sid)
    assert approval["title"] == "Bash touch approved.txt"
    decide(asking, sid, approval["id"], decision="allow")
    assert turns_done(asking, sid, 1)[0]["success"] is True
    assert (project / "approved.txt").exists()
    assert any(source == "stdout" and text.startswith('{"type":"control_request"')
               for source, text in ai_log(asking, sid))


def approvals_requested_so_far(client: LiveClient, sid: str) -> list[dict]:
    client.wait_until(lambda messages: any(m.get("type") == "approval:requested"
                                           for m in messages), timeout=20)
    return [m["approval"] for m in client.events("approval:requested") if m["sessionId"] == sid]


def agent_pid(project: Path, program: str) -> int:
    """The pid of the stand-in `program` running in the project folder."""
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and (entry / "cwd").resolve() == project.resolve()
                    and f"tests/agents/{program}" in (entry / "cmdline").read_text()):
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no {program} running in {project}")


def test_an_agent_killed_while_asking_closes_the_approval_and_the_tab_goes_on(asking,
                                                                              project):
    sid = create(asking, project, toolType="claude-code")["id"]
    prompt(asking, sid, "ask to touch")
    approval = approval_of(asking, sid)
    os.kill(agent_pid(project, "claude"), signal.SIGKILL)
    (entry,) = turns_done(asking, sid, 1)
    assert entry["success"] is False
    assert wait_for(lambda: open_approvals(asking, sid) == [])
    late = asking.api("POST", f"session/{sid}/approvals/{approval['id']}",
                      json={"decision": "allow"})
    assert late.status_code == 409 and "(deny by interrupt)" in late.json()["message"]
    assert ai_log(asking, sid)[-1] == ("error", "claude exited with code 137")
    assert not (project / "approved.txt").exists()
    prompt(asking, sid, "hello again")
    assert turns_done(asking, sid, 2)[1]["success"] is True


def test_an_unanswered_approval_is_denied_after_the_timeout(make_server, project):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--approval-timeout-s", "0.5", env=agent_env())
    sid = create(server, project, toolType="claude-code")["id"]
    prompt(server, sid, "ask to touch")
    (entry,) = turns_done(server, sid, 1)
    assert entry["success"] is True and not (project / "approved.txt").exists()
    (tool,) = tools(server, sid)
    assert tool["result"] == "No answer within 0.5 s: denied by Maestro Web"


def test_a_burst_of_requests_beyond_the_cap_is_denied_at_once(make_server, project):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--max-open-approvals", "3", env=agent_env())
    assert ("ai", "allowed 3, denied 47") in allow_a_burst(server, project, "ask burst 50", 3)


def test_a_request_id_the_agent_repeats_is_asked_once(asking, project):
    assert ("ai", "allowed 1, denied 0") in allow_a_burst(asking, project, "ask burst twin 5", 1)


def test_a_request_id_codex_repeats_is_asked_once(asking, project):
    assert ("ai", "Echo: answered accept") in allow_a_burst(asking, project, "ask twin", 1, "codex")


def allow_a_burst(server, project: Path, text: str, opened: int,
                  tool: str = "claude-code") -> list[tuple[str, str]]:
    """Send the stand-in's `ask burst ...`, allow the `opened` approvals it opens (no more, no
    fewer) and return the log (where the agent says how many verdicts of each it got)."""
    sid = create(server, project, toolType=tool)["id"]
    prompt(server, sid, text)
    waiting = wait_for(lambda: len(found := open_approvals(server, sid)) == opened and found)
    for approval in waiting:
        decide(server, sid, approval["id"], decision="allow")
    turns_done(server, sid, 1)
    assert open_approvals(server, sid) == []
    return ai_log(server, sid)


def test_the_websocket_approve_action_is_audited_and_refused_to_a_viewer(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    prompt(asking, sid, "ask to touch")
    approval = approval_of(asking, sid)
    action = {"type": "approve", "sessionId": sid, "approvalId": approval["id"],
              "decision": "allow", "requestId": 7}
    viewer = LiveClient(SimpleNamespace(port=asking.port, token=asking.viewer))
    try:
        refused = viewer.request(action, "error")
    finally:
        viewer.close()
    assert refused["code"] == "forbidden" and refused["requestId"] == 7
    client = LiveClient(asking)
    try:
        reply = client.request(action, "approve_result")
        twice = client.request(action, "approve_result")
    finally:
        client.close()
    assert reply["success"] is True and reply["approval"]["decision"] == "allow"
    assert twice["success"] is False and twice["statusCode"] == 409
    assert turns_done(asking, sid, 1)[0]["success"] is True
    actions = [(e["action"], e["outcome"]) for e in
               asking.api("GET", "audit").json()["entries"] if e["action"] == "approve"]
    assert actions == [("approve", "failed"), ("approve", "ok"), ("approve", "forbidden")]


def test_a_restart_closes_what_was_open_and_records_the_turn_interrupted(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    prompt(asking, sid, "ask to touch")
    approval = approval_of(asking, sid)
    asking.stop(signal.SIGKILL)  # a crash: nothing is closed on the way out
    restarted = asking.start()
    assert open_approvals(restarted, sid) == []
    (entry,) = history(restarted, sid)
    assert entry["success"] is False and entry["exitCode"] is None
    assert ai_log(restarted, sid)[-1] == (
        "system", "Turn interrupted (the server stopped while it was running)")
    late = restarted.api("POST", f"session/{sid}/approvals/{approval['id']}",
                         json={"decision": "allow"})
    assert late.status_code == 409 and "(deny by interrupt)" in late.json()["message"]
    assert detail(restarted, sid)["state"] == "idle"


def test_permission_mode_and_model_per_tab(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    tab = detail(asking, sid)["activeTabId"]
    assert tab_of(detail(asking, sid))["permissionMode"] is None
    changed = asking.api("PATCH", f"session/{sid}/tabs/{tab}",
                         json={"permissionMode": "bypassPermissions", "model": "opus"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["tab"]["permissionMode"] == "bypassPermissions"
    prompt(asking, sid, "ask to touch")  # the mode allows it: nothing is asked
    (entry,) = turns_done(asking, sid, 1)
    assert entry["fullResponse"].endswith(
        "args --permission-mode bypassPermissions --model opus")
    assert (project / "approved.txt").exists()
    reset = asking.api("PATCH", f"session/{sid}/tabs/{tab}", json={"permissionMode": None})
    assert reset.json()["tab"]["permissionMode"] is None
    assert reset.json()["tab"]["model"] == "opus"
    for body, status, message in (
            ({"permissionMode": "yolo"}, 400, "permissionMode must be one of default"),
            ({"model": 3}, 400, "'model' must be a non-empty string"),
            ({"model": "--dangerously-skip-permissions"}, 400, "must not start with '-'"),
            ({"model": "-p"}, 400, "must not start with '-'"),
            ({"permissionMode": "default\n"}, 400, "control characters")):
        refused = asking.api("PATCH", f"session/{sid}/tabs/{tab}", json=body)
        assert (refused.status_code, message in refused.json()["message"]) == (status, True)
    aider = create(asking, project, toolType="aider")
    refused = asking.api("PATCH", f"session/{aider['id']}/tabs/{aider['activeTabId']}",
                         json={"permissionMode": "plan"})
    assert refused.status_code == 400 and "cannot ask" in refused.json()["message"]
    asking.stop()
    restarted = asking.start()
    assert tab_of(detail(restarted, sid))["model"] == "opus"  # persisted


def test_mode_and_model_defaults_come_from_the_config(make_server, project, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[agents.claude-code]\npermission_mode = "acceptEdits"\nmodel = "haiku"\n')
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--config", str(config), env=agent_env())
    sid = create(server, project, toolType="claude-code")["id"]
    prompt(server, sid, "hello")
    assert turns_done(server, sid, 1)[0]["fullResponse"].endswith(
        "args --permission-mode acceptEdits --model haiku")


def test_agents_listing_says_what_each_tab_can_be_told(make_server, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[agents.claude-code]\npermission_mode = "plan"\n'
                      '[agents.mine]\ncommand = "echo {prompt}"\n')
    server = make_server("--token", str(uuid.uuid4()), "--config", str(config))
    agents = {a["id"]: a for a in server.api("GET", "agents").json()["agents"]}
    assert agents["claude-code"] == {
        "id": "claude-code", "protocol": "claude-control", "canAsk": True,
        "permissionModes": ["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk",
                            "auto"],
        "permissionMode": "plan", "model": None, "canChooseModel": True}
    assert (agents["codex"]["protocol"], agents["codex"]["permissionModes"][0]) == (
        "codex-app-server", "untrusted")
    assert (agents["gemini-cli"]["protocol"], agents["gemini-cli"]["canAsk"],
            agents["gemini-cli"]["permissionModes"]) == (
        "acp", True, ["default", "autoEdit", "yolo", "plan"])
    assert (agents["aider"]["canAsk"], agents["aider"]["permissionModes"],
            agents["aider"]["canChooseModel"]) == (False, [], True)
    assert (agents["mine"]["protocol"], agents["mine"]["canChooseModel"]) == ("oneshot", False)


def test_a_tab_keeps_the_slash_commands_its_agent_advertised(asking, project):
    sid = create(asking, project, toolType="claude-code")["id"]
    assert tab_of(detail(asking, sid))["slashCommands"] is None  # not said yet
    prompt(asking, sid, "hello")
    turns_done(asking, sid, 1)
    expected = ["compact", "context", "review", "standin-deploy"]  # tests/agents/claude's
    assert tab_of(detail(asking, sid))["slashCommands"] == expected
    asking.stop()
    assert tab_of(detail(asking.start(), sid))["slashCommands"] == expected


def test_a_file_change_is_logged_with_its_diff(asking, project):
    (project / "notes.md").write_text("old\n")
    sid = create(asking, project, toolType="claude-code")["id"]
    prompt(asking, sid, "ask write: new")
    approval = approval_of(asking, sid)
    decide(asking, sid, approval["id"], decision="allow")
    turns_done(asking, sid, 1)
    (tool,) = tools(asking, sid)
    assert tool["diff"] == approval["diff"] == (
        "--- a/notes.md\n+++ b/notes.md\n@@ -1 +1 @@\n-old\n+new\n")
    assert (project / "notes.md").read_text() == "new\n"
    prompt(asking, sid, "ask to touch")
    decide(asking, sid, approval_of(asking, sid)["id"], decision="allow")
    turns_done(asking, sid, 2)
    assert tools(asking, sid)[1]["diff"] is None  # not a file change


def test_diffs_of_file_changes(tmp_path: Path):
    from app.sessions.agents.diffs import tool_diff

    (tmp_path / "app.py").write_text("a = 1\nb = 2\n")
    edit = tool_diff("Edit", {"file_path": "app.py", "old_string": "b = 2",
                              "new_string": "b = 3"}, str(tmp_path))
    assert edit == "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+b = 3\n"
    new = tool_diff("Write", {"file_path": str(tmp_path / "n.md"), "content": "x\n"}, "/")
    assert new.startswith("--- /dev/null\n+++ b/") and new.endswith("@@ -0,0 +1 @@\n+x\n")
    multi = tool_diff("MultiEdit", {"file_path": "app.py", "edits": [
        {"old_string": "a = 1", "new_string": "a = 0"},
        {"old_string": "missing", "new_string": "x"}]}, str(tmp_path))
    assert multi.endswith("\n-a = 1\n-missing\n+a = 0\n+x\n")  # does not apply: the edits alone
    assert tool_diff("Bash", {"command": "ls"}, str(tmp_path)) is None


def test_a_diff_never_shows_a_file_a_symlink_leads_out_of_the_session_folder(asking, project):
    secret = project.parent / "secret.txt"
    secret.write_text("root:x:0:0:SECRET\n")
    (project / "notes.md").symlink_to(secret)
    sid = create(asking, project, toolType="claude-code")["id"]
    prompt(asking, sid, "ask write: new")
    approval = approval_of(asking, sid)
    assert "SECRET" not in json.dumps(open_approvals(asking, sid))
    assert approval["diff"].endswith("+new\n")
    decide(asking, sid, approval["id"], decision="deny")
    turns_done(asking, sid, 1)
    assert "SECRET" not in json.dumps(tools(asking, sid))


def test_diffs_read_no_file_outside_the_folder_nor_a_fifo_or_binary_one(tmp_path: Path):
    from app.sessions.agents.diffs import tool_diff

    folder = tmp_path / "project"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("SECRET line\n")
    os.mkfifo(folder / "pipe")  # opening it for reading would block the turn for ever
    (folder / "blob.bin").write_bytes(b"SECRET\0\x01\x02\n")
    edit = {"old_string": "SECRET line", "new_string": "mine"}
    for path in ("../outside.txt", str(tmp_path / "outside.txt"), "pipe", "blob.bin"):
        diff = tool_diff("Edit", {"file_path": path, **edit}, str(folder))
        assert diff.endswith("\n-SECRET line\n+mine\n")  # the edit alone: nothing was read
        written = tool_diff("Write", {"file_path": path, "content": "x\n"}, str(folder))
        assert "SECRET" not in written and written.endswith("+x\n")


def test_session_rules_cover_identical_calls_and_the_clis_own_rules():
    from app.sessions.agents.approvals import ApprovalRequest
    from app.sessions.agents.session_rules import covers, remembered, suggested_rules

    rules = suggested_rules(({"type": "addRules", "behavior": "allow", "rules": [
        {"toolName": "Bash", "ruleContent": "npm run:*"}]},
        {"type": "setMode", "mode": "acceptEdits"}))
    request = ApprovalRequest("k", "permission", "Bash", "Bash ls", {"command": "ls -l"},
                              rules=rules)
    kept = remembered(request)
    assert covers(kept, "Bash", {"command": "ls -l"})
    assert not covers(kept, "Bash", {"command": "ls -la"})
    assert covers(kept, "Bash", {"command": "npm run test"})
    assert not covers(kept, "Bash", {"command": "npm run test; rm -rf ~"})
    assert not covers(kept, "Write", {"command": "ls -l"})
    prefix = [{"tool": "Bash", "content": "ls:*"}]
    assert covers(prefix, "Bash", {"command": "ls"})
    assert covers(prefix, "Bash", {"command": "ls -la"})
    for other in ("lsblk", "ls-evil --all", "ls; rm -rf ~", "ls\nrm -rf ~", "ls && rm x",
                  "ls $(rm x)", "ls `rm x`", "ls > ~/.bashrc"):
        assert not covers(prefix, "Bash", {"command": other}), other
    exact = remembered(ApprovalRequest("k", "permission", "Edit", "Edit a.py",
                                       {"file_path": "a.py", "old_string": "a", "new_string": "b"}))
    assert not covers(exact, "Edit", {"file_path": "../a.py", "old_string": "a", "new_string": "b"})
    assert not covers(exact, "Edit", {"file_path": "a.py", "old_string": "a", "new_string": "c"})


# -- with the real Claude Code --------------------------------------------------------------

real = pytest.mark.real_agents


def claude_session(server, folder_path: Path) -> str:
    return session_for(server, "claude-code", folder_path)


def asked(server, sid: str, text: str) -> dict:
    """Send `text`: the approval it opens, the same as its live `approval:requested`."""
    client = LiveClient(server)
    try:
        prompt(server, sid, text)
        approval = approval_of(server, sid, timeout=60)
        requested = client.wait_for(lambda m: m["type"] == "approval:requested"
                                    and m["sessionId"] == sid)
    finally:
        client.close()
    assert requested["approval"] == approval
    return approval


def check_allow_runs_it(server, sid: str, folder_path: Path, approval: dict) -> dict:
    """[[touch]] is waiting for `approval`: allowed, it runs, and cannot be decided again.
    Returns the turn's history entry."""
    assert detail(server, sid)["state"] == "waiting_input"
    assert not (folder_path / "approved.txt").exists()
    decide(server, sid, approval["id"], decision="allow")
    (entry,) = finished(server, sid, 1)
    assert entry["success"] is True and (folder_path / "approved.txt").exists()
    assert server.api("POST", f"session/{sid}/approvals/{approval['id']}",
                      json={"decision": "allow"}).status_code == 409
    return entry


def check_allow_session_is_not_asked_twice(server, sid: str, folder_path: Path,
                                           timeout: float = 60) -> None:
    """[[touch]] allowed for the session; the same call in the next turn is not asked."""
    prompt(server, sid, "Create the file [[touch]]")
    decide(server, sid, approval_of(server, sid, timeout=timeout)["id"],
           decision="allow_session")
    finished(server, sid, 1)
    (folder_path / "approved.txt").unlink()
    client = LiveClient(server)  # read while the turn runs: it answers the server's pings
    try:
        prompt(server, sid, "Once more [[touch]]")
        requested = approvals_requested(client, sid, 1)
    finally:
        client.close()
    second = finished(server, sid, 2)[1]
    assert second["success"] is True, ai_log(server, sid)
    assert (folder_path / "approved.txt").exists()
    assert requested == []


def check_an_interrupt_while_waiting_denies_it(server, sid: str, folder_path: Path,
                                               timeout: float = 60) -> None:
    """[[touch]] asked, then interrupted: denied, nothing ran, the turn failed quietly."""
    prompt(server, sid, "Create the file [[touch]]")
    approval = approval_of(server, sid, timeout=timeout)
    reply = server.api("POST", f"session/{sid}/interrupt").json()
    assert reply["wasRunning"] is True and reply["stoppedBy"] == "interrupt"
    (entry,) = finished(server, sid, 1)
    assert entry["success"] is False and not (folder_path / "approved.txt").exists()
    late = server.api("POST", f"session/{sid}/approvals/{approval['id']}",
                      json={"decision": "allow"})
    assert late.status_code == 409 and "(deny by interrupt)" in late.json()["message"]
    assert [t for s, t in ai_log(server, sid) if s == "error"] == []
    assert detail(server, sid)["state"] == "idle"
    assert open_approvals(server, sid) == []


@real
def test_real_claude_asks_before_running_a_command_and_allow_runs_it(real_server, folder):
    sid = claude_session(real_server, folder)
    approval = asked(real_server, sid, "Create the file [[touch]]")
    assert approval["tool"] == "Bash" and approval["input"]["command"] == "touch approved.txt"
    check_allow_runs_it(real_server, sid, folder, approval)
    # The tab offers the slash commands this claude advertised, not a list of ours.
    assert "compact" in tab_of(detail(real_server, sid))["slashCommands"]


@real
def test_real_claude_deny_sends_the_message_to_the_model(real_server, endpoint, folder):
    sid = claude_session(real_server, folder)
    reason = f"no-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, "Create the file [[touch]]")
    approval = approval_of(real_server, sid, timeout=60)
    decide(real_server, sid, approval["id"], decision="deny", message=reason)
    assert finished(real_server, sid, 1)[0]["success"] is True
    assert not (folder / "approved.txt").exists()
    (carried,) = [r for r in endpoint.bodies_with(reason)
                  if any(b.get("type") == "tool_result" and b.get("is_error")
                         and reason in json.dumps(b.get("content"))
                         for m in r.body.get("messages") or []
                         if isinstance(m.get("content"), list) for b in m["content"])][:1]
    assert carried


@real
def test_real_claude_allow_session_is_not_asked_twice(real_server, folder):
    check_allow_session_is_not_asked_twice(real_server, claude_session(real_server, folder),
                                           folder)


@real
def test_real_claude_interrupt_while_waiting(real_server, folder):
    check_an_interrupt_while_waiting_denies_it(real_server, claude_session(real_server, folder),
                                               folder)


@real
def test_real_claude_write_shows_a_unified_diff(real_server, folder):
    sid = claude_session(real_server, folder)
    prompt(real_server, sid, "Write notes [[write]]")
    approval = approval_of(real_server, sid, timeout=60)
    assert approval["tool"] == "Write"
    assert approval["diff"].startswith("--- /dev/null\n+++ b/")
    assert approval["diff"].endswith("@@ -0,0 +1,2 @@\n+# Notes\n+written\n")
    decide(real_server, sid, approval["id"], decision="allow")
    assert finished(real_server, sid, 1)[0]["success"] is True
    assert (folder / "notes.md").read_text() == "# Notes\nwritten\n"
    (logged,) = [t for t in tools(real_server, sid) if t["toolName"] == "Write"]
    # The log keeps it for review (the call names the file as the model wrote it; claude
    # asks with its absolute path).
    assert logged["diff"].startswith("--- /dev/null\n+++ b/")
    assert logged["diff"].split("\n")[2:] == approval["diff"].split("\n")[2:]


@real
def test_real_claude_question_and_plan_round_trips(real_server, endpoint, folder):
    question = {"question": "Which colour?", "header": "Colour", "multiSelect": False,
                "options": [{"label": "Red", "description": "warm"},
                            {"label": "Blue", "description": "cool"}]}
    endpoint.script("[[ask]]", Reply(tool=ToolRequest(name="AskUserQuestion",
                                                      input={"questions": [question]})))
    endpoint.script("[[plan]]", Reply(tool=ToolRequest(name="ExitPlanMode",
                                                       input={"plan": "# Rename\n1. edit"})))
    sid = claude_session(real_server, folder)
    prompt(real_server, sid, "Ask me [[ask]]")
    asked = approval_of(real_server, sid, timeout=60)
    assert (asked["kind"], asked["title"]) == ("question", "Which colour?")
    assert asked["options"][0]["options"][1]["label"] == "Blue"
    refused = real_server.api("POST", f"session/{sid}/approvals/{asked['id']}",
                              json={"decision": "allow"})
    assert refused.status_code == 400 and "answers" in refused.json()["message"]
    decide(real_server, sid, asked["id"], decision="allow",
           answers={"Which colour?": "Blue, but darker"})
    finished(real_server, sid, 1)
    assert endpoint.bodies_with('\\"Which colour?\\"=\\"Blue, but darker\\"')

    tab = detail(real_server, sid)["activeTabId"]
    real_server.api("PATCH", f"session/{sid}/tabs/{tab}", json={"permissionMode": "plan"})
    prompt(real_server, sid, "Plan it [[plan]]")
    plan = approval_of(real_server, sid, timeout=60)
    assert (plan["kind"], plan["title"], plan["input"]["plan"]) == (
        "plan", "Plan: Rename", "# Rename\n1. edit")
    assert [o["label"] for o in plan["options"]] == ["Approve", "Keep planning"]
    decide(real_server, sid, plan["id"], decision="deny")
    finished(real_server, sid, 2)
    assert endpoint.bodies_with("keep planning")
    prompt(real_server, sid, "Plan it again [[plan]]")
    decide(real_server, sid, approval_of(real_server, sid, timeout=60)["id"], decision="allow")
    assert finished(real_server, sid, 3)[2]["success"] is True
    assert endpoint.bodies_with("User has approved your plan")


@real
def test_real_claude_restart_with_an_open_approval(real_server, folder):
    sid = claude_session(real_server, folder)
    prompt(real_server, sid, "Create the file [[touch]]")
    approval = approval_of(real_server, sid, timeout=60)
    real_server.stop()
    real_server.start()
    assert open_approvals(real_server, sid) == []
    (entry,) = history(real_server, sid)
    assert entry["success"] is False and entry["exitCode"] is None
    assert ("system", "Turn interrupted (the server stopped)") in ai_log(real_server, sid)
    late = real_server.api("POST", f"session/{sid}/approvals/{approval['id']}",
                           json={"decision": "allow"})
    assert late.status_code == 409
    assert not (folder / "approved.txt").exists()
    prompt(real_server, sid, "Hello again")  # the conversation resumes after the restart
    assert finished(real_server, sid, 2)[1]["success"] is True
