"""The WebSocket of live updates, against both servers: run.py (werkzeug) and wsgi.py (waitress)."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid

import pytest
import requests
import websocket

from tests.conftest import wait_for
from tests.test_auth import raw_handshake
from tests.test_sessions_api import create
from tests.test_terminal_sessions import ready_session, send, shell_text
from tests.wsclient import LiveClient, ServerClosed

SCRIPTS = ["run.py", "wsgi.py"]


@pytest.fixture(params=SCRIPTS)
def script(request) -> str:
    """Which server to test: run.py's (werkzeug) or wsgi.py's (waitress)."""
    return request.param


@pytest.fixture
def live_server(make_server, script):
    return make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--interrupt-grace-s",
                       "1", script=script)


def test_init_describes_sessions_theme_and_seq(live_server, project):
    sid = create(live_server, project, name="seen")["id"]
    client = LiveClient(live_server)
    init = client.init
    assert init["clientId"] and init["subscribedSessionId"] is None
    assert [s["id"] for s in init["sessions"]] == [sid]
    assert init["theme"]["id"] == "dracula"
    assert isinstance(init["seq"], int) and init["resumed"] is False
    client.close()


def test_a_command_publishes_its_events_in_order(live_server, project):
    client = LiveClient(live_server)
    sid = create(live_server, project)["id"]
    client.wait_for(lambda m: m["type"] == "session:state" and m["state"] == "idle")
    send(live_server, sid, "echo ordered")
    history = client.wait_for(lambda m: m["type"] == "history:added")
    client.wait_for(lambda m: m["type"] == "session:state" and m["state"] == "idle"
                    and m["previousState"] == "busy")
    events = client.events()
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = [(e["type"], e.get("state") or (e.get("entry") or {}).get("source")) for e in events]
    assert kinds[0] == ("session:added", None)
    start = kinds.index(("session:output", "user"))
    ordered = [kinds.index(("session:state", "busy")),
               kinds.index(("session:output", "stdout")),
               kinds.index(("session:exit", None)),
               kinds.index(("history:added", None))]
    assert start < ordered[1] and ordered == sorted(ordered)
    exit_event = client.events("session:exit")[0]
    assert exit_event["exitCode"] == 0 and exit_event["signal"] is None
    assert exit_event["sessionId"] == sid and exit_event["tabId"] is None
    assert history["entry"]["summary"] == "echo ordered"
    output = client.events("session:output")
    assert "".join(e["entry"]["text"] for e in output if e["entry"]["source"] == "stdout") \
        == "ordered\n"
    state = client.events("session:state")[-1]
    assert {"sessionId", "state", "previousState", "name", "toolType", "inputMode",
            "cwd"} <= set(state)
    client.close()


def test_list_tab_live_and_theme_changes_reach_every_client(live_server, project):
    watcher = LiveClient(live_server)
    session = create(live_server, project, toolType="aider")
    sid = session["id"]
    watcher.wait_for(lambda m: m["type"] == "session:added" and m["session"]["id"] == sid)
    scoped = LiveClient(live_server, session_id=sid)
    tab = live_server.api("POST", f"session/{sid}/tabs", json={"name": "t2"}).json()["tab"]
    for client in (watcher, scoped):
        change = client.wait_for(lambda m: m["type"] == "tabs:change")
        assert change["activeTabId"] == tab["id"] and len(change["aiTabs"]) == 2
    live_server.api("PATCH", f"session/{sid}", json={"groupName": "Ops", "name": "renamed"})
    for client in (watcher, scoped):
        state = client.wait_for(lambda m: m["type"] == "session:state" and m["sessionId"] == sid)
        assert state["name"] == "renamed" and state["groupName"] == "Ops"
    live_server.api("POST", f"session/{sid}/offline")
    live_server.api("POST", f"session/{sid}/live")
    live_server.api("PUT", "theme", json={"id": "github-light"})
    live_server.api("DELETE", f"session/{sid}")
    for client in (watcher, scoped):
        client.wait_for(lambda m: m["type"] == "session:offline" and m["sessionId"] == sid)
        live = client.wait_for(lambda m: m["type"] == "session:live")
        assert live["sessionId"] == sid and isinstance(live["enabledAt"], int)
        assert "agentSessionId" in live
        theme = client.wait_for(lambda m: m["type"] == "theme:change")
        assert theme["theme"]["id"] == "github-light" and theme["theme"]["mode"] == "light"
        client.wait_for(lambda m: m["type"] == "session:removed" and m["sessionId"] == sid)


def test_scoped_clients_get_only_their_sessions_output(live_server, project):
    one = ready_session(live_server, project, name="one")
    two = ready_session(live_server, project, name="two")
    scoped = LiveClient(live_server, session_id=one)
    dashboard = LiveClient(live_server)
    send(live_server, two, "echo from-two")
    send(live_server, one, "echo from-one")
    def finished(messages: list[dict]) -> set[str]:
        return {m["entry"]["sessionId"] for m in messages if m["type"] == "history:added"}

    scoped.wait_until(lambda messages: finished(messages) == {one, two})
    dashboard.wait_until(lambda messages: finished(messages) == {one, two})
    assert {e["sessionId"] for e in scoped.events("session:output", "session:exit")} == {one}
    assert {e["sessionId"] for e in dashboard.events("session:output")} == {one, two}
    # subscribe re-scopes an open socket
    missing = scoped.request({"type": "subscribe", "sessionId": "nope"}, "subscribed")
    assert missing["success"] is False and missing["statusCode"] == 404
    reply = scoped.request({"type": "subscribe", "sessionId": two}, "subscribed")
    assert reply["sessionId"] == two
    send(live_server, two, "echo again")
    scoped.wait_for(lambda m: m["type"] == "session:exit" and m["sessionId"] == two)


def test_client_messages_get_their_replies(live_server, project):
    sid = ready_session(live_server, project)
    client = LiveClient(live_server)
    assert client.request({"type": "ping"}, "pong")["type"] == "pong"
    listed = client.request({"type": "get_sessions"}, "sessions_list")
    assert [s["id"] for s in listed["sessions"]] == [sid]
    result = client.request({"type": "send_command", "sessionId": sid, "command": "sleep 30",
                             "requestId": "r1"}, "command_result")
    assert result["success"] is True and result["requestId"] == "r1"
    client.wait_until(lambda ms: any(m["type"] == "session:state" and m["state"] == "busy"
                                     for m in ms))
    stopped = client.request({"type": "interrupt", "sessionId": sid}, "interrupt_result")
    assert stopped["success"] is True and stopped["stoppedBy"] == "SIGINT"
    client.wait_until(lambda ms: any(m["type"] == "session:exit" for m in ms))
    exit_event = client.events("session:exit")[0]
    assert exit_event["exitCode"] == 130 and exit_event["signal"] == "SIGINT"
    switched = client.request({"type": "switch_mode", "sessionId": sid, "mode": "ai"},
                              "mode_switch_result")
    assert switched["success"] is True and switched["mode"] == "ai"
    made = client.request({"type": "new_tab", "sessionId": sid, "name": "second"},
                          "new_tab_result")
    tab_id = made["tab"]["id"]
    renamed = client.request({"type": "rename_tab", "sessionId": sid, "tabId": tab_id,
                              "name": "renamed"}, "rename_tab_result")
    assert renamed["tab"]["name"] == "renamed"
    first = listed["sessions"][0]["aiTabs"][0]["id"]
    selected = client.request({"type": "select_tab", "sessionId": sid, "tabId": first},
                              "select_tab_result")
    assert selected["success"] is True
    closed = client.request({"type": "close_tab", "sessionId": sid, "tabId": tab_id},
                            "close_tab_result")
    assert closed["success"] is True
    refused = client.request({"type": "close_tab", "sessionId": sid, "tabId": first},
                             "close_tab_result")
    assert refused["success"] is False and refused["statusCode"] == 409
    missing = client.request({"type": "send_command", "sessionId": str(uuid.uuid4()),
                              "command": "ls"}, "command_result")
    assert missing["success"] is False and "not found" in missing["error"]


def test_bad_messages_get_errors_and_the_socket_stays_open(live_server):
    client = LiveClient(live_server)
    client.ws.send("{not json")
    assert client.wait_for(lambda m: m["type"] == "error")["message"] == "Invalid message format"
    client.send({"type": "teleport"})
    error = client.wait_for(lambda m: m["type"] == "error")
    assert "teleport" in error["message"]
    client.ws.send("[1, 2]")
    assert client.wait_for(lambda m: m["type"] == "error")["message"] == "Invalid message format"
    client.ws.send("[" * 100_000 + "]" * 100_000)
    assert client.wait_for(lambda m: m["type"] == "error")["message"] == "Invalid message format"
    assert client.request({"type": "ping"}, "pong")


def test_websocket_actions_draw_on_the_post_quota(make_server, script, project):
    server = make_server("--rate-limit-post", "3", "--rate-limit-get", "100", script=script)
    sid = ready_session(server, project)  # POST 1
    client = LiveClient(server)
    for n in range(2):  # POST 2 and 3
        reply = client.request({"type": "send_command", "sessionId": sid,
                                "command": f": {n}"}, "command_result")
        assert reply["success"] is True
    limited = client.request({"type": "send_command", "sessionId": sid, "command": ": no"},
                             "error")
    assert limited["code"] == "rate_limited" and limited["retryAfter"] >= 1
    assert client.request({"type": "ping"}, "pong")  # not an action: still answered
    assert server.api("POST", f"session/{sid}/send", json={"command": ": no"}).status_code == 429
    # Stop never waits for the POST quota: interrupts draw on the key budget.
    assert server.api("POST", f"session/{sid}/interrupt").status_code == 200


def test_resume_replays_missed_events_without_gap_or_duplicate(live_server, project):
    sid = ready_session(live_server, project)
    first = LiveClient(live_server)
    last_seen = first.init["seq"]
    first.close()
    send(live_server, sid, "echo while-away")
    wait_for(lambda: "while-away" in shell_text(live_server, sid))
    wait_for(lambda: live_server.api("GET", f"history?sessionId={sid}").json()["count"])
    resumed = LiveClient(live_server, since=last_seen)
    assert resumed.init["resumed"] is True
    resumed.wait_for(lambda m: m["type"] == "history:added")
    seqs = [e["seq"] for e in resumed.events()]
    assert seqs[0] == last_seen + 1 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    resumed.close()
    stale = LiveClient(live_server, since=1)
    assert stale.init["resumed"] is False
    stale.close()


def test_slow_client_is_closed_and_others_keep_up(make_server, script, project):
    # A queue roomy enough for a reader on a loaded machine, small against the flood.
    server = make_server("--no-rate-limit", "--client-queue-size", "200", script=script)
    sid = ready_session(server, project)
    slow = LiveClient(server, session_id=sid,
                      sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))  # never reads
    fast = LiveClient(server, session_id=sid)
    lines = 3_000_000  # about 23 MB, 1,400 entries: more than socket buffers and queue hold
    send(server, sid, f"seq 1 {lines}")
    # A reader may still fall behind a flood the server produces faster than it reads: it
    # is closed with 1013 like any other, resumes with `since`, and so misses nothing.
    entries: dict[int, str] = {}
    for _ in range(50):
        try:
            fast.wait_for(lambda m: m["type"] == "session:exit", timeout=120)
            break
        except ServerClosed as closed:
            assert closed.code == 1013
        finally:
            entries.update((e["entry"]["id"], e["entry"]["text"])
                           for e in fast.events("session:output")
                           if e["entry"]["source"] == "stdout")
        seen = fast.events()
        fast = LiveClient(server, session_id=sid,
                          since=seen[-1]["seq"] if seen else fast.init["seq"])
        assert fast.init["resumed"] is True
    text = "".join(entries[entry_id] for entry_id in sorted(entries))
    assert text.endswith(f"\n{lines}\n") and text.count("\n") == lines
    assert fast.request({"type": "ping"}, "pong")
    with pytest.raises(ServerClosed) as closed:
        for _ in range(100_000):  # what the server managed to send, then the end
            slow.next(timeout=10)
    # 1013 when the close frame got through; no code when the server had to cut the line
    assert closed.value.code in (1013, None)
    assert len(slow.events("session:output")) < len(entries)


def test_many_clients_each_receive_every_event(live_server, project):
    sid = ready_session(live_server, project)
    clients = [LiveClient(live_server) for _ in range(50)]
    send(live_server, sid, "seq 1 200")
    expected = "".join(f"{n}\n" for n in range(1, 201))
    for client in clients:
        client.wait_for(lambda m: m["type"] == "history:added", timeout=60)
        text = "".join(e["entry"]["text"] for e in client.events("session:output")
                       if e["entry"]["source"] == "stdout")
        assert text == expected
    for client in clients:
        client.close()


def _server_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


def test_connect_close_cycles_leak_no_threads_or_fds(live_server):
    pid = live_server.process.pid

    def server_fds() -> int:
        return len(os.listdir(f"/proc/{pid}/fd"))

    for _ in range(20):  # warm up pools
        LiveClient(live_server).close()
    wait_for(lambda: live_server.api("GET", "sessions").ok)
    threads, fds = _server_threads(pid), server_fds()
    for _ in range(200):
        LiveClient(live_server).close()
    wait_for(lambda: _server_threads(pid) <= threads + 2 and server_fds() <= fds + 2,
             timeout=30)
    assert requests.get(live_server.base + "/health", timeout=10).status_code == 200


def test_open_clients_hold_no_thread_each(live_server):
    # One loop serves every socket and a small shared pool their messages: 60 connected
    # clients that each had a message answered add far fewer than 60 threads.
    pid = live_server.process.pid
    first = LiveClient(live_server)
    assert first.request({"type": "ping"}, "pong")
    threads = _server_threads(pid)
    clients = [LiveClient(live_server) for _ in range(60)]
    for client in clients:
        assert client.request({"type": "ping"}, "pong")
    wait_for(lambda: _server_threads(pid) <= threads + 20, timeout=30)
    for client in [first, *clients]:
        client.close()


def test_oversized_messages_close_the_socket(make_server, script):
    server = make_server("--no-rate-limit", "--max-ws-message-bytes", "1024", script=script)
    client = LiveClient(server)
    assert client.request({"type": "ping", "pad": "x" * 500}, "pong")
    client.send({"type": "ping", "pad": "x" * 5000})
    with pytest.raises(ServerClosed) as closed:
        for _ in range(10):
            client.next(timeout=10)
    assert closed.value.code == 1009
    assert LiveClient(server).request({"type": "ping"}, "pong")  # the server carries on


def _burst(client: LiveClient, count: int) -> None:
    """`count` pings in one write, faster than any server answers them."""
    frame = websocket.ABNF.create_frame('{"type":"ping"}', websocket.ABNF.OPCODE_TEXT)
    client.ws.sock.sendall(b"".join(frame.format() for _ in range(count)))


def test_a_client_piling_up_messages_beyond_the_cap_is_closed(make_server, script):
    server = make_server("--no-rate-limit", "--ws-pending-messages", "2", script=script)
    client = LiveClient(server)
    _burst(client, 2000)
    with pytest.raises(ServerClosed) as closed:
        for _ in range(2001):
            client.next(timeout=10)
    assert closed.value.code == 1008
    assert LiveClient(server).request({"type": "ping"}, "pong")  # the server carries on


def test_a_burst_within_the_pending_cap_is_answered_whole(make_server, script):
    server = make_server("--no-rate-limit", script=script)  # default cap: 200
    client = LiveClient(server)
    _burst(client, 150)
    for _ in range(150):
        assert client.next(timeout=10)["type"] == "pong"
    client.close()


def test_clients_beyond_max_clients_are_refused(make_server, script):
    server = make_server("--no-rate-limit", "--max-clients", "3", script=script)
    clients = [LiveClient(server) for _ in range(3)]
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        LiveClient(server)
    assert caught.value.status_code == 503
    assert server.api("GET", "sessions").status_code == 200
    clients.pop().close()
    wait_for(lambda: _can_connect(server))


def _can_connect(server) -> bool:
    try:
        LiveClient(server).close()
    except websocket.WebSocketBadStatusException:
        return False
    return True


def test_shutdown_takes_sessions_offline_and_closes_with_going_away(live_server, project):
    sid = ready_session(live_server, project)
    client = LiveClient(live_server)
    assert live_server.stop() == 0
    with pytest.raises(ServerClosed) as closed:
        for _ in range(100):
            client.next(timeout=10)
    assert closed.value.code == 1001
    assert [m["sessionId"] for m in client.events("session:offline")] == [sid]


def test_clients_resuming_at_random_moments_see_exactly_the_log(live_server, project):
    """Phones that drop and resume mid-stream end up with the log, no gap, no duplicate."""
    sid = ready_session(live_server, project)
    rng = random.Random(20261126)
    clients = [_ResumingClient(live_server, sid, random.Random(rng.random())) for _ in range(3)]
    send(live_server, sid, "for i in $(seq 1 300); do echo tick $i; sleep 0.01; done")
    threads = [threading.Thread(target=client.run) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    entries = live_server.api("GET", f"session/{sid}/logs?kind=shell&limit=1000").json()["entries"]
    log_text = "".join(e["text"] for e in entries if e["source"] == "stdout")
    assert log_text == "".join(f"tick {n}\n" for n in range(1, 301))
    for client in clients:
        assert client.error is None, client.error
        assert client.reconnects >= 3
        ids = [entry["id"] for entry in client.entries]
        assert ids == sorted(set(ids))
        assert "".join(e["text"] for e in client.entries if e["source"] == "stdout") == log_text


class _ResumingClient:
    """Reads a few messages, drops the connection (cleanly or not), resumes with `since`."""

    def __init__(self, server, session_id: str, rng: random.Random) -> None:
        self.server, self.session_id, self.rng = server, session_id, rng
        self.client = LiveClient(server, session_id=session_id)
        self.last_seq = self.client.init["seq"]
        self.entries: list[dict] = []
        self.reconnects = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            for _ in range(500):  # bounded: the command ends long before
                if self._read_some(self.rng.randint(1, 12)):
                    return
                self._drop()
                self.client = LiveClient(self.server, session_id=self.session_id,
                                         since=self.last_seq)
                self.reconnects += 1
                if not self.client.init["resumed"]:
                    self.error = f"not resumed from {self.last_seq}"
                    return
            self.error = "the command never finished"
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = repr(exc)

    def _read_some(self, count: int) -> bool:
        """Read up to `count` messages; True once the command's exit event arrived."""
        for _ in range(count):
            message = self.client.next(timeout=30)
            if "seq" not in message:
                continue
            assert message["seq"] > self.last_seq, (message["seq"], self.last_seq)
            self.last_seq = message["seq"]
            if message["type"] == "session:output":
                self.entries.append(message["entry"])
            if message["type"] == "session:exit":
                self.client.close()
                return True
        return False

    def _drop(self) -> None:
        if self.rng.random() < 0.5:
            self.client.close()
        else:  # vanish without a close frame, as a phone that loses its network does
            self.client.ws.sock.shutdown(socket.SHUT_RDWR)
            self.client.ws.sock.close()


