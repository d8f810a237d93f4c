"""The phone UI against the real server, in headless Chromium (iPhone 13 / Pixel 7 emulation)."""

from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_for

expect = pytest.importorskip("playwright.sync_api").expect
MODULES = Path(__file__).resolve().parents[2] / "static" / "js"
PlaywrightTimeout = pytest.importorskip("playwright.sync_api").TimeoutError


def create_session(server, cwd, name="build", tool="terminal") -> dict:
    body = {"name": name, "cwd": str(cwd), "toolType": tool}
    response = server.api("POST", "sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["session"]


def wait_idle(server, session_id, timeout=20) -> None:
    def idle() -> bool:
        return server.api("GET", f"session/{session_id}").json()["session"]["state"] == "idle"

    wait_for(idle, timeout=timeout)


def run_to_end(server, session_id, command: str) -> None:
    """Run a command over the API and wait until its history entry is there."""
    def finished() -> int:
        return server.api("GET", f"history?sessionId={session_id}").json()["count"]

    before = finished()
    response = server.api("POST", f"session/{session_id}/send", json={"command": command})
    assert response.status_code == 200, response.text
    wait_for(lambda: finished() > before, timeout=20)


def open_session(server, context, session: dict):
    """A new page on the session's view, once it shows the session idle."""
    page = context.new_page()
    page.goto(server.url(f"session/{session['id']}"))
    expect(page.locator(".session-top .state-idle")).to_be_visible()
    return page


def command_box(page):
    return page.get_by_role("textbox", name="Command")


def run(page, command: str) -> None:
    command_box(page).fill(command)
    page.get_by_role("button", name="Send", exact=True).click()


def terminal_text(page) -> str:
    return page.locator("main.log").inner_text()


def test_dashboard_new_session_and_echo(ui_server, project, phone, screenshot):
    page = phone("iPhone 13").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(ui_server.url(""))  # the printed Local: URL
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    expect(page.get_by_text("No sessions yet.")).to_be_visible()

    page.get_by_role("button", name="New session").click()
    dialog = page.get_by_role("dialog", name="New session")
    dialog.get_by_label("Name").fill("build")
    dialog.get_by_label("Folder", exact=True).fill(str(project))
    dialog.get_by_label("Agent").select_option("terminal")
    screenshot(page, "new-session-iphone13")
    dialog.get_by_role("button", name="Create session").click()

    expect(page).to_have_url(re.compile(r"/session/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name="build")).to_be_visible()
    expect(page.locator(".session-top .state-idle")).to_be_visible()
    box = command_box(page)
    assert float(box.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) >= 16

    run(page, "printf '\\033[32mgreen\\033[0m\\n'; echo hello")
    expect(page.locator("main.log")).to_contain_text("hello")
    expect(page.locator("pre.term .ansi-green-fg")).to_have_text("green")
    expect(page.locator(".msg-user").last).to_contain_text("echo hello")
    expect(box).to_have_value("")
    (project / "check.sh").write_text(
        "printf '\\033[1mRunning 3 suites\\033[0m\\n'\n"
        "printf '\\033[32m✓\\033[0m api      42 passed  \\033[2m(1.2s)\\033[0m\\n'\n"
        "printf '\\033[32m✓\\033[0m worker   17 passed  \\033[2m(0.8s)\\033[0m\\n'\n"
        "printf '\\033[33m!\\033[0m web       9 passed, \\033[33m1 skipped\\033[0m\\n'\n"
        "printf '\\n\\033[1;32mAll green\\033[0m in 3.1s\\n'\n")
    run(page, "bash check.sh")
    expect(page.locator("main.log")).to_contain_text("All green")
    screenshot(page, "session-terminal-iphone13")

    # Back on the dashboard: the card shows state, folder, live badge and the last response.
    page.get_by_role("button", name="Back to sessions").click()
    card = page.locator(".card").first
    expect(card).to_contain_text("build")
    expect(card).to_contain_text("Idle")
    expect(card).to_contain_text("Remote control on")
    expect(card.locator(".preview")).to_contain_text("All green")
    screenshot(page, "dashboard-iphone13")
    assert not errors


def test_interrupt_long_command_from_red_button(ui_server, project, phone):
    session = create_session(ui_server, project, "long")
    page = open_session(ui_server, phone("Pixel 7"), session)
    run(page, "echo started; sleep 60; echo never")
    expect(page.locator("main.log")).to_contain_text("started")
    stop = page.get_by_role("button", name="Interrupt")
    expect(stop).to_be_visible()
    assert stop.evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
    stop.click()
    expect(page.locator(".msg-system").last).to_contain_text("Interrupted (SIGINT)")
    expect(page.locator(".session-top .state-idle")).to_be_visible()
    expect(stop).to_be_hidden()
    assert "never" not in page.locator("pre.term").inner_text()


def test_key_bar_and_waiting_for_input(ui_server, project, phone, screenshot):
    session = create_session(ui_server, project, "ask")
    page = open_session(ui_server, phone("iPhone 13"), session)
    run(page, "read -p 'Name? ' who; echo \"hi $who\"")
    expect(page.locator(".session-top .state-waiting_input")).to_be_visible()
    expect(page.get_by_text("Waiting for your input")).to_be_visible()
    expect(command_box(page)).to_be_focused()
    screenshot(page, "session-waiting-iphone13")
    run(page, "Ada")
    expect(page.locator("main.log")).to_contain_text("hi Ada")
    # Ctrl-C from the key bar stops a running program.
    run(page, "sleep 60")
    expect(page.locator(".session-top .state-busy")).to_be_visible()
    toolbar = page.get_by_role("toolbar", name="Terminal keys")
    for name in ("Escape", "Tab", "Shift+Tab", "Control C", "Control D", "Up arrow", "Enter"):
        expect(toolbar.get_by_role("button", name=name, exact=True)).to_be_visible()
    toolbar.get_by_role("button", name="Control C").click()
    expect(page.locator(".session-top .state-idle")).to_be_visible()


def test_key_bar_taps_go_over_the_socket_and_never_spend_the_post_quota(make_server, project,
                                                                        phone):
    server = make_server("--token", str(uuid.uuid4()), "--rate-limit-post", "3")
    session = create_session(server, project, "keys")  # one POST of three
    wait_idle(server, session["id"])
    page = open_session(server, phone("iPhone 13"), session)
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url)
            if request.method == "POST" else None)
    run(page, "cat -v")  # a second POST (over the socket)
    expect(page.locator(".session-top .state-waiting_input")).to_be_visible()
    toolbar = page.get_by_role("toolbar", name="Terminal keys")
    for _ in range(15):  # 30 taps: ten times what is left of the POST quota
        toolbar.get_by_role("button", name="Escape", exact=True).click()
        toolbar.get_by_role("button", name="Up arrow", exact=True).click()
    toolbar.get_by_role("button", name="Enter", exact=True).click()
    expect(page.locator("main.log")).to_contain_text("^[^[[A" * 15)  # cat -v shows each key
    run(page, "still-accepted")  # the third POST: the taps left the quota alone
    expect(page.locator("main.log")).to_contain_text("still-accepted")
    expect(page.get_by_role("alert")).to_have_count(0)
    assert posted == []  # no REST call: keys and commands went over the socket
    toolbar.get_by_role("button", name="Control C").click()
    expect(page.locator(".session-top .state-idle")).to_be_visible()


SW_READY = """Promise.race([navigator.serviceWorker.ready.then(() => true),
                          new Promise((resolve) => setTimeout(() => resolve(false), 10000))])"""


def test_offline_queue_sends_in_order(ui_server, project, phone):
    session = create_session(ui_server, project, "flaky")
    context = phone("Pixel 7")
    page = context.new_page()
    page.goto(ui_server.url(f"session/{session['id']}"))
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    expect(page.locator(".session-top .state-idle")).to_be_visible()
    assert page.evaluate(SW_READY), "the service worker did not install"

    context.set_offline(True)
    expect(page.get_by_test_id("conn-banner")).to_contain_text("offline")
    run(page, "echo first-$((20+1))")
    run(page, "echo second-$((20+2))")
    banner = page.get_by_test_id("queue-banner")
    expect(banner).to_contain_text("2 queued")
    # The queue survives a reload while offline: the service worker serves the cached shell
    # and the queue is in localStorage.
    assert len(page.evaluate("JSON.parse(localStorage.getItem('maestro.queue'))")) == 2
    page.reload()
    expect(banner).to_contain_text("2 queued")

    context.set_offline(False)
    expect(page.locator("main.log")).to_contain_text("second-22")
    expect(banner).to_be_hidden()
    text = terminal_text(page)
    assert text.index("first-21") < text.index("second-22")
    # The output reaches the page before the second command's history entry is written:
    # wait for both entries, then check their order.
    def entries() -> list[dict]:
        return ui_server.api("GET", f"history?sessionId={session['id']}").json()["entries"]

    history = wait_for(lambda: (found := entries()) and len(found) >= 2 and found, timeout=20)
    assert [e["summary"] for e in reversed(history)] == ["echo first-$((20+1))",
                                                          "echo second-$((20+2))"]


def test_offline_queue_cancel(ui_server, project, phone):
    session = create_session(ui_server, project, "cancel")
    context = phone("iPhone 13")
    page = context.new_page()
    page.goto(ui_server.url(f"session/{session['id']}"))
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    context.set_offline(True)
    run(page, "echo should-not-run")
    page.get_by_role("button", name="Cancel all queued commands").click()
    expect(page.get_by_test_id("queue-banner")).to_be_hidden()
    context.set_offline(False)
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    page.wait_for_timeout(500)
    assert ui_server.api("GET", f"history?sessionId={session['id']}").json()["count"] == 0


def test_theme_change_repaints_live(ui_server, project, phone, screenshot):
    create_session(ui_server, project, "themed")
    page = phone("iPhone 13").new_page()
    page.goto(ui_server.url(""))
    expect(page.locator(".card")).to_have_count(1)
    dark = ui_server.api("GET", "theme").json()["theme"]
    assert page.evaluate(BODY_BG) == rgb(dark["colors"]["bgMain"])

    light = ui_server.api("PUT", "theme", json={"id": "github-light"}).json()["theme"]
    expect(page.locator("html")).to_have_attribute("data-theme", "github-light")
    assert page.evaluate(BODY_BG) == rgb(light["colors"]["bgMain"])
    assert page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    ) == light["colors"]["accent"]
    screenshot(page, "dashboard-light-iphone13")

    # The picker in settings changes it too.
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("radio", name="Nord").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "nord")
    screenshot(page, "settings-themes-iphone13")
    assert ui_server.api("GET", "theme").json()["theme"]["id"] == "nord"


