"""Browser fixtures for the UI tests: Debian's Chromium driven by Python Playwright.

One browser per test module; each test gets fresh contexts (phone emulation) against a real
server from `make_server`. Screenshots go to docs/screenshots/ when MAESTRO_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from playwright import sync_api as playwright_api
except ImportError:  # pragma: no cover - without playwright the UI tests are skipped
    playwright_api = None

CHROMIUM = os.environ.get("MAESTRO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
EXPECT_TIMEOUT_MS = 15000

if playwright_api is None:
    SKIP_REASON = "playwright is not installed (pip install -r requirements-dev.txt)"
elif not shutil.which(CHROMIUM):
    SKIP_REASON = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
else:
    SKIP_REASON = ""
    playwright_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)

HERE = Path(__file__).resolve().parent
STAND_INS = HERE.parent / "agents"


def pytest_collection_modifyitems(config, items) -> None:
    if not SKIP_REASON:
        return
    if os.environ.get("CI"):  # CI installs Chromium: a skip there would hide a broken set-up
        raise pytest.UsageError(f"the UI tests cannot run: {SKIP_REASON}")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    with playwright_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright) -> Iterator:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def ui_server(make_server):
    """A server without rate limits and a short interrupt grace."""
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--interrupt-grace-s", "1")


@pytest.fixture
def agent_server(make_server):
    """A server whose agent CLIs are the stand-ins in tests/agents."""
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--interrupt-grace-s", "1",
                       env={"PATH": f"{STAND_INS}:{os.environ['PATH']}"})


@pytest.fixture
def phone(browser, playwright) -> Iterator:
    """Open pages in a phone context: phone("iPhone 13") or phone("Pixel 7")."""
    contexts = []

    def open_context(device: str = "iPhone 13", **overrides):
        options = {**playwright.devices[device], **overrides}
        context = browser.new_context(**options)
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    """Save a screenshot for the README when MAESTRO_SCREENSHOTS=1."""
    if os.environ.get("MAESTRO_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.fixture
def screenshot():
    return shot
