"""The phone UI through nginx and Caddy with docs/deploy/'s files, at
https://maestro.example.com:<port>/maestro/ as a phone would open it: the page loads, pairs,
registers its service worker and connects its WebSocket, all under the sub-path."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app import tls
from tests.proxy import PROXIES, PUBLIC_NAME, behind_proxy, proxy_kinds
from tests.ui.conftest import ARGS, CHROMIUM, EXPECT_TIMEOUT_MS
from tests.ui.test_ui_secure_context import SW_READY

SW_SCOPE = "navigator.serviceWorker.getRegistration().then((r) => r ? r.scope : null)"


@pytest.mark.parametrize("kind", proxy_kinds())
def test_dashboard_loads_pairs_and_connects_its_websocket_under_the_sub_path(
        make_server, playwright, tmp_path, kind) -> None:
    site = behind_proxy(PROXIES[kind], make_server, tmp_path / kind, "--trusted-proxies", "1",
                        "--no-rate-limit")
    browser = None
    try:
        args = [*ARGS, f"--host-resolver-rules=MAP {PUBLIC_NAME} 127.0.0.1",
                "--ignore-certificate-errors-spki-list="
                + tls.spki_sha256_base64(site.proxy.certs.cert)]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args,
                                             headless=True)
        page = browser.new_context(**playwright.devices["Pixel 7"]).new_page()
        page.set_default_timeout(EXPECT_TIMEOUT_MS)
        sockets = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        page.goto(site.public)
        home = f"https://{site.host}/maestro/"
        expect(page).to_have_url(home)  # paired: the token left the address bar
        page.wait_for_function("() => window.maestro && window.maestro.state.role === 'owner'")
        # Open means its `init` arrived: the handshake went through nginx's upgrade.
        page.wait_for_function("() => window.maestro.state.conn.status === 'open'")
        expect(page.locator(".conn-banner")).to_have_count(0)
        assert sockets and all(url.startswith(f"wss://{site.host}/maestro/ws")
                               for url in sockets), sockets
        assert page.evaluate(SW_READY), "the service worker did not install"
        assert page.evaluate(SW_SCOPE) == home
        assert site.server.token not in page.content()
    finally:
        if browser is not None:
            browser.close()
        site.proxy.stop()
