"""Web Push from the phone UI in headless Chromium, against the real server and a stand-in
push service on 127.0.0.1.

Headless Chromium has no push service of its own: `pushManager.subscribe()` answers
"AbortError: Registration failed - permission denied" even with notifications granted. So
the page's `subscribe()` is checked up to that call (it is made, with the server's key), and
stands in for the browser's push service from there: it returns a subscription whose
endpoint is our stand-in and whose keys the test holds. Everything else is real: the
settings sheet, the server's subscription API, the presence messages, the encrypted push,
and the service worker showing a push (delivered through the DevTools protocol)."""

from __future__ import annotations

import json
import uuid

import pytest
from playwright.sync_api import expect

from tests.conftest import wait_for
from tests.push_service import Browser, b64url
from tests.test_push import kept, run, subscribe
from tests.test_sessions_api import create
from tests.test_terminal_sessions import ready_session

# Stands in for the browser's push service: records subscribe()'s options and hands back
# window.__pushStandIn (set by the test) as the PushSubscription.
FAKE_PUSH_SERVICE = """
window.__pushCalls = [];
let current = null;
PushManager.prototype.getSubscription = async function () { return current; };
PushManager.prototype.subscribe = async function (options) {
  window.__pushCalls.push(Array.from(new Uint8Array(options.applicationServerKey)));
  const json = window.__pushStandIn;
  current = { endpoint: json.endpoint, toJSON: () => json,
              unsubscribe: async () => { current = null; window.__pushUnsubscribed = true;
                                         return true; } };
  return current;
};
"""
SW_READY = "navigator.serviceWorker.ready.then(() => true)"


@pytest.fixture
def push_server(make_server):
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--interrupt-grace-s", "1", "--push-allow-loopback-http")


def until(page, expression: str, polls: int = 300):
    """The value of `expression` in the page once it is truthy, polled from outside (the
    app's CSP forbids the eval that page.wait_for_function would need)."""
    for _ in range(polls):
        value = page.evaluate(expression)
        if value:
            return value
        page.wait_for_timeout(50)
    raise AssertionError(f"never true: {expression}")


def open_app(phone, server, path: str = ""):
    context = phone("Pixel 7")
    context.grant_permissions(["notifications"], origin=server.base)
    page = context.new_page()
    page.goto(server.url(path))
    until(page, "window.maestro && window.maestro.state.conn.status === 'open'")
    return page


def test_the_settings_sheet_subscribes_with_the_chosen_categories_and_unsubscribes(
        phone, push_server, push_service, project):
    browser = Browser(push_service)
    context = phone("Pixel 7")
    context.grant_permissions(["notifications"], origin=push_server.base)
    context.add_init_script(FAKE_PUSH_SERVICE)
    page = context.new_page()
    page.goto(push_server.url())
    page.evaluate(f"window.__pushStandIn = {json.dumps(browser.subscription())}")
    page.get_by_role("button", name="Settings").click()
    toggle = page.locator("[data-push-toggle]")
    expect(toggle).not_to_be_checked()
    toggle.click()
    expect(toggle).to_be_checked()
    (kept_one,) = wait_for(lambda: kept(push_server))
    assert kept_one["categories"] == ["needs_input", "finished", "failed"]
    key = push_server.api("GET", "push/key").json()["publicKey"]
    (call,) = page.evaluate("window.__pushCalls")
    assert b64url(bytes(call)) == key  # subscribed with the server's VAPID key
    page.locator("[data-push-category=finished]").uncheck()
    wait_for(lambda: kept(push_server)[0]["categories"] == ["needs_input", "failed"])
    sid = ready_session(push_server, project)
    run(push_server, sid, "true")  # finished: turned off
    run(push_server, sid, "false")
    assert browser.decrypt(push_service.next())["category"] == "failed"
    toggle.click()
    expect(toggle).not_to_be_checked()
    wait_for(lambda: kept(push_server) == [])
    assert page.evaluate("window.__pushUnsubscribed") is True


def test_without_a_push_service_the_sheet_says_why_and_the_page_notifies_instead(
        phone, push_server):
    page = open_app(phone, push_server)
    assert page.evaluate(SW_READY)
    page.get_by_role("button", name="Settings").click()
    toggle = page.locator("[data-push-toggle]")
    toggle.click()
    expect(page.get_by_text("The browser's push service refused")).to_be_visible()
    expect(page.get_by_text("No push here: you are notified while this page is open")
           ).to_be_visible()
    expect(toggle).to_be_checked()  # this page's own notifications
    assert kept(push_server) == []
    assert page.evaluate("JSON.parse(localStorage.getItem('maestro.notify'))") is True
    toggle.click()
    expect(toggle).not_to_be_checked()


def test_the_page_tells_the_server_which_session_it_shows(phone, push_server, push_service,
                                                          project):
    browser = Browser(push_service)
    subscribe(push_server, browser)
    sid = ready_session(push_server, project)
    page = open_app(phone, push_server, f"session/{sid}")
    until(page, f"window.maestro.state.presence?.sessionId === '{sid}' "
                "&& window.maestro.state.presence.visible")
    run(push_server, sid, "false")  # shown in the foreground: no push
    page.get_by_role("button", name="Back to sessions").click()  # to the dashboard
    until(page, "window.maestro.state.presence?.sessionId === null")
    run(push_server, sid, "true")
    assert browser.decrypt(push_service.next())["category"] == "finished"


def test_the_service_worker_shows_a_push_for_its_session(phone, push_server, project):
    sid = create(push_server, project, name="nightly")["id"]
    page = open_app(phone, push_server)
    assert page.evaluate(SW_READY)
    cdp = page.context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    scope = f"{push_server.base}/"  # the page was paired: the app lives at the root
    for _ in range(300):  # the events arrive while Playwright runs: let it, a little at a time
        ours = [r for r in registrations if r["scopeURL"] == scope and not r["isDeleted"]]
        if ours:
            break
        page.wait_for_timeout(50)
    payload = {"title": "nightly", "body": "Failed (exit 1): make", "category": "failed",
               "sessionId": sid, "url": f"session/{sid}"}
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": push_server.base, "registrationId": ours[0]["registrationId"],
        "data": json.dumps(payload)})
    shown = until(page, """navigator.serviceWorker.ready
        .then((reg) => reg.getNotifications())
        .then((list) => list.map((n) => ({title: n.title, body: n.body, tag: n.tag,
                                          url: n.data.url})))""")
    assert shown == [{"title": "nightly", "body": "Failed (exit 1): make",
                      "tag": f"maestro-{sid}", "url": f"{push_server.base}/session/{sid}"}]
    # Tapping it: the worker's notificationclick handler, given the notification it showed (a
    # script-made event: its waitUntil() throws, but the handler has run by then).
    (worker,) = page.context.service_workers
    worker.evaluate("""self.registration.getNotifications().then(([notification]) => {
        try { self.dispatchEvent(new NotificationEvent('notificationclick', {notification})); }
        catch (err) { /* waitUntil() of an untrusted event */ } })""")
    page.wait_for_url(f"{push_server.base}/session/{sid}")
    until(page, f"window.maestro.state.route.id === '{sid}'")
