"""The terminal view (docs/terminal-protocol.md) in headless Chromium, against the real server:
xterm.js fed by `session:pty`, keystrokes and the key bar as `input`, the size as `resize`."""

from __future__ import annotations

import re
import shlex
import sys
import uuid

import pytest

from tests.conftest import wait_for
from tests.ui.test_ui_terminal import command_box, create_session, open_session, run, wait_idle

expect = pytest.importorskip("playwright.sync_api").expect
PlaywrightTimeout = pytest.importorskip("playwright.sync_api").TimeoutError

CSP_WATCH = """window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.cspViolations.push(e.violatedDirective + ' ' + (e.sample || '')));"""
SECRET = "hunter2-Sw0rdfish"


def screen_rows(page):
    return page.locator(".termview .xterm-rows")


def open_terminal(server, context, session):
    """The session page switched to the terminal view, once its shell answers there."""
    context.add_init_script(CSP_WATCH)
    page = open_session(server, context, session)
    page.get_by_role("button", name="Terminal view").click()
    toggle = page.get_by_role("button", name="Terminal view")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(screen_rows(page)).to_be_visible()
    # 24-bit colour: xterm.js's style attribute, set through the CSSOM under our CSP.
    ready = screen_rows(page).locator("span", has_text=re.compile("^ready-42$"))
    for _ in range(3):  # keys typed while the view still connects may not reach the shell
        type_line(page, "printf '\\033[38;2;1;2;3mready-%s\\033[0m\\n' $((40+2))")
        try:
            ready.first.wait_for(timeout=8000)
            break
        except PlaywrightTimeout:
            continue
    expect(ready.first).to_have_css("color", "rgb(1, 2, 3)")
    assert_clean(page)
    return page


def focus_terminal(page) -> None:
    page.locator(".termview .xterm-helper-textarea").focus()


def type_line(page, text: str) -> None:
    focus_terminal(page)
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def tap_key(page, name: str) -> None:
    keys = page.get_by_role("toolbar", name="Terminal keys")
    keys.get_by_role("button", name=name, exact=True).click()


def screen(server, session_id: str) -> dict:
    response = server.api("GET", f"session/{session_id}/screen")
    assert response.status_code == 200, response.text
    return response.json()


def rows_on_page(page) -> int:
    return screen_rows(page).locator(":scope > div").count()


def assert_clean(page) -> None:
    assert page.evaluate("window.cspViolations") == []


def test_toggle_between_log_and_terminal_views(ui_server, project, phone):
    """Needs no server support: the toggle, xterm under the CSP, the theme, the log view after."""
    session = create_session(ui_server, project, "views")
    context = phone("Pixel 7")
    context.add_init_script(CSP_WATCH)
    page = open_session(ui_server, context, session)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    run(page, "echo from-the-log-$((6*7))")
    expect(page.locator("main.log")).to_contain_text("from-the-log-42")

    toggle = page.get_by_role("button", name="Terminal view")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(page.locator(".termview .xterm")).to_be_visible()
    expect(command_box(page)).to_have_count(0)
    keys = page.get_by_role("toolbar", name="Terminal keys")
    for name in ("Ctrl", "Alt", "Escape", "Tab", "Up arrow", "Page up", "Page down"):
        expect(keys.get_by_role("button", name=name, exact=True)).to_be_attached()
    ctrl = keys.get_by_role("button", name="Ctrl", exact=True)
    ctrl.click()
    expect(ctrl).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Interrupt")).to_be_visible()
    # The terminal fills the space between the header and the key bar.
    box = page.locator(".termview .xterm-screen").bounding_box()
    assert box["width"] > 300 and box["height"] > 300

    # The theme reaches the terminal, live.
    light = ui_server.api("PUT", "theme", json={"id": "github-light"}).json()["theme"]
    expect(page.locator("html")).to_have_attribute("data-theme", "github-light")
    background = light["colors"]["bgMain"].lstrip("#")
    expected = "rgb({}, {}, {})".format(*(int(background[i:i + 2], 16) for i in (0, 2, 4)))
    screen_box = page.locator(".termview .xterm-scrollable-element")
    expect(screen_box).to_have_css("background-color", expected)

    # The choice is remembered per session; the log view is as it was.
    page.reload()
    expect(page.locator(".termview .xterm")).to_be_visible()
    page.get_by_role("button", name="Terminal view").click()
    expect(page.locator("main.log")).to_contain_text("from-the-log-42")
    run(page, "echo back-in-the-log")
    expect(page.locator("main.log")).to_contain_text("back-in-the-log")
    assert_clean(page)
    assert not errors


