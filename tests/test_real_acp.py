"""Gemini CLI and opencode over the Agent Client Protocol, with the real CLIs against the local
model endpoint (fixtures of tests/test_real_agents.py): a tool call is held as an approval
until the user answers it from the phone. A stand-in ACP agent covers what the real CLIs
cannot be scripted to do (plans, hostile file requests).
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.test_agents import STAND_INS, agent_env, ai_log, detail, prompt, tab_of, turns_done
from tests.test_approvals import (
    allow_a_burst,
    approval_of,
    approvals_requested,
    check_allow_session_is_not_asked_twice,
    check_an_interrupt_while_waiting_denies_it,
    decide,
    tools,
)
from tests.test_real_agents import errors, finished, session_for
from tests.test_sessions_api import create
from tests.wsclient import LiveClient

pytest_plugins = ("tests.test_real_agents",)
real = pytest.mark.real_agents

ACP_AGENTS = ["gemini-cli", "opencode"]
ASK_TIMEOUT_S = 90  # opencode takes 5-20 s to reach its first tool call on 2 cores


@real
@pytest.mark.parametrize("agent", ACP_AGENTS)
def test_a_command_waits_for_allow_then_runs(real_server, folder, agent):
    sid = session_for(real_server, agent, folder)
    client = LiveClient(real_server)
    try:
        prompt(real_server, sid, "Create the file [[touch]]")
        requested = client.wait_for(lambda m: m["type"] == "approval:requested"
                                    and m["sessionId"] == sid, timeout=ASK_TIMEOUT_S)
    finally:
        client.close()
    approval = approval_of(real_server, sid)
    assert requested["approval"] == approval
    assert (approval["kind"], approval["tool"]) == ("permission", "execute")
    assert approval["title"] == "touch approved.txt"
    assert approval["input"]["command"] == "touch approved.txt"
    assert [o["decision"] for o in approval["options"]] == ["allow", "allow_session", "deny"]
    assert detail(real_server, sid)["state"] == "waiting_input"
    assert not (folder / "approved.txt").exists()
    decide(real_server, sid, approval["id"], decision="allow")
    (entry,) = finished(real_server, sid, 1)
    assert entry["success"] is True, ai_log(real_server, sid)
    assert (folder / "approved.txt").exists()
    (tool,) = tools(real_server, sid)
    assert tool["text"].startswith("$ touch approved.txt\n→ ")
    assert tool["toolName"] == "execute" and tool["isError"] is False
    assert tool["input"]["command"] == "touch approved.txt"
    usage = entry["usageStats"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0, usage
    assert errors(real_server, sid) == []
    assert real_server.api("POST", f"session/{sid}/approvals/{approval['id']}",
                           json={"decision": "allow"}).status_code == 409


@real
@pytest.mark.parametrize("agent", ACP_AGENTS)
def test_deny_with_a_message_changes_nothing(real_server, folder, agent):
    sid = session_for(real_server, agent, folder)
    reason = f"no-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, "Create the file [[touch]]")
    approval = approval_of(real_server, sid, timeout=ASK_TIMEOUT_S)
    decide(real_server, sid, approval["id"], decision="deny", message=reason)
    finished(real_server, sid, 1)
    assert not (folder / "approved.txt").exists()
    # ACP's answer carries no reason: the tab keeps it.
    assert ("system", f"Denied: {reason}") in ai_log(real_server, sid)
    assert all(tool["isError"] or "→" not in tool["text"] for tool in tools(real_server, sid))
    assert detail(real_server, sid)["state"] == "idle"


@real
@pytest.mark.parametrize("agent", ACP_AGENTS)
def test_a_file_write_shows_a_unified_diff(real_server, folder, agent):
    sid = session_for(real_server, agent, folder)
    prompt(real_server, sid, "Write notes [[write]]")
    approval = approval_of(real_server, sid, timeout=ASK_TIMEOUT_S)
    assert approval["tool"] == "edit"
    assert approval["diff"].startswith("--- /dev/null\n+++ b/notes.md\n")
    assert approval["diff"].endswith("@@ -0,0 +1,2 @@\n+# Notes\n+written\n")
    decide(real_server, sid, approval["id"], decision="allow")
    assert finished(real_server, sid, 1)[0]["success"] is True, ai_log(real_server, sid)
    assert (folder / "notes.md").read_text() == "# Notes\nwritten\n"
    (tool,) = tools(real_server, sid)
    assert tool["diff"] == approval["diff"]
    assert [text for source, text in ai_log(real_server, sid) if source == "stderr"] == []


@real
@pytest.mark.parametrize("agent", ACP_AGENTS)
def test_allow_session_is_not_asked_twice(real_server, folder, agent):
    sid = session_for(real_server, agent, folder)
    check_allow_session_is_not_asked_twice(real_server, sid, folder, ASK_TIMEOUT_S)


@real
@pytest.mark.parametrize("agent", ACP_AGENTS)
def test_interrupt_while_waiting_denies_and_ends_the_turn(real_server, folder, agent):
    check_an_interrupt_while_waiting_denies_it(real_server, session_for(real_server, agent, folder),
                                               folder, ASK_TIMEOUT_S)


# A mode of the agent's own, the prompt's marker and the file it makes unasked (gemini's yolo
# mode runs the command; opencode's plan agent is chosen but its tools still ask, as
# OPENCODE_ASKS says), and a model of the tab as the model endpoint sees it.
MODES = {"gemini-cli": ("yolo", "[[touch]]", "approved.txt", "gemini-2.5-pro"),
         "opencode": ("plan", "", None, "m2")}


@real
@pytest.mark.parametrize("agent", ACP_AGENTS)
def test_the_tabs_mode_and_model_are_the_agents_own(real_server, endpoint, folder, agent):
    mode, marker, made, model = MODES[agent]
    sid = session_for(real_server, agent, folder)
    tab = detail(real_server, sid)["activeTabId"]
    bad = real_server.api("PATCH", f"session/{sid}/tabs/{tab}", json={"permissionMode": "nope"})
    assert bad.status_code == 400
    tag = f"model-{uuid.uuid4().hex[:8]}"
    chosen = real_server.api("PATCH", f"session/{sid}/tabs/{tab}", json={
        "permissionMode": mode, "model": f"mock/{model}" if agent == "opencode" else model})
    assert chosen.status_code == 200, chosen.text
    client = LiveClient(real_server)
    try:
        prompt(real_server, sid, f"Go {marker} {tag}")
        requested = approvals_requested(client, sid, 1)
    finally:
        client.close()
    entry = finished(real_server, sid, 1)[0]
    assert entry["success"] is True, ai_log(real_server, sid)
    assert requested == [] and errors(real_server, sid) == []  # the agent took both
    if made:
        assert (folder / made).exists()
    assert any(model in r.path or r.body.get("model") == model
               for r in endpoint.bodies_with(tag)), [r.path for r in endpoint.bodies_with(tag)]


def next_minute() -> None:
    """Gemini CLI 0.61 cannot load a conversation in the clock minute it began (a new process
    reopens and resets that minute's chat file): a restart comes later than that in life."""
    time.sleep(61 - time.time() % 60)


@real
@pytest.mark.parametrize("agent", ACP_AGENTS)
def test_after_a_restart_the_next_turn_loads_the_conversation(real_server, endpoint, folder,
                                                              agent):
    sid = session_for(real_server, agent, folder)
    first = f"first-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, f"Remember {first}")
    assert finished(real_server, sid, 1)[0]["success"] is True, ai_log(real_server, sid)
    conversation = tab_of(detail(real_server, sid))["agentSessionId"]
    real_server.stop()  # its agent processes end with it
    if agent == "gemini-cli":
        next_minute()
    real_server.start()
    second = f"second-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, f"And {second}")
    turn_two = finished(real_server, sid, 2)[1]
    assert turn_two["success"] is True, ai_log(real_server, sid)
    assert endpoint.bodies_with(first, second), "the second turn did not carry the first"
    assert tab_of(detail(real_server, sid))["agentSessionId"] == conversation
    # The history the agent replays while loading is not logged again.
    answers = [text for source, text in ai_log(real_server, sid) if source == "ai"]
    assert len(answers) == 2, answers


# -- with a stand-in ACP agent (tests/agents/acp-agent): what the real CLIs cannot be made to do


@pytest.fixture
def acp_standin(make_server, tmp_path):
    """A server whose opencode is the stand-in ACP agent."""
    config = tmp_path / "config.toml"
    config.write_text(f'[agents.opencode]\npath = "{STAND_INS}/acp-agent"\n')
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--config",
                       str(config), env=agent_env())


