"""The new-session sheet offers the host's tmux sessions; picking one attaches the phone to
what runs at the desk (real tmux on a test-owned socket, real Chromium)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import wait_for
from tests.test_terminal_view import screen_text

expect = pytest.importorskip("playwright.sync_api").expect


def test_new_session_sheet_lists_tmux_sessions_and_attaches(tmux_server, desk, project, phone):
    desk.new_session("desk")
    desk.tmux("new-window", "-d", "-t", "=desk:", "-n", "logs")
    desk.tmux("send-keys", "-t", "=desk:0", "echo started-at-$((3*5))-desk", "Enter")
    page = phone("Pixel 7").new_page()
    page.goto(tmux_server.url(""))
    page.get_by_role("button", name="New session").click()
    dialog = page.get_by_role("dialog", name="New session")
    dialog.get_by_label("Folder", exact=True).fill(str(project))
    picker = dialog.get_by_label("Attach to tmux")
    expect(picker.locator("option", has_text="0:bash* 1:logs")).to_have_count(1)
    picker.select_option("desk")
    expect(dialog.get_by_label("Name")).to_have_value("tmux desk")
    dialog.get_by_role("button", name="Create session").click()

    expect(page).to_have_url(re.compile(r"/session/[0-9a-f-]{36}$"))
    expect(page.locator(".session-top .subtitle")).to_contain_text("tmux desk")
    sid = page.url.rsplit("/", 1)[1]
    wait_for(lambda: desk.clients("desk"))
    assert "started-at-15-desk" in screen_text(tmux_server, sid)