def test_ai_sessions_have_no_terminal_view(agent_server, project, phone):
    session = create_session(agent_server, project, "agent", tool="claude-code")
    page = phone("iPhone 13").new_page()
    page.goto(agent_server.url(f"session/{session['id']}"))
    expect(page.get_by_role("heading", name="agent")).to_be_visible()
    expect(page.get_by_role("button", name="Terminal view")).to_have_count(0)


@pytest.mark.parametrize("device", ["iPhone 13", "Pixel 7"])
def test_vim_edits_a_file(ui_server, project, phone, device):
    session = create_session(ui_server, project, "vim")
    page = open_terminal(ui_server, phone(device), session)
    type_line(page, "vim -u NONE notes.txt")
    wait_for(lambda: screen(ui_server, session["id"])["alternate"], timeout=15)
    expect(screen_rows(page)).to_contain_text("~")
    # The log view gets one line about it, not vim's redraws.
    logs = ui_server.api("GET", f"session/{session['id']}/logs?kind=shell&limit=1000").json()
    assert any("full screen" in e["text"] for e in logs["entries"] if e["source"] == "system")
    assert not any(re.search(r"^~$", e["text"], re.MULTILINE) for e in logs["entries"])
    focus_terminal(page)
    page.keyboard.press("i")
    page.keyboard.type("written on a phone")
    tap_key(page, "Escape")  # the key bar's Esc, as bytes to the PTY
    type_line(page, ":wq")
    wait_for(lambda: (project / "notes.txt").exists()
             and (project / "notes.txt").read_text() == "written on a phone\n", timeout=15)
    wait_for(lambda: not screen(ui_server, session["id"])["alternate"], timeout=15)
    assert_clean(page)


def test_tab_completion_and_history_at_the_prompt(ui_server, project, phone):
    (project / "quarterly-report-2031.txt").write_text("revenue up\n")
    session = create_session(ui_server, project, "readline")
    page = open_terminal(ui_server, phone("Pixel 7"), session)
    focus_terminal(page)
    page.keyboard.type("cat quarterly-rep")
    tap_key(page, "Tab")
    expect(screen_rows(page)).to_contain_text("cat quarterly-report-2031.txt")
    tap_key(page, "Enter")
    expect(screen_rows(page)).to_contain_text("revenue up")
    tap_key(page, "Up arrow")  # readline recalls the previous command
    tap_key(page, "Enter")
    wait_for(lambda: screen_rows(page).inner_text().count("revenue up") == 2, timeout=10)


def test_a_full_screen_program_is_one_screen(ui_server, project, phone):
    session = create_session(ui_server, project, "top")
    page = open_terminal(ui_server, phone("iPhone 13"), session)
    type_line(page, "top -d 0.3")
    expect(screen_rows(page)).to_contain_text("Tasks:")
    page.wait_for_timeout(1500)  # a few refreshes

    def one_screen() -> bool:
        current = screen(ui_server, session["id"])
        return (len(current["lines"]) == current["rows"] == rows_on_page(page)
                and sum(line.startswith("Tasks:") for line in current["lines"]) == 1
                and screen_rows(page).inner_text().count("Tasks:") == 1)

    wait_for(one_screen, timeout=10)
    focus_terminal(page)
    page.keyboard.press("q")
    type_line(page, "echo top-done")
    expect(screen_rows(page)).to_contain_text("top-done")


