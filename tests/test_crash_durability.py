"""kill -9 at any moment loses nothing a client saw: every entry it received is stored, in
order, after the restart, and seq never goes back (persist-then-publish, reserved seqs)."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import websocket

from tests.conftest import wait_for
from tests.test_terminal_sessions import ready_session, send
from tests.wsclient import LiveClient, ServerClosed

FLOOD = "for i in $(seq 1 200000); do echo durable-$i; done"


def stored_shell_entries(server, sid: str) -> list[dict]:
    """Every shell log entry of the session, oldest first, through the paging API."""
    entries: list[dict] = []
    after = 0
    while True:
        page = server.api("GET", f"session/{sid}/logs?kind=shell&after={after}&limit=1000").json()
        entries += page["entries"]
        if not page["entries"] or not page["hasMore"]:
            return entries
        after = page["entries"][-1]["id"]


def watch_until_killed(client: LiveClient, seen: list[dict]) -> None:
    """Record every event the client receives until its server dies."""
    try:
        while True:
            seen.append(client.next(timeout=30))
    except (ServerClosed, OSError, websocket.WebSocketException):
        return


@pytest.mark.parametrize(("script", "kill_after_s"), [
    ("run.py", 0.3), ("run.py", 1.0), ("run.py", 2.5), ("wsgi.py", 1.0)])
def test_what_a_client_saw_survives_a_kill_9_in_order(make_server, project, tmp_path, script,
                                                      kill_after_s):
    data = tmp_path / "data"
    first = make_server("--no-rate-limit", script=script, data_dir=data)
    sid = ready_session(first, project)
    client = LiveClient(first, session_id=sid)
    seen: list[dict] = []
    watcher = threading.Thread(target=watch_until_killed, args=(client, seen), daemon=True)
    watcher.start()
    send(first, sid, FLOOD)
    # The flood's own output, not just the command's echo (entry 1): a loaded machine may
    # take longer than kill_after_s to start it.
    wait_for(lambda: any(m.get("type") == "session:output" and m["entry"]["source"] == "stdout"
                         for m in seen))
    time.sleep(kill_after_s)
    first.stop(signal.SIGKILL)
    watcher.join(timeout=30)
    outputs = [m["entry"] for m in seen if m.get("type") == "session:output"]
    assert len(outputs) >= 2, "the client saw too little to check"
    highest_seq = max(m["seq"] for m in seen if "seq" in m)

    second = make_server("--no-rate-limit", script=script, data_dir=data)
    stored = {entry["id"]: entry for entry in stored_shell_entries(second, sid)}
    missing = [entry["id"] for entry in outputs if entry["id"] not in stored]
    assert not missing, f"{len(missing)} entries the client saw were lost"
    assert all(stored[entry["id"]]["text"] == entry["text"] for entry in outputs)
    order = [entry["id"] for entry in outputs]
    assert order == sorted(order)
    fresh = LiveClient(second)
    assert fresh.init["seq"] > highest_seq
    fresh.close()