BODY_BG = "getComputedStyle(document.body).backgroundColor"


def rgb(hex_colour: str) -> str:
    value = hex_colour.lstrip("#")
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def test_reload_mid_stream_no_duplicates_or_gaps(ui_server, project, phone):
    session = create_session(ui_server, project, "stream")
    page = open_session(ui_server, phone("Pixel 7"), session)
    run(page, "for i in $(seq 1 80); do echo line-$i; sleep 0.05; done")
    expect(page.locator("main.log")).to_contain_text("line-10")
    page.reload()
    expect(page.locator("main.log")).to_contain_text("line-80", timeout=20000)
    wait_idle(ui_server, session["id"])
    lines = [line for line in terminal_text(page).splitlines() if line.startswith("line-")]
    assert lines == [f"line-{i}" for i in range(1, 81)]
    ids = page.eval_on_selector_all("[data-entry-id]", "els => els.map(e => e.dataset.entryId)")
    assert len(ids) == len(set(ids))


def test_narrow_screen_and_accessible_names(ui_server, project, phone):
    session = create_session(ui_server, project, "a-rather-long-session-name-that-must-not-wrap")
    run_to_end(ui_server, session["id"], "printf 'x%.0s' $(seq 1 300); echo")
    page = phone("iPhone 13", viewport={"width": 320, "height": 640}).new_page()
    for path in ("", f"session/{session['id']}"):
        page.goto(ui_server.url(path))
        expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
        page.wait_for_timeout(300)
        width = page.evaluate("Math.max(document.documentElement.scrollWidth,"
                              " document.body.scrollWidth)")
        assert width <= 320, f"{path or 'dashboard'} scrolls horizontally ({width}px)"
        unnamed = page.evaluate("""() => [
                ...document.querySelectorAll('button, a, input, textarea, select')]
            .filter(el => el.offsetParent !== null)
            .filter(el => !(el.getAttribute('aria-label') || el.innerText.trim()
                            || el.labels?.length || el.getAttribute('placeholder')))
            .map(el => el.outerHTML.slice(0, 80))""")
        assert unnamed == []
        assert page.locator("main").count() == 1
        assert page.locator("header").count() >= 1