def test_the_size_follows_the_viewport(ui_server, project, phone):
    session = create_session(ui_server, project, "size")
    page = open_terminal(ui_server, phone("Pixel 7"), session)

    def sizes_agree() -> tuple[int, int] | None:
        current = screen(ui_server, session["id"])
        return (current["cols"], current["rows"]) if current["rows"] == rows_on_page(page) else None

    cols, rows = wait_for(sizes_agree, timeout=10)
    type_line(page, "stty size")
    expect(screen_rows(page)).to_contain_text(f"{rows} {cols}")

    page.set_viewport_size({"width": 300, "height": 500})  # a rotation, a keyboard, a split screen
    wait_for(lambda: (s := sizes_agree()) and s[0] < cols and s[1] < rows, timeout=10)
    smaller_cols, smaller_rows = sizes_agree()
    type_line(page, "clear; stty size")
    expect(screen_rows(page)).to_contain_text(f"{smaller_rows} {smaller_cols}")


def test_two_views_of_a_session_answer_a_programs_query_once(ui_server, project, phone):
    """xterm.js answers DA and cursor-position queries by itself: with two views open, the
    program read two answers. Only the view whose size is in force answers now."""
    session = create_session(ui_server, project, "two views")
    phone_page = open_terminal(ui_server, phone("iPhone 13"), session)
    desk_page = open_terminal(ui_server, phone("Pixel 7"), session)
    size = screen(ui_server, session["id"])["cols"]
    desk_page.set_viewport_size({"width": 320, "height": 560})  # its size is the one in force
    wait_for(lambda: screen(ui_server, session["id"])["cols"] != size, timeout=10)
    (project / "ask.py").write_text(
        "import os, select, sys, tty\n"
        "tty.setraw(0)\n"
        "os.write(1, b'\\x1b[c\\x1b[6n')\n"
        "answers = b''\n"
        "while select.select([0], [], [], 2)[0]:\n"
        "    answers += os.read(0, 100)\n"
        "print('answers', answers.count(b'c'), answers.count(b'R'), end='\\r\\n')\n")
    type_line(desk_page, f"clear; {sys.executable} ask.py")
    for page in (desk_page, phone_page):
        expect(screen_rows(page)).to_contain_text("answers 1 1", timeout=15000)


def stored_everywhere(server, page, session_id: str) -> str:
    """Everything the server and the browser keep about the session, as one string."""
    logs = server.api("GET", f"session/{session_id}/logs?kind=shell&limit=1000").text
    history = server.api("GET", f"history?sessionId={session_id}").text
    storage = page.evaluate("JSON.stringify(Object.entries(localStorage))")
    return "\n".join([logs, history, storage, page.locator("main").inner_text()])


def test_secret_input_in_the_log_view_is_never_kept(ui_server, project, phone):
    session = create_session(ui_server, project, "secret")
    page = open_session(ui_server, phone("iPhone 13"), session)
    run(page, "read -s -p 'Password: ' pw; echo; echo \"got ${#pw} chars\"")
    secret_box = page.get_by_label("Secret input")
    expect(secret_box).to_have_attribute("type", "password")
    expect(secret_box).to_be_focused()
    secret_box.fill(SECRET)
    secret_box.press("Enter")
    expect(page.locator("main.log")).to_contain_text(f"got {len(SECRET)} chars")
    expect(command_box(page)).to_be_visible()  # echo is back: a plain command box again
    wait_idle(ui_server, session["id"])
    page.reload()
    expect(page.locator("main.log")).to_contain_text(f"got {len(SECRET)} chars")
    assert SECRET not in stored_everywhere(ui_server, page, session["id"])
    command_box(page).focus()
    assert SECRET not in page.locator(".commandbar").inner_text()  # no recent-command chip


def test_secret_typed_in_the_terminal_view_is_never_kept(ui_server, project, phone):
    session = create_session(ui_server, project, "secret-term")
    page = open_terminal(ui_server, phone("Pixel 7"), session)
    type_line(page, "read -s -p 'Password: ' pw; echo; echo \"got ${#pw} chars\"")
    expect(screen_rows(page)).to_contain_text("Password:")
    type_line(page, SECRET)
    expect(screen_rows(page)).to_contain_text(f"got {len(SECRET)} chars")
    assert SECRET not in screen_rows(page).inner_text()
    page.get_by_role("button", name="Terminal view").click()  # back to the log view
    expect(page.locator("main.log")).to_contain_text(f"got {len(SECRET)} chars")
    assert SECRET not in stored_everywhere(ui_server, page, session["id"])


