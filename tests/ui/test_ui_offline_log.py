"""An offline start shows the session's last output, marked as cached (issue 15, item 6)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import wait_for
from tests.ui.test_ui_polish import PHONES
from tests.ui.test_ui_terminal import SW_READY, create_session, open_session, run, run_to_end

expect = pytest.importorskip("playwright.sync_api").expect

# How many logs this browser keeps, and of which sessions (logcache.js's IndexedDB store).
CACHED_KEYS = """indexedDB.databases().then((dbs) => new Promise((resolve) => {
  const found = dbs.find((d) => d.name === 'maestro-log-cache');
  if (!found) { resolve([]); return; }
  const open = indexedDB.open(found.name);
  open.onsuccess = () => {
    const db = open.result;
    const all = db.transaction('logs').objectStore('logs').getAllKeys();
    all.onsuccess = () => { resolve(all.result); db.close(); };
  };
}))"""


@pytest.mark.parametrize("device", PHONES)
def test_reload_offline_shows_cached_output_until_the_socket_is_back(ui_server, project, phone,
                                                                     device):
    session = create_session(ui_server, project, "kept")
    context = phone(device)
    page = open_session(ui_server, context, session)
    assert page.evaluate(SW_READY), "the service worker did not install"
    run(page, "echo kept-$((6*7)); echo '<img src=x onerror=alert(1)>'")
    log = page.locator("main.log")
    expect(log).to_contain_text("kept-42")
    key = f"{session['id']}|shell"
    wait_for(lambda: key in page.evaluate(CACHED_KEYS), timeout=10)

    context.set_offline(True)
    page.reload()
    expect(page.get_by_role("status").filter(has_text="Cached copy")).to_be_visible()
    expect(log).to_contain_text("kept-42")
    expect(log).to_contain_text("<img src=x onerror=alert(1)>")  # text, never markup
    expect(log.locator("img")).to_have_count(0)

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
    assert owner.evaluate(CACHED_KEYS) == [f"{mine['id']}|shell"]
