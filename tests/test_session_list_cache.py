"""`GET sessions` is served from JSON kept until the bus publishes (app/sessions/public_list.py):
every change a client can see must publish, or the list would go stale.

Each check keeps the list warm (read over and over) while the change happens and compares it
with the session's detail, which is built fresh for every request: the moment the detail
shows the change, the list read right after it must show it too. (The cache is also rebuilt
after a second whatever happens; the reads here are milliseconds apart, so a change that did
not publish would show as a stale list.)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.test_agents import agents, prompt, tab_of  # noqa: F401 - the fixture
from tests.test_sessions_api import create

LOG_KEYS = ("aiLogs", "shellLogs", "aiLogsTabId", "aiLogsHasMore", "shellLogsHasMore")
Check = Callable[[dict], bool]


def listed(server, sid: str) -> dict | None:
    sessions = server.api("GET", "sessions").json()["sessions"]
    return next((item for item in sessions if item["id"] == sid), None)


def fresh(server, sid: str) -> dict | None:
    response = server.api("GET", f"session/{sid}")
    if response.status_code == 404:
        return None
    return {k: v for k, v in response.json()["session"].items() if k not in LOG_KEYS}


def list_follows(server, sid: str, shows: Check, timeout: float = 20) -> dict:
    """Wait until the fresh detail `shows` the change, reading the list all along; then the
    list, read at once, must show it too. Returns that list item."""
    deadline = time.monotonic() + timeout
    while True:
        listed(server, sid)  # the kept JSON is at most a few ms old from here on
        now = fresh(server, sid)
        if now is not None and shows(now):
            break
        assert time.monotonic() < deadline, f"the change never showed: {now}"
        time.sleep(0.02)
    item = listed(server, sid)
    assert item is not None and shows(item), f"stale list: {item}\nfresh: {now}"
    return item


def change_and_follow(server, sid: str, change: Callable[[], object], shows: Check) -> dict:
    listed(server, sid)
    change()
    return list_follows(server, sid, shows)


def test_the_list_follows_renames_groups_mode_and_live(server, project):
    sid = create(server, project, name="before")["id"]
    change_and_follow(server, sid, lambda: server.api(
        "PATCH", f"session/{sid}", json={"name": "after", "groupName": "ops"}),
        lambda s: s["name"] == "after" and s["groupName"] == "ops")
    change_and_follow(server, sid, lambda: server.api("POST", f"session/{sid}/offline"),
                      lambda s: s["isLive"] is False and "liveEnabledAt" not in s)
    change_and_follow(server, sid, lambda: server.api("POST", f"session/{sid}/live"),
                      lambda s: s["isLive"] is True and s["liveEnabledAt"])
    change_and_follow(server, sid, lambda: server.api(
        "PATCH", f"session/{sid}", json={"inputMode": "ai"}),
        lambda s: s["inputMode"] == "ai")


def test_the_list_follows_tabs_being_added_renamed_starred_selected_and_closed(server,
                                                                               project):
    sid = create(server, project)["id"]
    tab = {}

    def new_tab() -> None:
        tab.update(server.api("POST", f"session/{sid}/tabs", json={"name": "two"}).json()[
            "tab"])

    change_and_follow(server, sid, new_tab, lambda s: len(s["aiTabs"]) == 2)
    change_and_follow(server, sid, lambda: server.api(
        "PATCH", f"session/{sid}/tabs/{tab['id']}", json={"name": "renamed", "starred": True}),
        lambda s: tab_of(s, tab["id"])["name"] == "renamed" and tab_of(s, tab["id"])["starred"])
    first = fresh(server, sid)["aiTabs"][0]["id"]
    change_and_follow(server, sid, lambda: server.api(
        "POST", f"session/{sid}/tabs/{first}/select"), lambda s: s["activeTabId"] == first)
    change_and_follow(server, sid, lambda: server.api(
        "DELETE", f"session/{sid}/tabs/{tab['id']}"), lambda s: len(s["aiTabs"]) == 1)


def test_the_list_follows_commands_their_output_folder_and_echo(server, project, tmp_path):
    sid = create(server, project)["id"]
    list_follows(server, sid, lambda s: s["state"] == "idle")
    before = fresh(server, sid)["lastOutputAt"]
    item = change_and_follow(server, sid, lambda: server.api(
        "POST", f"session/{sid}/send", json={"command": f"cd {tmp_path} && echo list-marker"}),
        lambda s: s["state"] == "idle" and (s["lastResponse"] or {}).get("text", "").endswith(
            "list-marker"))
    assert item["shellCwd"] == str(tmp_path) and item["lastOutputAt"] != before
    change_and_follow(server, sid, lambda: server.api(
        "POST", f"session/{sid}/send", json={"command": "read -s secret"}),
        lambda s: s["echo"] is False)
    change_and_follow(server, sid, lambda: server.api(
        "POST", f"session/{sid}/send", json={"command": "hunter2"}),
        lambda s: s["echo"] is True and s["state"] == "idle")


def test_the_list_follows_sessions_being_added_and_deleted(server, project):
    sid = create(server, project)["id"]
    assert listed(server, sid) is not None
    other = create(server, project, name="second")["id"]
    assert listed(server, other) is not None  # read right after the create, no waiting
    server.api("DELETE", f"session/{sid}")
    assert listed(server, sid) is None


def test_the_list_follows_agent_turns_usage_queue_and_unread(agents, project):  # noqa: F811
    sid = create(agents, project, toolType="claude-code")["id"]
    change_and_follow(agents, sid, lambda: prompt(agents, sid, "slow first"),
                      lambda s: s["state"] != "idle" and s["thinkingStartTime"])
    list_follows(agents, sid, lambda s: tab_of(s)["state"] != "idle")
    change_and_follow(agents, sid, lambda: prompt(agents, sid, "second"),
                      lambda s: [q["text"] for q in tab_of(s)["queuedPrompts"]] == ["second"])
    item = list_follows(agents, sid, lambda s: s["state"] == "idle" and s["usageStats"]
                        and s["usageStats"]["outputTokens"] == 80)
    assert tab_of(item)["queuedPrompts"] == [] and item["thinkingStartTime"] is None
    assert item["lastResponse"]["text"].startswith("Echo: second")
    first = item["activeTabId"]
    second = agents.api("POST", f"session/{sid}/tabs", json={}).json()["tab"]["id"]
    agents.api("POST", f"session/{sid}/tabs/{first}/select")
    prompt(agents, sid, "in the background", tabId=second)
    list_follows(agents, sid, lambda s: tab_of(s, second)["hasUnread"] is True
                 and tab_of(s, second)["agentSessionId"])