def test_key_taps_never_use_up_interrupt(make_server, project, phone):
    """With the normal POST quota (30 a minute): 40 key taps in 10 s, then Stop still works."""
    server = make_server("--token", str(uuid.uuid4()), "--interrupt-grace-s", "1")
    session = create_session(server, project, "keys")
    wait_idle(server, session["id"])
    page = open_terminal(server, phone("Pixel 7"), session)
    type_line(page, "sleep 100; echo slept-through")
    for _ in range(40):
        tap_key(page, "Down arrow")
        page.wait_for_timeout(200)
    page.get_by_role("button", name="Interrupt").click()
    type_line(page, "echo after-$((50+5))")
    expect(screen_rows(page)).to_contain_text("after-55", timeout=10000)
    assert "slept-through" not in screen_rows(page).inner_text()
    expect(page.get_by_role("alert").filter(has_text="Too many requests")).to_have_count(0)


def test_stop_is_not_queued_behind_keys_the_program_does_not_read(make_server, project, phone):
    """A paste into a program that reads nothing waits for room; Stop goes past it at once."""
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         "--interrupt-grace-s", "1")
    session = create_session(server, project, "stuck")
    wait_idle(server, session["id"])
    page = open_terminal(server, phone("Pixel 7"), session)
    # A program that reads nothing, in raw mode (so the terminal's input fills up).
    type_line(page, f"{shlex.quote(sys.executable)} -c 'import time, tty; tty.setraw(0); "
                    "print(\"raw\", flush=True); time.sleep(300)'")
    wait_for(lambda: "raw" in screen(server, session["id"])["lines"])
    focus_terminal(page)
    for _ in range(2):  # the first fills the terminal's input; the second waits for room
        page.keyboard.insert_text("y" * 9000)
    # Over the socket, Stop waited behind the second paste until it gave up (5 s).
    page.get_by_role("button", name="Interrupt").click()
    alerts = page.get_by_role("alert")
    expect(alerts.filter(has_text="Input dropped by Stop")).to_be_visible()
    expect(alerts.filter(has_text="not reading its input")).to_have_count(0)
    wait_idle(server, session["id"])


def test_a_reload_mid_top_paints_the_current_screen(ui_server, project, phone):
    session = create_session(ui_server, project, "reload")
    context = phone("iPhone 13")
    page = open_terminal(ui_server, context, session)
    type_line(page, "top -d 0.5")
    expect(screen_rows(page)).to_contain_text("Tasks:")
    screens: list[str] = []
    page.on("request", lambda request: screens.append(request.url)
            if request.url.endswith(f"/session/{session['id']}/screen") else None)
    page.reload()
    # Painted from GET screen at once, not from a replay of everything top ever drew.
    expect(screen_rows(page)).to_contain_text("Tasks:", timeout=5000)
    assert screens, "the terminal view did not ask for the screen"
    assert screen_rows(page).inner_text().count("Tasks:") == 1
    focus_terminal(page)
    page.keyboard.press("q")


def test_a_viewer_watches_the_terminal_view_without_keys(make_server, project, phone):
    viewer_token = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={"MAESTRO_VIEWER_TOKEN": viewer_token})
    session = create_session(server, project, "watched")
    wait_idle(server, session["id"])
    server.api("POST", f"session/{session['id']}/send", json={"command": "echo shown-$((3*3))"})
    page = phone("iPhone 13").new_page()
    page.goto(f"{server.base}/{viewer_token}/session/{session['id']}")
    page.get_by_role("button", name="Terminal view").click()
    expect(screen_rows(page)).to_contain_text("shown-9")
    expect(page.get_by_role("toolbar", name="Terminal keys")).to_have_count(0)
    expect(page.get_by_role("button", name="Interrupt")).to_have_count(0)
