"""The phone UI over HTTPS with our local CA (--tls self-signed), reached by the machine's name
as a phone on the LAN would: a secure context, the service worker registers, the token leaves
the address bar for a cookie; over plain HTTP the settings sheet says what that costs."""

from __future__ import annotations

import socket
import uuid

import pytest
from playwright.sync_api import expect

from app import tls
from tests.ui.conftest import ARGS, CHROMIUM, EXPECT_TIMEOUT_MS

NAME = socket.gethostname().lower()  # in our certificate, and a Host we serve
SW_READY = """Promise.race([navigator.serviceWorker.ready.then(() => true),
                          new Promise((resolve) => setTimeout(() => resolve(false), 10000))])"""


@pytest.fixture
def name_browser(playwright):
    """Launch Chromium with NAME resolving to 127.0.0.1 (not loopback by name: only TLS can
    make its pages secure), trusting the certificate whose file is given."""
    browsers = []

    def launch(trusted_cert: str | None = None):
        args = [*ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"]
        if trusted_cert is not None:
            args.append("--ignore-certificate-errors-spki-list="
                        + tls.spki_sha256_base64(trusted_cert))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        browsers.append(browser)
        context = browser.new_context(**playwright.devices["Pixel 7"])
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        return context.new_page()

    yield launch
    for browser in browsers:
        browser.close()


@pytest.mark.parametrize("script", ["run.py", "wsgi.py"])
def test_https_gives_a_secure_context_a_service_worker_and_a_cookie(make_server, name_browser,
                                                                    tmp_path, script):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--tls",
                         "self-signed", script=script)
    page = name_browser(str(tmp_path / "data" / "tls" / "server.crt"))
    page.goto(f"https://{NAME}:{server.port}/{server.token}/")
    expect(page).to_have_url(f"https://{NAME}:{server.port}/")  # the token is gone
    assert page.evaluate("window.isSecureContext") is True
    assert page.evaluate(SW_READY), "the service worker did not install"
    # The cookie alone: the API (role) and the live socket (connected).
    page.wait_for_function("window.maestro && window.maestro.state.role === 'owner'")
    expect(page.locator(".conn-banner")).to_have_count(0)
    page.get_by_role("button", name="Settings").click()
    expect(page.locator("[data-secure-context=yes]")).to_be_visible()
    assert server.token not in page.content()


def test_plain_http_says_what_is_lost_and_the_flag_that_fixes_it(make_server, name_browser):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit")
    page = name_browser()
    page.goto(f"http://{NAME}:{server.port}/{server.token}/")
    assert page.evaluate("window.isSecureContext") is False
    # Browsers send no Sec-Fetch-* to plain-http pages: nothing tells a same-site load from a
    # link on another site (after which the Strict cookie would not come back), so the token
    # stays in the URL, as before.
    assert page.url == f"http://{NAME}:{server.port}/{server.token}/"
    page.get_by_role("button", name="Settings").click()
    note = page.locator("[data-secure-context=no]")
    expect(note).to_contain_text("offline start")
    expect(note).to_contain_text("notifications")
    expect(note).to_contain_text("--tls self-signed")
