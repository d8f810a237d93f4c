"""The phone UI as a new user meets it (issue 15): sending, folders, toasts, words, tap targets."""

from __future__ import annotations

import pytest

from tests.ui.test_ui_terminal import command_box, create_session, open_session

expect = pytest.importorskip("playwright.sync_api").expect
PHONES = ["iPhone 13", "Pixel 7"]


def history_count(server, session_id: str) -> int:
    return server.api("GET", f"history?sessionId={session_id}").json()["count"]


@pytest.mark.parametrize("device", PHONES)
def test_enter_sends_and_newlines_stay_possible(ui_server, project, phone, device):
    session = create_session(ui_server, project, "enter")
    page = open_session(ui_server, phone(device), session)
    box = command_box(page)
    expect(box).to_have_attribute("enterkeyhint", "send")

    box.fill("echo sent-by-$((6*7))")
    box.press("Enter")
    expect(page.locator("main.log")).to_contain_text("sent-by-42")
    expect(box).to_have_value("")

    # Shift+Enter (a hardware keyboard) adds a line instead of sending.
    box.fill("echo line-one")
    box.press("Shift+Enter")
    box.type("echo line-$((1+1))")
    expect(box).to_have_value("echo line-one\necho line-$((1+1))")

    # The visible toggle makes Enter add a line; Send sends the multi-line text.
    toggle = page.get_by_role("button", name="Enter adds a new line")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(box).to_have_attribute("enterkeyhint", "enter")
    box.press("End")
    box.press("Enter")
    box.type("echo line-three")
    expect(box).to_have_value("echo line-one\necho line-$((1+1))\necho line-three")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("main.log")).to_contain_text("line-2")
    expect(page.locator("main.log")).to_contain_text("line-three")
    expect(box).to_have_value("")
