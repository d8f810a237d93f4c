"""Approvals in the phone UI: the card above the command bar, the dashboard badge, the tab's
mode and model chips, the agent's own slash commands and reviewable tool calls.

The agent is the stand-in claude (tests/agents/claude), which speaks Claude Code's control
protocol: `ask ...` prompts make it ask (see its docstring); the `real_agents` test drives the
real Claude Code against the local model endpoint (fixtures of tests/test_real_agents.py).
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import wait_for
from tests.test_agents import agent_env, detail, prompt, tab_of, turns_done
from tests.test_real_agents import finished, session_for
from tests.test_sessions_api import create

expect = pytest.importorskip("playwright.sync_api").expect
# The real CLIs' fixtures (endpoint, real_server, folder) and the stand-in ACP agent's.
pytest_plugins = ("tests.test_real_agents", "tests.test_real_acp")

PHONE, DESKTOP = "iPhone 13", "Desktop Chrome"


def claude(server, project) -> str:
    return create(server, project, toolType="claude-code", name="fix")["id"]


def open_session(phone, server, sid: str, device: str = PHONE):
    page = phone(device).new_page()
    page.goto(server.url(f"session/{sid}"))
    expect(page.get_by_role("textbox", name="Message to the agent")).to_be_visible()
    return page


def card(page):
    return page.get_by_role("region", name="Needs your answer")


def open_approvals(server, sid: str) -> list[dict]:
    return server.api("GET", f"session/{sid}/approvals").json()["approvals"]


def tools(server, sid: str) -> list[dict]:
    return [e for e in detail(server, sid)["aiLogs"] if e["source"] == "tool"]


def ask(page, text: str) -> None:
    """Type a prompt in the command bar and send it."""
    page.get_by_role("textbox", name="Message to the agent").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


@pytest.mark.parametrize("device", [PHONE, DESKTOP])
def test_allow_runs_the_command_and_the_dashboard_says_needs_you(agent_server, project, phone,
                                                                   device, screenshot):
    sid = claude(agent_server, project)
    dashboard = phone(device).new_page()
    dashboard.goto(agent_server.url(""))
    badge = dashboard.locator(f'[data-session-id="{sid}"]').get_by_test_id("needs-you")
    expect(badge).to_have_count(0)
    page = open_session(phone, agent_server, sid, device)
    ask(page, "ask to touch")
    approval = card(page)
    expect(approval).to_contain_text("Bash")
    expect(approval.locator(".approval-input")).to_have_text("touch approved.txt")
    expect(badge).to_have_text("Needs you")
    # The keyboard goes away so that the card shows, and the box does not ask for an answer.
    box = page.get_by_role("textbox", name="Message to the agent")
    expect(box).not_to_be_focused()
    expect(box).to_have_attribute("placeholder", "Ask the agent…")
    if device == PHONE:
        screenshot(page, "approval-command-iphone13")
    assert not (project / "approved.txt").exists()
    approval.get_by_role("button", name="Allow", exact=True).click()
    expect(approval).to_have_count(0)
    (entry,) = turns_done(agent_server, sid, 1)
    assert entry["success"] is True and (project / "approved.txt").exists()
    expect(badge).to_have_count(0)
    # The tool call in the log: one line that opens to the command and its output.
    tool = page.locator("main.log details.msg-tool")
    expect(tool.locator("summary")).to_contain_text("Bash touch approved.txt")
    tool.locator("summary").click()
    expect(tool.get_by_label("Input")).to_have_text("touch approved.txt")
    expect(tool.get_by_label("Output")).to_have_text("(Bash completed with no output)")


def test_deny_with_a_message_tells_the_agent_and_nothing_runs(agent_server, project, phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid, DESKTOP)
    ask(page, "ask to touch")
    approval = card(page)
    approval.get_by_role("button", name="Deny").click()
    approval.get_by_label("Reason (optional, sent to the agent)").fill("not in this folder")
    approval.get_by_role("button", name="Deny").click()
    expect(approval).to_have_count(0)
    turns_done(agent_server, sid, 1)
    assert not (project / "approved.txt").exists()
    (tool,) = tools(agent_server, sid)
    assert tool["isError"] is True and tool["result"] == "not in this folder"
    entry = page.locator("main.log details.msg-tool")
    entry.locator("summary").click()
    expect(entry.get_by_label("Output")).to_have_text("not in this folder")


def test_allow_for_this_session_is_not_asked_again(agent_server, project, phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    ask(page, "ask twice")
    card(page).get_by_role("button", name="Allow for this session").click()
    expect(card(page)).to_have_count(0)
    assert turns_done(agent_server, sid, 1)[0]["success"] is True
    assert len(tools(agent_server, sid)) == 2  # the identical second call ran unasked
    expect(page.locator("main.log details.msg-tool")).to_have_count(2)
    expect(card(page)).to_have_count(0)


def test_a_question_answered_by_an_option_and_by_free_text(agent_server, project, phone,
                                                           screenshot):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    ask(page, "ask question")
    question = card(page).get_by_role("group", name=re.compile("Which colour?"))
    expect(question.get_by_role("button", name=re.compile("Blue"))).to_contain_text("cool")
    screenshot(page, "approval-question-iphone13")
    question.get_by_role("button", name=re.compile("Blue")).click()
    expect(page.locator("main.log .msg-ai").last).to_contain_text(
        'Tool said: answers {"Which colour?": "Blue"}')
    ask(page, "ask question")
    own = card(page).get_by_role("textbox", name=re.compile("Your own answer"))
    own.fill("Green, please")
    card(page).get_by_role("button", name="Answer", exact=True).click()
    expect(page.locator("main.log .msg-ai").last).to_contain_text(
        'Tool said: answers {"Which colour?": "Green, please"}')
    expect(card(page)).to_have_count(0)


def test_several_questions_are_answered_together(agent_server, project, phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    ask(page, "ask questions")
    colour = card(page).get_by_role("group", name=re.compile("Which colour"))
    sizes = card(page).get_by_role("group", name=re.compile("Which sizes"))
    send = card(page).get_by_role("button", name="Send answers")
    colour.get_by_role("button", name=re.compile("Red")).click()
    expect(send).to_be_disabled()  # one question still open
    for size in ("S", "M", "L"):
        sizes.get_by_role("button", name=size, exact=True).click()
    sizes.get_by_role("button", name="M", exact=True).click()  # changed my mind
    expect(sizes.get_by_role("button", name="M", exact=True)).to_have_attribute(
        "aria-pressed", "false")
    send.click()
    expect(page.locator("main.log .msg-ai").last).to_contain_text(
        'Tool said: answers {"Which colour?": "Red", "Which sizes?": "S, L"}')


def test_a_plan_is_shown_as_markdown_and_approved(agent_server, project, phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    ask(page, "ask plan: # Rename\n1. **edit** the file\n2. run the tests")
    plan = card(page).locator(".approval-plan")
    expect(plan.get_by_role("heading", name="Rename")).to_be_visible()
    expect(plan.locator("strong")).to_have_text("edit")
    expect(plan.locator("ol li")).to_have_count(2)
    card(page).get_by_role("button", name="Approve").click()
    expect(page.locator("main.log .msg-ai").last).to_contain_text("Tool said: Plan approved")
    ask(page, "ask plan: # Again")
    card(page).get_by_role("button", name="Keep planning").click()
    card(page).get_by_label("Reason (optional, sent to the agent)").fill("split step 1")
    card(page).get_by_role("button", name="Keep planning").click()
    expect(page.locator("main.log .msg-ai").last).to_contain_text("Tool said: split step 1")


def test_several_open_approvals_come_one_after_another(agent_server, project, phone):
    sid = claude(agent_server, project)
    first = detail(agent_server, sid)["activeTabId"]
    second = agent_server.api("POST", f"session/{sid}/tabs", json={}).json()["tab"]["id"]
    page = open_session(phone, agent_server, sid)
    prompt(agent_server, sid, "ask to touch", tabId=first)
    wait_for(lambda: open_approvals(agent_server, sid))
    prompt(agent_server, sid, "ask run: ls -la", tabId=second)
    wait_for(lambda: len(open_approvals(agent_server, sid)) == 2)
    expect(card(page).locator(".approval-count")).to_have_text("1 of 2")
    tabs = page.get_by_role("tablist").get_by_role("tab")
    expect(tabs.nth(1).get_by_label("waiting for you")).to_have_count(1)
    expect(card(page)).to_contain_text("in Tab 1")  # the oldest, from the other tab
    expect(card(page).locator(".approval-input")).to_have_text("touch approved.txt")
    card(page).get_by_role("button", name="Allow", exact=True).click()
    expect(card(page).locator(".approval-input")).to_have_text("ls -la")
    expect(card(page).locator(".approval-count")).to_have_count(0)
    card(page).get_by_role("button", name="Allow", exact=True).click()
    expect(card(page)).to_have_count(0)
    turns_done(agent_server, sid, 2)


def test_an_approval_answered_elsewhere_goes_away_and_says_why(agent_server, project, phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    ask(page, "ask to touch")
    expect(card(page).locator(".approval-input")).to_have_text("touch approved.txt")
    (approval,) = open_approvals(agent_server, sid)
    agent_server.api("POST", f"session/{sid}/approvals/{approval['id']}",
                     json={"decision": "deny"})  # another phone
    note = card(page).get_by_role("status")
    expect(note).to_have_text(re.compile("answered elsewhere: denied"))
    expect(card(page).get_by_role("button", name="Allow", exact=True)).to_have_count(0)
    note.get_by_role("button", name="OK").click()
    expect(card(page)).to_have_count(0)
    ask(page, "ask to touch")
    expect(card(page).locator(".approval-input")).to_be_visible()
    agent_server.api("POST", f"session/{sid}/interrupt")
    expect(card(page).get_by_role("status")).to_have_text(
        re.compile("closed by an interrupt: denied"))


def test_an_approval_that_times_out_says_so(make_server, project, phone):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--approval-timeout-s", "3", env=agent_env())
    sid = claude(server, project)
    page = open_session(phone, server, sid, DESKTOP)
    ask(page, "ask to touch")
    expect(card(page).get_by_role("status")).to_have_text(re.compile("timed out: denied"))
    expect(card(page).locator(".approval-input")).to_have_count(0)
    assert not (project / "approved.txt").exists()


@pytest.mark.parametrize("device", [PHONE, DESKTOP])
def test_mode_and_model_chips_patch_the_tab_and_survive_a_reload(agent_server, project, phone,
                                                                  device):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid, device)
    mode = page.get_by_role("combobox", name="Permission mode")
    expect(mode.locator("option")).to_have_count(7)  # the default and Claude's six modes
    mode.select_option("plan")
    wait_for(lambda: tab_of(detail(agent_server, sid))["permissionMode"] == "plan")
    page.get_by_role("button", name=re.compile("^Model:")).click()
    sheet = page.get_by_role("dialog", name="Model")
    sheet.get_by_role("textbox").fill("opus")
    sheet.get_by_role("button", name="Use this model").click()
    wait_for(lambda: tab_of(detail(agent_server, sid))["model"] == "opus")
    page.reload()
    expect(page.get_by_role("combobox", name="Permission mode")).to_have_value("plan")
    expect(page.get_by_role("button", name="Model: opus")).to_be_visible()
    ask(page, "hello")  # the next turn runs with them
    expect(page.locator("main.log .msg-ai").last).to_contain_text(
        "args --permission-mode plan --model opus")
    page.get_by_role("combobox", name="Permission mode").select_option("")
    wait_for(lambda: tab_of(detail(agent_server, sid))["permissionMode"] is None)


def test_a_view_only_link_sees_the_approval_but_cannot_answer(make_server, project, phone):
    viewer = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={**agent_env(), "MAESTRO_VIEWER_TOKEN": viewer})
    sid = claude(server, project)
    prompt(server, sid, "ask to touch")
    wait_for(lambda: open_approvals(server, sid))
    page = phone(PHONE).new_page()
    page.goto(f"{server.base}/{viewer}/session/{sid}")
    expect(card(page).locator(".approval-input")).to_have_text("touch approved.txt")
    expect(card(page)).to_contain_text("View only: the owner answers this.")
    expect(card(page).get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("combobox", name="Permission mode")).to_be_disabled()


def test_slash_commands_are_the_ones_the_agent_advertised(agent_server, project, phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    box = page.get_by_role("textbox", name="Message to the agent")
    box.fill("/")
    expect(page.get_by_role("listbox", name="Slash commands")).to_have_count(0)  # none yet
    ask(page, "hello")
    expect(page.locator("main.log .msg-ai").last).to_contain_text("Echo: hello")
    box.fill("/")
    options = page.get_by_role("listbox", name="Slash commands").get_by_role("option")
    expect(options).to_have_count(4)  # compact, context, review, standin-deploy
    expect(options.first).to_contain_text("/compact")
    box.fill("/st")
    options.filter(has_text="/standin-deploy").click()
    expect(box).to_have_value("/standin-deploy ")
    box.fill("/help")
    expect(page.get_by_role("listbox", name="Slash commands")).to_have_count(0)
    page.reload()  # kept with the tab
    page.get_by_role("textbox", name="Message to the agent").fill("/rev")
    expect(page.get_by_role("option", name="/review")).to_be_visible()


def test_a_file_change_is_a_diff_with_line_numbers(agent_server, project, phone, screenshot):
    (project / "notes.md").write_text("keep\nold line\n")
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    ask(page, "ask write: keep\nnew line")
    diff = card(page).get_by_role("group", name="Changes to notes.md")
    expect(diff.locator(".diff-del .diff-text")).to_have_text("-old line")
    expect(diff.locator(".diff-del .diff-ln").first).to_have_text("2")
    expect(diff.locator(".diff-add .diff-text")).to_have_text("+new line")
    expect(diff.locator(".diff-add .diff-ln").nth(1)).to_have_text("2")
    expect(diff.locator(".diff-same .diff-text")).to_have_text(" keep")
    screenshot(page, "approval-diff-iphone13")
    card(page).get_by_role("button", name="Allow", exact=True).click()
    turns_done(agent_server, sid, 1)
    assert (project / "notes.md").read_text() == "keep\nnew line\n"
    tool = page.locator("main.log details.msg-tool")
    tool.locator("summary").click()
    logged = tool.get_by_role("group", name="Changes by Write")
    expect(logged.locator(".diff-add .diff-text")).to_have_text("+new line")


HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def test_hostile_commands_diffs_and_plans_stay_text(agent_server, project, phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    ask(page, f"ask run: echo {HOSTILE}")
    expect(card(page).locator(".approval-input")).to_have_text(f"echo {HOSTILE}")
    card(page).get_by_role("button", name="Allow", exact=True).click()
    expect(card(page)).to_have_count(0)
    ask(page, f"ask write: {HOSTILE}")
    expect(card(page).locator(".diff-add .diff-text")).to_have_text(f"+{HOSTILE}")
    card(page).get_by_role("button", name="Deny").click()
    card(page).get_by_role("button", name="Deny").click()
    expect(card(page)).to_have_count(0)
    ask(page, f"ask plan: # Plan {HOSTILE}\n[link](javascript:window.__pwned=3)")
    plan = card(page).locator(".approval-plan")
    expect(plan.get_by_role("heading")).to_contain_text("Plan")
    assert plan.locator("script, img[onerror], a[href^='javascript']").count() == 0
    card(page).get_by_role("button", name="Approve").click()
    turns_done(agent_server, sid, 3)
    for summary in page.locator("main.log details.msg-tool summary").all():
        summary.click()
    expect(page.locator("main.log details.msg-tool .tool-input").first).to_have_text(
        f"echo {HOSTILE}")
    assert page.locator("img[onerror], main.log script, .approval script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_an_agents_plan_is_a_checklist_rendered_as_sanitised_markdown(acp_standin, project,
                                                                      phone):
    server = acp_standin
    sid = create(server, project, toolType="opencode")["id"]
    page = open_session(phone, server, sid)
    ask(page, f"make a plan: **Test** it {HOSTILE} [x](javascript:window.__pwned=3)")
    plan = page.locator("main.log .msg-plan")
    expect(plan.locator("li")).to_have_count(3)
    expect(plan.locator("li").nth(0)).to_have_text("☑ Read the code")
    expect(plan.locator("li").nth(1)).to_have_text("◐ Change it")
    expect(plan.locator("li strong")).to_have_text("Test")
    assert plan.locator("script, img[onerror], a[href^='javascript'], input").count() == 0
    assert page.evaluate("window.__pwned") is None


# The page in the background, with notifications allowed and turned on in Settings.
HIDDEN_AND_NOTIFYING = """
localStorage.setItem('maestro.notify', 'true');
Object.defineProperty(document, 'visibilityState', { get: () => 'hidden' });
"""
SHOWN_NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  return (await registration.getNotifications()).map((n) => n.title + ': ' + n.body);
}"""