def test_pwa_files(ui_server, phone):
    manifest = requests.get(ui_server.url("manifest.json"), timeout=10)
    assert manifest.status_code == 200
    data = manifest.json()
    assert data["start_url"] == "./" and data["display"] == "standalone"
    sizes = {icon["sizes"] for icon in data["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in data["icons"]:
        assert requests.get(ui_server.url(icon["src"]), timeout=10).status_code == 200
    sw = requests.get(ui_server.url("sw.js"), timeout=10)
    assert sw.status_code == 200 and "javascript" in sw.headers["Content-Type"]
    assert "api/" in sw.text  # the never-cache rule
    # No token, no UI.
    assert requests.get(f"{ui_server.base}/static/css/app.css", allow_redirects=False,
                        timeout=10).status_code == 302

    page = phone("Pixel 7").new_page()
    page.goto(ui_server.url(""))
    assert page.evaluate(SW_READY), "the service worker did not install"
    scope = page.evaluate("navigator.serviceWorker.getRegistration().then(r => r.scope)")
    assert scope == ui_server.base + "/"  # the page traded the token for a cookie
    cached = page.evaluate("""async () => {
        const keys = [];
        for (const name of await caches.keys()) {
            for (const req of await (await caches.open(name)).keys()) keys.push(req.url);
        }
        return keys;
    }""")
    # Every module of the UI, or the page cannot start offline.
    assert {m.name for m in MODULES.glob("*.js")} <= {
        url.rsplit("/", 1)[1] for url in cached if "/static/js/" in url}
    assert not any("/api/" in url or url.endswith("/ws") for url in cached)


def test_dashboard_groups_search_and_card_actions(ui_server, project, phone, screenshot):
    for name, group in [("api", "Backend"), ("worker", "Backend"), ("web", "Frontend"),
                        ("docs", None), ("infra", "Backend"), ("mobile", "Frontend")]:
        body = {"name": name, "cwd": str(project), "toolType": "terminal"}
        if group:
            body["groupName"] = group
        assert ui_server.api("POST", "sessions", json=body).status_code == 201
    api_id = next(s["id"] for s in ui_server.api("GET", "sessions").json()["sessions"]
                  if s["name"] == "api")
    run_to_end(ui_server, api_id, "echo 'tests passed: 42'")
    page = phone("Pixel 7").new_page()
    page.goto(ui_server.url(""))
    expect(page.locator(".card")).to_have_count(6)
    expect(page.get_by_role("region", name="Backend").locator(".card")).to_have_count(3)
    expect(page.get_by_role("region", name="Frontend").locator(".card")).to_have_count(2)
    for label in ("Idle",):
        expect(page.locator(".card .state-label").first).to_have_text(label)
    screenshot(page, "dashboard-pixel7")

    search = page.get_by_role("searchbox", name="Search sessions")
    search.fill("front")
    expect(page.locator(".card")).to_have_count(2)
    search.fill("")

    # Rename, take offline, delete with confirmation — each from the card's action sheet.
    page.get_by_role("button", name="Actions for docs").click()
    page.get_by_role("button", name="Rename").click()
    page.get_by_role("dialog").get_by_label("Name").fill("handbook")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.locator(".card", has_text="handbook")).to_have_count(1)

    page.get_by_role("button", name="Actions for handbook").click()
    page.get_by_role("button", name="Turn remote control off").click()
    badge = page.locator(".card", has_text="handbook").locator(".badge")
    expect(badge).to_have_text("Remote control off")

    page.get_by_role("button", name="Actions for handbook").click()
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("dialog", name="Delete session?")).to_be_visible()
    screenshot(page, "delete-confirm-pixel7")
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator(".card")).to_have_count(5)
    assert all(s["name"] != "handbook" for s in ui_server.api("GET", "sessions").json()["sessions"])


