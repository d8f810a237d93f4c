"""The view-only token in the phone UI: everything to watch, no control to act with."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from tests.ui.test_ui_terminal import create_session, run_to_end

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def viewed(make_server):
    """A server with a view-only token; `viewer.url(path)` is a page under that token."""
    viewer_token = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={"MAESTRO_VIEWER_TOKEN": viewer_token})
    viewer = SimpleNamespace(url=lambda path="": f"{server.base}/{viewer_token}/{path}")
    return server, viewer


def test_a_viewer_sees_a_sessions_output_but_no_command_bar(viewed, project, phone):
    server, viewer = viewed
    session = create_session(server, project, "watched")
    run_to_end(server, session["id"], "echo seen-by-$((40+2))")
    page = phone("iPhone 13").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(viewer.url(f"session/{session['id']}"))
    expect(page.locator("main.log")).to_contain_text("seen-by-42")
    expect(page.get_by_role("note")).to_contain_text("View only")
    for hidden in (page.locator(".commandbar"), page.locator("#command-input"),
                   page.get_by_role("toolbar", name="Terminal keys"),
                   page.get_by_role("button", name="Session actions"),
                   page.get_by_role("button", name="Interrupt")):
        expect(hidden).to_have_count(0)
    # Output that arrives while watching shows up live.
    run_to_end(server, session["id"], "echo later-$((1+1))")
    expect(page.locator("main.log")).to_contain_text("later-2")

    page.get_by_role("button", name="Back to sessions").click()
    expect(page.locator(".card")).to_contain_text("watched")
    expect(page.get_by_role("button", name="New session")).to_have_count(0)
    expect(page.get_by_role("button", name="Actions for watched")).to_have_count(0)
    page.get_by_role("button", name="Settings").click()
    settings = page.get_by_role("dialog", name="Settings")
    expect(settings.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(settings.get_by_role("radiogroup", name="Theme")).to_have_count(0)
    assert not errors

    owner = phone("Pixel 7").new_page()  # the same page under the owner's token has them
    owner.goto(server.url(f"session/{session['id']}"))
    expect(owner.get_by_role("textbox", name="Command")).to_be_visible()
    expect(owner.get_by_role("button", name="Session actions")).to_be_visible()


def test_a_viewer_cannot_switch_open_or_rename_ai_tabs(viewed, project, phone):
    server, viewer = viewed
    session = create_session(server, project, "agent", tool="claude-code")
    server.api("POST", f"session/{session['id']}/tabs", json={"name": "second"})
    page = phone("Pixel 7").new_page()
    page.goto(viewer.url(f"session/{session['id']}"))
    tabs = page.get_by_role("tablist")
    expect(tabs.get_by_role("tab")).to_have_count(2)
    expect(page.get_by_role("note")).to_contain_text("View only")
    for tab in tabs.get_by_role("tab").all():
        expect(tab).to_be_disabled()
    expect(page.get_by_role("button", name="New tab")).to_have_count(0)
    expect(page.get_by_role("button", name="AI mode: switch to terminal")).to_have_count(0)
