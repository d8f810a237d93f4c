"""Hostile program output in the terminal view, in headless Chromium: a title, a clipboard
write, a javascript: link and HTML in the text must stay inert (xterm.js draws text only)."""

from __future__ import annotations

import pytest

from tests.ui.test_ui_terminal import create_session
from tests.ui.test_ui_terminal_view import assert_clean, open_terminal, screen_rows, type_line

expect = pytest.importorskip("playwright.sync_api").expect

PAYLOAD = "window.pwned=1"
HOSTILE_OUTPUT = (
    # a window title with HTML, a clipboard write (OSC 52), a javascript: link (OSC 8),
    # HTML as text, then a marker
    "printf '\\033]0;<img src=x onerror={}>\\007'; "
    "printf '\\033]52;c;{}\\007'; "
    "printf '\\033]8;;javascript:{}\\033\\\\CLICK-ME\\033]8;;\\033\\\\\\n'; "
    "printf '<img src=x onerror={}> hostile-done\\n'"
).format(PAYLOAD, "cm0gLXJmIH4K", PAYLOAD, PAYLOAD)  # base64 of "rm -rf ~"


def test_hostile_output_stays_text_in_the_terminal_view(ui_server, project, phone):
    context = phone("Pixel 7")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    session = create_session(ui_server, project, "hostile")
    page = open_terminal(ui_server, context, session)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.evaluate("navigator.clipboard.writeText('before')")
    title = page.title()
    type_line(page, HOSTILE_OUTPUT)
    expect(screen_rows(page)).to_contain_text("> hostile-done")
    box = screen_rows(page).get_by_text("CLICK-ME", exact=True).last.bounding_box()
    page.mouse.move(box["x"] + 3, box["y"] + box["height"] / 2)  # xterm.js finds links on hover
    page.mouse.click(box["x"] + 3, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)  # a navigation or dialog would be queued by now
    assert page.evaluate("window.pwned") is None
    assert dialogs == []  # not even xterm.js's "navigate to ...?" for a javascript: URL
    assert page.title() == title
    assert page.evaluate("navigator.clipboard.readText()") == "before"
    assert page.locator(".termview img").count() == 0
    assert_clean(page)