def test_history_panel_filter_search_expand(ui_server, project, phone, screenshot):
    first = create_session(ui_server, project, "alpha")
    second = create_session(ui_server, project, "beta")
    wait_idle(ui_server, first["id"])
    wait_idle(ui_server, second["id"])
    for sid, command in [(first["id"], "echo apples"), (second["id"], "echo bananas"),
                         (first["id"], "false")]:
        run_to_end(ui_server, sid, command)
    page = phone("iPhone 13").new_page()
    page.goto(ui_server.url(""))
    page.get_by_role("button", name="History").click()
    dialog = page.get_by_role("dialog", name="History")
    expect(dialog.locator(".history-entry")).to_have_count(3)
    dialog.get_by_label("Filter by session").select_option(label="beta")
    expect(dialog.locator(".history-entry")).to_have_count(1)
    dialog.get_by_label("Filter by session").select_option(label="All sessions")
    expect(dialog.locator(".history-entry")).to_have_count(3)
    dialog.get_by_role("searchbox", name="Search history").fill("apples")
    expect(dialog.locator(".history-entry")).to_have_count(1)
    entry = dialog.locator(".history-entry").first
    entry.locator("summary").click()
    # The expanded entry shows the command's output as the server recorded it.
    recorded = next(e["fullResponse"] for e in ui_server.api("GET", "history").json()["entries"]
                    if e["summary"] == "echo apples")
    expect(entry.locator("pre")).to_have_text(recorded.strip() or "(no output)")
    screenshot(page, "history-iphone13")