def test_a_new_approval_notifies_while_the_page_is_hidden(agent_server, project, phone):
    sid = claude(agent_server, project)
    context = phone(PHONE, permissions=["notifications"])
    context.add_init_script(HIDDEN_AND_NOTIFYING)
    page = context.new_page()
    page.goto(agent_server.url(""))
    expect(page.locator(f'[data-session-id="{sid}"]')).to_be_visible()
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    prompt(agent_server, sid, "ask to touch")
    expect(page.locator(f'[data-session-id="{sid}"]').get_by_test_id("needs-you")).to_be_visible()
    # "Waiting for your input" may come first: the approval's note replaces it (same tag).
    asked = ["fix: May I: Bash touch approved.txt"]
    wait_for(lambda: page.evaluate(SHOWN_NOTIFICATIONS) == asked)


@pytest.mark.real_agents
def test_real_claude_from_the_phone_diff_allow_and_deny(real_server, folder, phone):
    sid = session_for(real_server, "claude-code", folder)
    page = open_session(phone, real_server, sid)
    ask(page, "Write notes [[write]]")
    diff = card(page).locator(".diff")
    expect(diff.locator(".diff-add .diff-text")).to_have_text(["+# Notes", "+written"])
    expect(diff.locator(".diff-add .diff-ln:nth-child(2)")).to_have_text(["1", "2"])
    card(page).get_by_role("button", name="Allow", exact=True).click()
    assert finished(real_server, sid, 1)[0]["success"] is True
    assert (folder / "notes.md").read_text() == "# Notes\nwritten\n"
    write = page.locator("main.log details.msg-tool").filter(has_text="Write")
    write.locator("summary").click()
    expect(write.locator(".diff-add .diff-text")).to_have_text(["+# Notes", "+written"])
    ask(page, "Create the file [[touch]]")
    expect(card(page).locator(".approval-input")).to_have_text("touch approved.txt")
    card(page).get_by_role("button", name="Deny").click()
    card(page).get_by_label("Reason (optional, sent to the agent)").fill("not today")
    card(page).get_by_role("button", name="Deny").click()
    finished(real_server, sid, 2)
    assert not (folder / "approved.txt").exists()
    box = page.get_by_role("textbox", name="Message to the agent")
    box.fill("/comp")  # what this claude advertised
    expect(page.get_by_role("option", name="/compact")).to_be_visible()


def test_a_huge_command_is_shown_cut_with_a_note_and_allow_still_works(agent_server, project,
                                                                        phone):
    sid = claude(agent_server, project)
    page = open_session(phone, agent_server, sid)
    size = 3 * 1024 * 1024  # the most an agent's 8 MiB line carries (the command is in it twice)
    ask(page, f"ask huge: {size}")
    approval = card(page)
    expect(approval.get_by_role("note")).to_have_text(
        "Too long to show whole: cut at 64 KiB. Allow runs all of it.")
    shown = approval.locator(".approval-input").text_content()
    assert shown.startswith('{"command": "true xxx') and len(shown.encode()) <= 64 * 1024
    approval.get_by_role("button", name="Allow", exact=True).click()
    expect(approval).to_have_count(0)
    assert turns_done(agent_server, sid, 1)[0]["success"] is True
    expect(page.get_by_text(f"Tool said: ran {size + 5} characters")).to_be_visible()
