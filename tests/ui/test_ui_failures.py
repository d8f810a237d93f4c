"""Failures look like failures in the phone UI (issue 15, item 5): a failed AI turn, an
interrupted command that printed nothing."""

from __future__ import annotations

import pytest

from tests.ui.test_ui_polish import PHONES, slug
from tests.ui.test_ui_terminal import create_session, open_session, run, run_to_end, wait_idle

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.mark.parametrize("device", PHONES)
def test_failed_turn_card_shows_the_error_until_the_next_turn(agent_server, project, phone,
                                                              device, screenshot):
    session = create_session(agent_server, project, "<b>risky</b>", tool="claude-code")
    run_to_end(agent_server, session["id"], "fail now")
    page = phone(device).new_page()
    page.goto(agent_server.url(""))
    card = page.locator(f'[data-session-id="{session["id"]}"]')
    expect(card.locator('[data-state="failed"]')).to_have_text("Failed")
    failure = card.get_by_test_id("failure")
    expect(failure).to_have_text("The agent reported an error: error_during_execution")
    colour = failure.evaluate("el => getComputedStyle(el).color")
    error_colour = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--error')")
    state_colour = card.locator(".state-label").evaluate("el => getComputedStyle(el).color")
    assert colour == state_colour, (colour, state_colour, error_colour)
    expect(card.locator('[data-state="idle"]')).to_have_count(0)
    expect(card.locator("b")).to_have_count(0)  # the name is text, never markup
    screenshot(page, f"card-failed-{slug(device)}")

    # The next turn succeeds: the card is idle again and shows its answer.
    run_to_end(agent_server, session["id"], "hello")
    expect(card.locator('[data-state="idle"]')).to_have_text("Idle")
    expect(card.locator(".preview")).to_contain_text("Echo: hello")
    expect(card.get_by_test_id("failure")).to_have_count(0)


@pytest.mark.parametrize("device", PHONES)
def test_interrupted_command_without_output_says_interrupted(ui_server, project, phone, device,
                                                             screenshot):
    session = create_session(ui_server, project, "quiet")
    page = open_session(ui_server, phone(device), session)
    run(page, "sleep 60")
    page.get_by_role("button", name="Interrupt").click()
    log = page.locator("main.log")
    expect(log.locator(".msg-system").last).to_contain_text("Interrupted (SIGINT)")
    expect(log.locator("pre.term")).to_have_count(0)  # no empty output box
    wait_idle(ui_server, session["id"])

    page.goto(ui_server.url(""))
    page.get_by_role("button", name="History").click()
    entry = page.get_by_role("dialog", name="History").locator(".history-entry")
    expect(entry).to_have_count(1)
    entry.locator("summary").click()
    expect(entry.locator("pre")).to_have_text("Interrupted")
    screenshot(page, f"history-interrupted-{slug(device)}")