def test_recent_chips_command_history_and_draft(ui_server, project, phone):
    session = create_session(ui_server, project, "drafts")
    page = open_session(ui_server, phone("iPhone 13"), session)
    run(page, "echo chip-one")
    expect(page.locator("main.log")).to_contain_text("chip-one")
    # A draft survives a reload: what was typed is never lost.
    command_box(page).fill("echo unsent draft")
    page.reload()
    expect(command_box(page)).to_have_value("echo unsent draft")
    command_box(page).fill("")
    command_box(page).focus()
    chip = page.get_by_role("button", name="echo chip-one")
    expect(chip).to_be_visible()
    chip.click()
    expect(command_box(page)).to_have_value("echo chip-one")
    page.get_by_role("button", name="Command history").click()
    expect(page.get_by_role("dialog", name="Command history")).to_contain_text("echo chip-one")


def test_reconnect_countdown_and_refetch_after_restart(ui_server, project, phone):
    session = create_session(ui_server, project, "restart")
    wait_idle(ui_server, session["id"])
    run_to_end(ui_server, session["id"], "echo before-restart")
    page = phone("Pixel 7").new_page()
    page.goto(ui_server.url(f"session/{session['id']}"))
    expect(page.locator("main.log")).to_contain_text("before-restart")

    port = ui_server.port
    ui_server.stop()
    banner = page.get_by_test_id("conn-banner")
    expect(banner).to_contain_text(re.compile(r"Attempt \d+ of 10"))
    expect(banner.get_by_role("button", name="Retry now")).to_be_visible()

    ui_server.start(["--port", str(port)])  # same token, same data: the session comes back
    assert ui_server.port == port
    wait_idle(ui_server, session["id"])
    run_to_end(ui_server, session["id"], "echo after-restart")
    retry = banner.get_by_role("button", name="Retry now")
    with contextlib.suppress(PlaywrightTimeout):  # its own next attempt may come first
        retry.click(timeout=3000)
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    expect(banner).to_be_hidden()
    # The replay buffer did not survive the restart (resumed: false): the log is fetched again.
    expect(page.locator("main.log")).to_contain_text("after-restart")
    assert page.locator("main.log").inner_text().count("before-restart") == 2  # command + output