def test_a_plan_is_one_entry_updated_in_place(acp_standin, project):
    sid = create(acp_standin, project, toolType="opencode")["id"]
    prompt(acp_standin, sid, "make a plan")
    assert turns_done(acp_standin, sid, 1)[0]["success"] is True
    assert ai_log(acp_standin, sid) == [
        ("user", "make a plan"),
        ("plan", "- [x] Read the code\n- [~] Change it"),
        ("ai", "Planned.")]


def test_file_writes_the_agent_asks_for_stay_in_the_session_folder(acp_standin, project):
    sid = create(acp_standin, project, toolType="opencode")["id"]
    prompt(acp_standin, sid, "write ../escape.txt")
    prompt(acp_standin, sid, "write /etc/escape.txt")
    prompt(acp_standin, sid, "write inNULside.txt")
    prompt(acp_standin, sid, "write notes/inside.txt")
    prompt(acp_standin, sid, "write inside.txt")
    answers = [entry["fullResponse"] for entry in turns_done(acp_standin, sid, 5)]
    refused = "refused: Only text files inside the session's folder"
    assert answers[:3] == [refused, refused, refused]
    assert answers[3].startswith("refused: Cannot write notes/inside.txt")  # no such folder
    assert answers[4] == "written" and (project / "inside.txt").read_text() == "x\n"
    assert not (project.parent / "escape.txt").exists()


def test_a_resumed_conversation_does_not_log_the_replayed_history(acp_standin, project):
    sid = create(acp_standin, project, toolType="opencode")["id"]
    prompt(acp_standin, sid, "one")
    turns_done(acp_standin, sid, 1)
    acp_standin.stop()  # the kept process ends with the server: the next turn loads
    acp_standin.start()
    prompt(acp_standin, sid, "two")
    second = turns_done(acp_standin, sid, 2)[1]
    assert second["fullResponse"] == "Echo: two (message 2)"  # after the loaded "(loaded)"
    assert [text for source, text in ai_log(acp_standin, sid) if source == "ai"] == [
        "Echo: one (message 1)", "Echo: two (message 2)"]
    assert second["usageStats"]["inputTokens"] == 10


def test_a_request_id_the_acp_agent_repeats_is_asked_once(acp_standin, project):
    log = allow_a_burst(acp_standin, project, "ask twin", 1, "opencode")
    assert ("ai", "answered {'outcome': 'selected', 'optionId': 'yes'}") in log
