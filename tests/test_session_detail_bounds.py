"""A session's detail holds only the newest of its logs (--detail-log-limit entries and
--detail-log-chars characters), so a session with a huge log opens as fast as a small one;
the rest is paged with GET session/<id>/logs."""

from __future__ import annotations

import uuid

from tests.conftest import wait_for
from tests.test_sessions_api import create


def bounded_server(make_server, entries: int, chars: int):
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit",
                       "--detail-log-limit", str(entries), "--detail-log-chars", str(chars))


def shell_log(server, sid: str) -> list[dict]:
    return server.api("GET", f"session/{sid}/logs?kind=shell&limit=1000").json()["entries"]


def run(server, sid: str, command: str) -> None:
    server.api("POST", f"session/{sid}/send", json={"command": command})
    wait_for(lambda: server.api("GET", f"session/{sid}").json()["session"]["state"] == "idle"
             and shell_log(server, sid)[-1]["source"] != "user")


def test_the_detail_holds_the_newest_entries_up_to_the_limit(make_server, project):
    server = bounded_server(make_server, 3, 10_000)
    sid = create(server, project)["id"]
    for n in range(4):
        run(server, sid, f"echo line-{n}")
    detail = server.api("GET", f"session/{sid}").json()["session"]
    assert detail["shellLogs"] == shell_log(server, sid)[-3:]
    assert detail["shellLogsHasMore"] is True


def test_the_detail_holds_no_more_text_than_the_budget_but_always_the_newest_entry(
        make_server, project):
    server = bounded_server(make_server, 50, 40)
    sid = create(server, project)["id"]
    for n in range(3):
        run(server, sid, f"echo short-{n}")
    detail = server.api("GET", f"session/{sid}").json()["session"]
    kept = detail["shellLogs"]
    assert kept == shell_log(server, sid)[-len(kept):] and 1 < len(kept) < 6
    assert sum(len(entry["text"]) for entry in kept) <= 40
    assert detail["shellLogsHasMore"] is True
    run(server, sid, "printf 'x%.0s' {1..100}; echo")  # one entry of 101 characters
    kept = server.api("GET", f"session/{sid}").json()["session"]["shellLogs"]
    assert kept == shell_log(server, sid)[-1:] and len(kept[0]["text"]) > 40


def test_a_short_log_is_whole_in_the_detail(server, project):
    sid = create(server, project)["id"]
    run(server, sid, "echo only")
    detail = server.api("GET", f"session/{sid}").json()["session"]
    assert detail["shellLogs"] == shell_log(server, sid)
    assert detail["shellLogsHasMore"] is False