def test_websocket_handshake_counts_as_a_get(make_server, script):
    server = make_server("--rate-limit-get", "3", "--rate-limit-post", "3", script=script)
    LiveClient(server).close()
    LiveClient(server).close()
    assert server.api("GET", "sessions").status_code == 200
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        LiveClient(server)
    assert caught.value.status_code == 429


def test_a_full_server_still_redirects_handshakes_without_the_token(make_server, script):
    server = make_server("--no-rate-limit", "--max-clients", "1", script=script)
    client = LiveClient(server)
    head = raw_handshake(server.port, f"/{uuid.uuid4()}/ws")
    assert head.startswith("HTTP/1.1 302"), head
    client.close()


def test_shutdown_is_not_held_up_by_a_client_that_stopped_reading(make_server, script, project):
    server = make_server("--no-rate-limit", script=script)
    sid = ready_session(server, project)
    stalled = LiveClient(server, session_id=sid,
                         sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    send(server, sid, "head -c 3000000 /dev/zero | tr '\\0' a")  # fills the socket buffers
    wait_for(lambda: server.api("GET", f"history?sessionId={sid}").json()["count"], timeout=60)
    started = time.monotonic()
    assert server.stop(timeout=30) == 0
    assert time.monotonic() - started < 15
    stalled.ws.sock.close()


def test_a_session_deleted_while_a_command_is_sent_stays_deleted(make_server, project, tmp_path):
    data = tmp_path / "racy"
    server = make_server("--no-rate-limit", data_dir=data)
    for n in range(8):
        sid = create(server, project, name=f"racy {n}", inputMode="ai", toolType="aider")["id"]
        sender = threading.Thread(target=server.api, args=("POST", f"session/{sid}/send"),
                                  kwargs={"json": {"command": "sleep 300",
                                                   "inputMode": "terminal"}})
        sender.start()
        time.sleep(n * 0.002)
        server.api("DELETE", f"session/{sid}")
        sender.join(30)
    wait_for(lambda: not _shells_of_deleted(), timeout=15)
    assert server.api("GET", "sessions").json()["count"] == 0
    server.stop()
    again = make_server("--no-rate-limit", data_dir=data)
    assert again.api("GET", "sessions").json()["count"] == 0


def _shells_of_deleted() -> list[str]:
    """Command lines of `sleep 300` processes still alive (none should survive a delete)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.strip() == "sleep 300":
            found.append(entry)
    return found
