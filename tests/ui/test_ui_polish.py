"""The phone UI as a new user meets it (issue 15): sending, folders, toasts, words, tap targets."""

from __future__ import annotations

import pytest

from tests.ui.test_ui_terminal import command_box, create_session, open_session, run

expect = pytest.importorskip("playwright.sync_api").expect
PHONES = ["iPhone 13", "Pixel 7"]


def slug(device: str) -> str:
    """A device's name in a screenshot's file name: "iPhone 13" → "iphone13"."""
    return device.replace(" ", "").lower()


def history_count(server, session_id: str) -> int:
    return server.api("GET", f"history?sessionId={session_id}").json()["count"]


@pytest.mark.parametrize("device", PHONES)
def test_enter_sends_and_newlines_stay_possible(ui_server, project, phone, device, screenshot):
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
    screenshot(page, f"enter-newline-{slug(device)}")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("main.log")).to_contain_text("line-2")
    expect(page.locator("main.log")).to_contain_text("line-three")
    expect(box).to_have_value("")


@pytest.mark.parametrize("device", PHONES)
def test_folder_picker_browses_home_and_tilde_is_expanded(ui_server, home, phone, device,
                                                          screenshot):
    (home / "code" / "myapp").mkdir(parents=True)
    (home / "code" / "<img src=x onerror=alert(1)>").mkdir()
    page = phone(device).new_page()
    page.goto(ui_server.url(""))
    page.get_by_role("button", name="New session").click()
    dialog = page.get_by_role("dialog", name="New session")
    folder = dialog.get_by_label("Folder", exact=True)

    dialog.get_by_role("button", name="Browse folders…").click()
    browser = dialog.get_by_role("group", name="Browse folders")
    expect(browser.get_by_role("button", name="Parent folder")).to_be_disabled()  # home
    browser.get_by_role("button", name="code", exact=True).click()
    # A hostile folder name is shown as text, never as markup.
    expect(browser.get_by_role("button", name="<img src=x onerror=alert(1)>")).to_be_visible()
    expect(browser.locator("img")).to_have_count(0)
    screenshot(page, f"folder-picker-{slug(device)}")
    browser.get_by_role("button", name="myapp").click()
    browser.get_by_role("button", name="Use this folder").click()
    expect(folder).to_have_value(str(home / "code" / "myapp"))

    # ~ typed by hand is the server's home; the error speaks of folders.
    dialog.get_by_label("Name").fill("tilde")
    folder.fill("code/myapp")
    dialog.get_by_role("button", name="Create session").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Folder must be a full path")
    folder.fill("~/code/myapp")
    dialog.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name="tilde")).to_be_visible()
    sessions = ui_server.api("GET", "sessions").json()["sessions"]
    assert [s["cwd"] for s in sessions] == [str(home / "code" / "myapp")]

    # Back in the sheet, the folder is offered among the recent ones.
    page.goto(ui_server.url(""))
    page.get_by_role("button", name="New session").click()
    recent = page.get_by_role("group", name="Recent folders")
    folder = page.get_by_role("dialog", name="New session").get_by_label("Folder", exact=True)
    folder.fill("")
    recent.get_by_role("button", name=str(home / "code" / "myapp")).click()
    expect(folder).to_have_value(str(home / "code" / "myapp"))


def box_of(locator) -> dict:
    return locator.bounding_box()


@pytest.mark.parametrize("device", PHONES)
def test_toasts_collapse_and_never_cover_header_or_command_bar(ui_server, project, phone, device,
                                                               screenshot):
    session = create_session(ui_server, project, "toasty")
    page = open_session(ui_server, phone(device), session)
    escape = page.get_by_role("toolbar", name="Terminal keys").get_by_role("button", name="Escape")
    for _ in range(3):  # keys with nothing running: the same error three times
        escape.click()
    toast = page.locator(".toast")
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("Nothing is running")
    expect(toast.get_by_label("3 times")).to_have_text("×3")
    screenshot(page, f"toast-collapsed-{slug(device)}")

    header = box_of(page.locator("header.topbar"))
    bar = box_of(page.locator(".commandbar"))
    shown = box_of(toast)
    assert shown["y"] >= header["y"] + header["height"]
    assert shown["y"] + shown["height"] <= bar["y"]


@pytest.mark.parametrize("device", PHONES)
def test_connection_and_remote_control_have_their_own_words(ui_server, project, phone, device,
                                                            screenshot):
    session = create_session(ui_server, project, "words")
    context = phone(device)
    page = context.new_page()
    page.goto(ui_server.url(""))
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    expect(page.locator(".card .badge")).to_have_text("Remote control on")

    page = open_session(ui_server, context, session)
    run(page, "sleep 30")
    subtitle = page.locator(".session-top .subtitle")
    expect(subtitle).to_contain_text("Busy")
    context.set_offline(True)
    # The server cannot be reached: the header says so, not a stale "Busy", and nothing claims
    # that remote control was turned off.
    expect(subtitle).to_contain_text("Server unreachable")
    expect(subtitle).not_to_contain_text("Busy")
    expect(page.get_by_text("Remote control is off")).to_have_count(0)
    screenshot(page, f"server-unreachable-{slug(device)}")
    context.set_offline(False)
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    expect(subtitle).to_contain_text("Busy")
    page.get_by_role("button", name="Interrupt").click()
    expect(subtitle).to_contain_text("Idle")


CONTROLS = ("button, a[href], select, input:not([type=hidden]), textarea, summary, "
            "[role=button], [role=tab]")
SMALL_CONTROLS = """() => [...document.querySelectorAll('""" + CONTROLS + """')]
  .map((el) => [el, el.getBoundingClientRect()])
  .filter(([el, r]) => r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden')
  .filter(([el, r]) => r.width < 44 || r.height < 44)
  .map(([el, r]) => `${el.tagName.toLowerCase()}.${el.className} "${(el.getAttribute('aria-label')
    || el.textContent).trim().slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`)"""


@pytest.mark.parametrize("device", PHONES)
def test_every_control_is_a_44px_target_and_every_key_is_on_screen(ui_server, project, phone,
                                                                  device, screenshot):
    session = create_session(ui_server, project, "targets")
    context = phone(device)
    page = context.new_page()
    page.goto(ui_server.url(""))
    expect(page.locator(".card")).to_have_count(1)
    assert page.evaluate(SMALL_CONTROLS) == []
    page.get_by_role("button", name="New session").click()
    page.get_by_role("button", name="Browse folders…").click()
    expect(page.get_by_role("button", name="Use this folder")).to_be_visible()
    assert page.evaluate(SMALL_CONTROLS) == []

    page = open_session(ui_server, context, session)
    run(page, "echo target-$((40+4))")
    expect(page.locator("main.log")).to_contain_text("target-44")
    command_box(page).focus()  # shows the recent-command chips
    expect(page.get_by_role("group", name="Recent commands").or_(
        page.locator(".chips[aria-label='Recent commands']"))).to_be_visible()
    assert page.evaluate(SMALL_CONTROLS) == []
    # Every terminal key is on screen, none hidden behind a horizontal scroll.
    width = page.viewport_size["width"]
    keys = page.get_by_role("toolbar", name="Terminal keys").get_by_role("button")
    assert keys.count() == 10
    for index in range(keys.count()):
        box = keys.nth(index).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, keys.nth(index).inner_text()
    screenshot(page, f"keybar-{slug(device)}")