def test_tail_first_older_pages_and_jump_to_latest(ui_server, project, phone):
    session = create_session(ui_server, project, "pages")
    wait_idle(ui_server, session["id"])
    run_to_end(ui_server, session["id"], "for i in $(seq 1 40); do echo row-$i; sleep 0.07; done")
    context = phone("iPhone 13")
    context.add_init_script("localStorage.setItem('maestro.pageSize', '10')")
    page = context.new_page()
    page.goto(ui_server.url(f"session/{session['id']}"))
    log = page.locator("main.log")
    expect(log).to_contain_text("row-40")
    assert "row-1\n" not in log.inner_text()  # tail first: only the newest page
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 60

    for _ in range(10):  # scroll up: older pages load until the first line is there
        log.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        page.wait_for_timeout(150)
        if "row-1\n" in log.inner_text():
            break
    lines = [line for line in log.inner_text().splitlines() if line.startswith("row-")]
    assert lines == [f"row-{i}" for i in range(1, 41)]

    # Scrolled up, new output does not move the view; a button offers the latest.
    page.wait_for_timeout(300)
    log.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    page.wait_for_timeout(100)
    ui_server.api("POST", f"session/{session['id']}/send", json={"command": "echo fresh"})
    jump = page.get_by_role("button", name=re.compile("Jump to latest"))
    expect(jump).to_be_visible()
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") > 200
    jump.click()
    expect(jump).to_be_hidden()
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 60


def fill_post_quota(server) -> None:
    """Leave the POST quota spent in a window that has just begun (the whole window to go):
    what the page sends next is refused, however slow the machine. A refused request is
    not counted; `POST sessions {}` is, and creates nothing (400)."""
    def spend() -> int:
        return server.api("POST", "sessions", json={}).status_code

    wait_for(lambda: spend() == 429, timeout=30)  # the current window, full
    wait_for(lambda: spend() != 429, timeout=30)  # ... until it ends: the first of a new one
    assert spend() == 400  # and the last of its quota of 2


def test_rate_limited_commands_wait_and_are_sent(make_server, project, phone):
    server = make_server("--token", str(uuid.uuid4()), "--rate-limit-post", "2",
                         "--rate-limit-window-ms", "10000")
    session = create_session(server, project, "limited")
    wait_idle(server, session["id"])
    page = open_session(server, phone("Pixel 7"), session)
    fill_post_quota(server)
    run(page, "echo one")  # over the quota: the server says when to retry
    run(page, "echo two")
    expect(page.get_by_role("alert").filter(has_text="try again in")).to_be_visible()
    expect(page.locator("main.log")).to_contain_text("two", timeout=40000)
    expect(page.locator("main.log")).to_contain_text("one")
    expect(page.get_by_test_id("queue-banner")).to_be_hidden()


def test_notification_when_a_background_session_finishes(ui_server, project, phone):
    session = create_session(ui_server, project, "notify")
    wait_idle(ui_server, session["id"])
    context = phone("Pixel 7")
    context.grant_permissions(["notifications"])
    page = context.new_page()
    page.goto(ui_server.url(""))
    expect(page.locator(".card")).to_have_count(1)
    page.get_by_role("button", name="Settings").click()
    # Headless Chromium has no push service: the page's own notifications stand in.
    page.get_by_role("switch").click()
    expect(page.get_by_role("switch")).to_be_checked()
    page.evaluate("""() => {
        window.shown = [];
        const record = (title, options) => { window.shown.push({title, url: options.data.url}); };
        ServiceWorkerRegistration.prototype.showNotification = async (t, o) => record(t, o);
        window.Notification = class extends Notification {
            constructor(t, o) { super(t, o); record(t, o); } };
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
    }""")
    run_to_end(ui_server, session["id"], "sleep 0.5")
    shown = wait_for(lambda: page.evaluate("window.shown"), timeout=10)
    assert shown[0]["title"] == "notify"
    assert shown[0]["url"] == f"{ui_server.base}/session/{session['id']}"
