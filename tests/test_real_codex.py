"""The real Codex through `codex app-server`, driven by the real server, against the local model
endpoint: commands and file changes held as approvals and answered from the API, the thread
resumed after a restart, the tab's mode and model. Fixtures and helpers: test_real_agents.py
and test_approvals.py.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.model_endpoint import USAGE
from tests.test_agents import ai_log, detail, prompt, tab_of
from tests.test_approvals import (
    approval_of,
    asked,
    check_allow_runs_it,
    check_allow_session_is_not_asked_twice,
    check_an_interrupt_while_waiting_denies_it,
    decide,
    open_approvals,
    tools,
)
from tests.test_real_agents import errors, finished, session_for

pytest_plugins = ("tests.test_real_agents",)
pytestmark = pytest.mark.real_agents

# Codex offers its apply_patch tool only for the models it knows (the endpoint's "m" is not).
PATCHING_MODEL = "gpt-5.5"


def codex_session(server, folder, **tab) -> str:
    """A codex session; `tab`: the tab's permissionMode and model."""
    sid = session_for(server, "codex", folder)
    if tab:
        tab_id = detail(server, sid)["activeTabId"]
        changed = server.api("PATCH", f"session/{sid}/tabs/{tab_id}", json=tab)
        assert changed.status_code == 200, changed.text
    return sid


def responses_with(endpoint, text: str) -> list[dict]:
    """The Responses API requests whose input items carry `text`."""
    return [r.body for r in endpoint.bodies_with(text) if r.path.startswith("/v1/responses")
            and text in json.dumps(r.body.get("input"))]


def test_a_command_waits_for_the_user_and_allow_runs_it(real_server, folder):
    sid = codex_session(real_server, folder)
    approval = asked(real_server, sid, "Create the file [[touch]]")
    assert (approval["kind"], approval["tool"]) == ("permission", "command_execution")
    assert "touch approved.txt" in approval["input"]["command"]
    assert approval["input"]["cwd"] == str(folder) and approval["diff"] is None
    assert approval["title"].startswith("$ ") and "touch approved.txt" in approval["title"]
    entry = check_allow_runs_it(real_server, sid, folder, approval)
    (tool,) = tools(real_server, sid)
    assert tool["toolName"] == "command_execution" and tool["isError"] is False
    assert tool["input"]["command"] == approval["input"]["command"]
    assert ("ai", "Created approved.txt.") in ai_log(real_server, sid)
    # Two model responses (the call, then the answer), cached input apart, as Codex reports.
    usage = entry["usageStats"]
    assert usage["inputTokens"] == 2 * (USAGE["input"] - USAGE["cached"])
    assert usage["outputTokens"] == 2 * USAGE["output"]
    assert usage["cacheReadInputTokens"] == 2 * USAGE["cached"]
    assert usage["contextWindow"] > 0
    assert errors(real_server, sid) == []


def test_deny_with_a_message_changes_nothing_and_the_model_reads_it(real_server, endpoint,
                                                                    folder):
    sid = codex_session(real_server, folder)
    reason = f"not-here-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, "Create the file [[touch]]")
    approval = approval_of(real_server, sid, timeout=60)
    decide(real_server, sid, approval["id"], decision="deny", message=reason)
    assert finished(real_server, sid, 1)[0]["success"] is True  # a refused call fails no turn
    assert not (folder / "approved.txt").exists()
    (tool,) = tools(real_server, sid)
    assert tool["isError"] is True and tool["text"].endswith("(declined)")
    (carried, *_) = responses_with(endpoint, reason)
    outputs = [item for item in carried["input"] if item.get("type") == "function_call_output"]
    assert outputs and "rejected by user" in outputs[-1]["output"]


def test_allow_session_is_not_asked_again_in_the_conversation(real_server, folder):
    check_allow_session_is_not_asked_twice(real_server, codex_session(real_server, folder),
                                           folder)


def test_an_interrupt_while_waiting_denies_and_ends_the_turn(real_server, folder):
    sid = codex_session(real_server, folder)
    check_an_interrupt_while_waiting_denies_it(real_server, sid, folder)
    assert ("system", "Interrupted (interrupt)") in ai_log(real_server, sid)
    assert open_approvals(real_server, sid) == []


def test_a_file_change_shows_a_unified_diff_and_the_tab_model_is_used(real_server, endpoint,
                                                                      folder):
    sid = codex_session(real_server, folder, model=PATCHING_MODEL)
    prompt(real_server, sid, "Write notes [[write]]")
    approval = approval_of(real_server, sid, timeout=60)
    assert (approval["kind"], approval["tool"]) == ("permission", "file_change")
    diff = "--- /dev/null\n+++ b/notes.md\n@@ -0,0 +1,2 @@\n+# Notes\n+written\n"
    assert approval["diff"] == diff
    assert approval["input"]["changes"][0]["kind"] == "add"
    assert not (folder / "notes.md").exists()
    decide(real_server, sid, approval["id"], decision="allow")
    assert finished(real_server, sid, 1)[0]["success"] is True
    assert (folder / "notes.md").read_text() == "# Notes\nwritten\n"
    (tool,) = tools(real_server, sid)
    assert tool["toolName"] == "file_change" and tool["diff"] == diff
    assert tool["text"].startswith("Add ") and tool["text"].endswith("→ done")
    assert {r.body.get("model") for r in endpoint.bodies_with("Write notes [[write]]")} == \
        {PATCHING_MODEL}


def test_a_mode_that_never_asks_runs_the_command_at_once(real_server, folder):
    sid = codex_session(real_server, folder, permissionMode="danger-full-access")
    prompt(real_server, sid, "Create the file [[touch]]")
    assert finished(real_server, sid, 1)[0]["success"] is True
    assert (folder / "approved.txt").exists()
    assert open_approvals(real_server, sid) == []


def test_the_thread_resumes_after_a_restart(real_server, endpoint, folder):
    sid = codex_session(real_server, folder)
    first, second = f"first-{uuid.uuid4().hex[:8]}", f"second-{uuid.uuid4().hex[:8]}"
    prompt(real_server, sid, f"Remember {first}")
    assert finished(real_server, sid, 1)[0]["success"] is True
    thread = tab_of(detail(real_server, sid))["agentSessionId"]
    assert thread
    real_server.stop()
    real_server.start()
    prompt(real_server, sid, f"And now {second}")
    assert finished(real_server, sid, 2)[1]["success"] is True, ai_log(real_server, sid)
    assert responses_with(endpoint, first) and [
        body for body in responses_with(endpoint, second) if first in json.dumps(body)], \
        "the second turn's request did not carry the first turn"
    assert tab_of(detail(real_server, sid))["agentSessionId"] == thread


def test_a_restart_with_an_open_approval_closes_it_and_the_thread_goes_on(real_server, folder):
    sid = codex_session(real_server, folder)
    approval = asked(real_server, sid, "Create the file [[touch]]")
    real_server.stop()
    real_server.start()
    assert open_approvals(real_server, sid) == []
    late = real_server.api("POST", f"session/{sid}/approvals/{approval['id']}",
                           json={"decision": "allow"})
    assert late.status_code == 409 and not (folder / "approved.txt").exists()
    assert ("system", "Turn interrupted (the server stopped)") in ai_log(real_server, sid)
    prompt(real_server, sid, "Hello again")
    assert finished(real_server, sid, 2)[1]["success"] is True, ai_log(real_server, sid)
