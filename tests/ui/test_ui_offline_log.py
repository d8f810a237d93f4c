"""An offline start shows the session's last output, marked as cached (issue 15, item 6)."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.conftest import wait_for
from tests.ui.test_ui_polish import PHONES, slug
from tests.ui.test_ui_terminal import SW_READY, create_session, open_session, run, run_to_end

expect = pytest.importorskip("playwright.sync_api").expect

# The logs this browser keeps (logcache.js's IndexedDB store): record key
# "<cacheId>|<session id>|<log>" → the text of its entries.
CACHED_LOGS = """indexedDB.databases().then((dbs) => new Promise((resolve) => {
  const found = dbs.find((d) => d.name === 'maestro-log-cache');
  if (!found) { resolve({}); return; }
  const open = indexedDB.open(found.name);
  open.onsuccess = () => {
    const db = open.result;
    const all = db.transaction('logs').objectStore('logs').getAll();
    all.onsuccess = () => {
      const text = (r) => r.entries.map((e) => e.text).join('\\n');
      resolve(Object.fromEntries(all.result.map((r) => [r.key, text(r)])));
      db.close();
    };
  };
}))"""
CACHED_KEYS = f"{CACHED_LOGS}.then(Object.keys)"


def cached_key(server, log: str, viewer: str | None = None) -> str:
    """The record key of a log kept for the owner's token (or a viewer token)."""
    path = f"{server.base}/{viewer}/api/whoami" if viewer else None
    whoami = (requests.get(path, timeout=30) if path else server.api("GET", "whoami")).json()
    return f"{whoami['cacheId']}|{log}"


@pytest.mark.parametrize("device", PHONES)
def test_reload_offline_shows_cached_output_until_the_socket_is_back(ui_server, project, phone,
                                                                     device, screenshot):
    session = create_session(ui_server, project, "kept")
    context = phone(device)
    page = open_session(ui_server, context, session)
    assert page.evaluate(SW_READY), "the service worker did not install"
    run(page, "echo kept-$((6*7)); echo '<img src=x onerror=alert(1)>'")
    log = page.locator("main.log")
    expect(log).to_contain_text("kept-42")
    key = cached_key(ui_server, f"{session['id']}|shell")
    # Saved (a second after the last change): what the offline reload will show.
    wait_for(lambda: "kept-42" in page.evaluate(CACHED_LOGS).get(key, ""), timeout=10)

    context.set_offline(True)
    page.reload()
    expect(page.get_by_role("status").filter(has_text="Cached copy")).to_be_visible()
    expect(log).to_contain_text("kept-42")
    expect(log).to_contain_text("<img src=x onerror=alert(1)>")  # text, never markup
    expect(log.locator("img")).to_have_count(0)
    screenshot(page, f"offline-cached-{slug(device)}")

    context.set_offline(False)
    expect(page.get_by_role("status", name="Connection: Connected")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Cached copy")).to_have_count(0)
    expect(log).to_contain_text("kept-42")

    # Deleting the session forgets its cached log.
    response = ui_server.api("DELETE", f"session/{session['id']}")
    assert response.status_code == 200, response.text
    wait_for(lambda: key not in page.evaluate(CACHED_KEYS), timeout=10)


def test_a_view_only_link_keeps_no_cached_copy(make_server, project, phone):
    viewer_token = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={"MAESTRO_VIEWER_TOKEN": viewer_token})
    watched = create_session(server, project, "watched")
    mine = create_session(server, project, "mine")
    for s in (watched, mine):
        run_to_end(server, s["id"], "echo seen-$((40+2))")
    context = phone("Pixel 7")
    watcher = context.new_page()
    watcher.goto(f"{server.base}/{viewer_token}/session/{watched['id']}")
    expect(watcher.get_by_role("note")).to_contain_text("View only")
    expect(watcher.locator("main.log")).to_contain_text("seen-42")

    # The owner's page in the same browser, opened later, gets its copy; the viewer's none.
    owner = open_session(server, context, mine)
    expect(owner.locator("main.log")).to_contain_text("seen-42")
    wait_for(lambda: owner.evaluate(CACHED_KEYS), timeout=10)
    assert owner.evaluate(CACHED_KEYS) == [cached_key(server, f"{mine['id']}|shell")]


