"""The log view with big output: it keeps only a window of the log in the DOM (and a bounded
part in memory), follows a flood without falling behind, and pages back through all of it."""

from __future__ import annotations

import re

import pytest

from tests.ui.test_ui_terminal import create_session, open_session, run, run_to_end, wait_idle

expect = pytest.importorskip("playwright.sync_api").expect

LINES = 200000  # ~1.3 MB: more than the log view keeps in the DOM or in memory
HELD_CHARS_MAX = 700000  # what the log view keeps in memory while it follows the tail
DOM_CHARS_MAX = 100000  # the window's cap (static/js/log-window.js), an entry, blocks around

NUMBERS = re.compile(r"^\d+$", re.MULTILINE)
TO_TOP = "el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }"
TO_BOTTOM = "el => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')); }"


def wait_for_line(page, line: str, timeout: int = 30000) -> None:
    """Wait for a line of output (without printing a megabyte of log when it fails)."""
    page.wait_for_function(
        "line => document.querySelector('main.log').innerText.split('\\n').includes(line)",
        arg=line, timeout=timeout)


def numbers_shown(log) -> list[int]:
    return [int(n) for n in NUMBERS.findall(log.inner_text())]


def dom_chars(log) -> int:
    return log.evaluate("el => el.textContent.length")


def assert_contiguous(numbers: list[int]) -> None:
    assert numbers, "no output shown"
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a gap or a duplicate"


@pytest.mark.parametrize("device", ["iPhone 13", "Pixel 7"])
def test_a_flood_keeps_a_window_and_pages_back_to_the_start(ui_server, project, phone, device):
    session = create_session(ui_server, project, "flood")
    page = open_session(ui_server, phone(device), session)
    log = page.locator("main.log")
    run(page, f"seq 1 {LINES}")
    wait_for_line(page, str(LINES))
    wait_idle(ui_server, session["id"])
    assert dom_chars(log) < DOM_CHARS_MAX
    tail = numbers_shown(log)
    assert tail[-1] == LINES
    assert_contiguous(tail)
    held = page.evaluate("[...window.maestro.state.logs.values()][0].entries"
                         ".reduce((chars, entry) => chars + entry.text.length, 0)")
    assert held < HELD_CHARS_MAX

    # Scroll back to the first line: the window moves up; what memory let go is fetched again.
    for _ in range(200):
        log.evaluate(TO_TOP)
        page.wait_for_timeout(60)
        assert dom_chars(log) < DOM_CHARS_MAX
        if page.locator(".msg-user").count() and numbers_shown(log)[:1] == [1]:
            break
    shown = numbers_shown(log)
    assert shown[0] == 1
    assert_contiguous(shown)
    assert page.locator(".msg-user").first.inner_text().endswith(f"seq 1 {LINES}")

    # And down again to the end, then new output is followed.
    for _ in range(200):
        log.evaluate(TO_BOTTOM)
        page.wait_for_timeout(60)
        if numbers_shown(log)[-1:] == [LINES]:
            break
    assert_contiguous(numbers_shown(log))
    log.evaluate(TO_BOTTOM)
    run(page, "echo after-the-flood")
    expect(page.locator("pre.term").last).to_have_text("after-the-flood")
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 60


def test_opening_a_long_log_renders_only_its_tail(ui_server, project, phone):
    session = create_session(ui_server, project, "long")
    wait_idle(ui_server, session["id"])
    run_to_end(ui_server, session["id"], f"seq 1 {LINES}")
    page = open_session(ui_server, phone("Pixel 7"), session)
    log = page.locator("main.log")
    wait_for_line(page, str(LINES))
    assert dom_chars(log) < DOM_CHARS_MAX
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 60
    assert_contiguous(numbers_shown(log))
