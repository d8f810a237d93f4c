"""What needs the user comes first on the dashboard (issue 15, item 4): the order of the
cards, the compact density, the count in the title."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.ui.test_ui_polish import PHONES, slug
from tests.ui.test_ui_terminal import create_session, run_to_end, wait_idle

expect = pytest.importorskip("playwright.sync_api").expect


def send(server, session_id: str, command: str) -> None:
    response = server.api("POST", f"session/{session_id}/send", json={"command": command})
    assert response.status_code == 200, response.text


def wait_state(server, session_id: str, wanted: str) -> None:
    wait_for(lambda: server.api("GET", f"session/{session_id}").json()["session"]["state"]
             == wanted, timeout=20)


def card_ids(page) -> list[str]:
    return page.locator(".cards > li").evaluate_all(
        "cards => cards.map((c) => c.dataset.sessionId)")


@pytest.mark.parametrize("device", PHONES)
def test_dashboard_puts_what_needs_you_first(agent_server, project, phone, device, screenshot):
    server = agent_server
    idle_old = create_session(server, project, "idle-old")
    idle_new = create_session(server, project, "idle-new")
    busy = create_session(server, project, "busy")
    failed = create_session(server, project, "failed", tool="claude-code")
    asking = create_session(server, project, "asking")
    for s in (idle_old, idle_new, busy, asking):
        wait_idle(server, s["id"])
    run_to_end(server, idle_old["id"], "echo older")
    run_to_end(server, idle_new["id"], "echo newer")  # the most recent activity of the idle
    run_to_end(server, failed["id"], "fail now")
    send(server, busy["id"], "sleep 60")
    wait_state(server, busy["id"], "busy")
    send(server, asking["id"], "read -p 'Name? ' who")
    wait_state(server, asking["id"], "waiting_input")

    page = phone(device).new_page()
    page.goto(server.url(""))
    expected = [asking["id"], failed["id"], busy["id"], idle_new["id"], idle_old["id"]]
    wait_for(lambda: card_ids(page) == expected, timeout=15)
    expect(page).to_have_title("(1) Maestro")  # the count that needs you
    screenshot(page, f"dashboard-attention-{slug(device)}")

    # Answering the question: nothing needs you, the title says so, the order follows.
    send(server, asking["id"], "Ada")
    expect(page).to_have_title("Maestro")
    wait_for(lambda: card_ids(page)[:2] == [failed["id"], busy["id"]], timeout=15)


@pytest.mark.parametrize("device", PHONES)
def test_compact_density_shows_more_cards_per_screen(ui_server, project, phone, device,
                                                     screenshot):
    for n in range(8):
        create_session(ui_server, project, f"session-{n}")
    page = phone(device).new_page()
    page.goto(ui_server.url(""))
    expect(page.locator(".cards > li")).to_have_count(8)

    def cards_on_screen() -> int:
        return page.locator(".cards > li").evaluate_all(
            "cards => cards.filter((c) => c.getBoundingClientRect().bottom <= innerHeight).length")

    comfortable = cards_on_screen()
    toggle = page.get_by_role("button", name="Compact list")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert cards_on_screen() > max(comfortable, 5)
    # Every card is still a full tap target.
    heights = page.locator(".cards > li .card-main").evaluate_all(
        "links => links.map((a) => a.getBoundingClientRect().height)")
    assert min(heights) >= 44
    screenshot(page, f"dashboard-compact-{slug(device)}")
    page.reload()  # the choice is kept
    toggle = page.get_by_role("button", name="Compact list")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".cards > li")).to_have_count(8)
    assert cards_on_screen() > max(comfortable, 5)


def open_approvals(server, session_id: str) -> list[dict]:
    return server.api("GET", f"session/{session_id}/approvals").json()["approvals"]


@pytest.mark.parametrize("device", PHONES)
def test_approvals_asked_before_the_page_loaded_count_as_needing_you(agent_server, project,
                                                                     phone, device, screenshot):
    server = agent_server
    asking = create_session(server, project, "asking", tool="claude-code")
    shell = create_session(server, project, "shell")
    wait_idle(server, shell["id"])
    send(server, asking["id"], "ask burst 2")  # two requests, open before the page exists
    wait_for(lambda: len(open_approvals(server, asking["id"])) == 2, timeout=20)
    run_to_end(server, shell["id"], "echo later")  # the idle one was active last

    page = phone(device).new_page()
    page.goto(server.url(""))
    wait_for(lambda: card_ids(page) == [asking["id"], shell["id"]], timeout=15)
    badge = page.locator(f'[data-session-id="{asking["id"]}"]').get_by_test_id("needs-you")
    expect(badge).to_have_text("Needs you")
    expect(page).to_have_title("(2) Maestro")  # each open request is one thing that needs you
    screenshot(page, f"dashboard-approvals-{slug(device)}")

    # Answered elsewhere, one by one: the count follows.
    first, second = open_approvals(server, asking["id"])
    for approval, title in ((first, "(1) Maestro"), (second, "Maestro")):
        response = server.api("POST", f"session/{asking['id']}/approvals/{approval['id']}",
                              json={"decision": "allow"})
        assert response.status_code == 200, response.text
        expect(page).to_have_title(title)
    expect(badge).to_have_count(0)