def offline_load_finds_no_copy(context, page, url: str | None = None) -> None:
    """Offline, reload (or load `url`): the log's load fails and no cached copy stands in."""
    context.set_offline(True)
    page.goto(url) if url else page.reload()
    # Said once the log's load failed and the browser's copies were looked at.
    expect(page.get_by_role("status").filter(has_text="Output not loaded")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Cached copy")).to_have_count(0)
    expect(page.locator("main.log")).not_to_contain_text("kept-42")
    context.set_offline(False)


def test_a_view_only_link_never_reads_the_owners_copy(make_server, project, phone):
    viewer_token = str(uuid.uuid4())
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                         env={"MAESTRO_VIEWER_TOKEN": viewer_token})
    session = create_session(server, project, "kept")
    run_to_end(server, session["id"], "echo kept-$((6*7))")
    context = phone("iPhone 13")
    owner = open_session(server, context, session)
    assert owner.evaluate(SW_READY), "the service worker did not install"
    expect(owner.locator("main.log")).to_contain_text("kept-42")
    mine = cached_key(server, f"{session['id']}|shell")
    wait_for(lambda: owner.evaluate(CACHED_KEYS) == [mine], timeout=10)
    owner.close()

    # The same browser opens a view-only link to the same session: this browser is a viewer
    # now (its pairing cookie says so); offline, the owner's copy is not shown to it.
    watcher = context.new_page()
    watcher.goto(f"{server.base}/{viewer_token}/session/{session['id']}")
    expect(watcher.get_by_role("note")).to_contain_text("View only")
    expect(watcher.locator("main.log")).to_contain_text("kept-42")
    offline_load_finds_no_copy(context, watcher)
    assert watcher.evaluate(CACHED_KEYS) == [mine]  # kept for the owner, and nothing of its own


def test_a_new_token_drops_the_copies_kept_for_the_old_one(make_server, project, phone,
                                                           tmp_path):
    data = tmp_path / "kept"
    first = make_server("--persistent-token", "--no-rate-limit", data_dir=data)
    session = create_session(first, project, "kept")
    run_to_end(first, session["id"], "echo kept-$((6*7))")
    context = phone("Pixel 7")
    page = open_session(first, context, session)
    old = cached_key(first, f"{session['id']}|shell")
    wait_for(lambda: page.evaluate(CACHED_KEYS) == [old], timeout=10)
    first.stop()

    # Same address, same sessions, a new token: once paired again, the old copy is gone.
    rotated = make_server("--rotate-token", "--no-rate-limit", data_dir=data,
                          port=str(first.port))
    assert rotated.token != first.token and rotated.port == first.port
    page.goto(rotated.url(f"session/{session['id']}"))
    new = cached_key(rotated, f"{session['id']}|shell")
    assert new != old
    wait_for(lambda: page.evaluate(CACHED_KEYS) == [new], timeout=15)


def test_forget_cached_logs_in_settings_empties_the_cache(ui_server, project, phone):
    session = create_session(ui_server, project, "kept")
    run_to_end(ui_server, session["id"], "echo kept-$((6*7))")
    context = phone("iPhone 13")
    page = open_session(ui_server, context, session)
    assert page.evaluate(SW_READY), "the service worker did not install"
    wait_for(lambda: page.evaluate(CACHED_KEYS), timeout=10)
    page.get_by_role("button", name="Back to sessions").click()
    page.get_by_role("button", name="Settings").click()
    page.get_by_role("button", name="Forget cached logs").click()
    expect(page.locator(".toast").filter(has_text="Cached logs forgotten")).to_be_visible()
    assert page.evaluate(CACHED_KEYS) == []
    # The session's page (the paired address, as a home-screen icon opens it), offline.
    offline_load_finds_no_copy(context, page, f"{ui_server.base}/session/{session['id']}")
