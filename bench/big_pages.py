"""Goal 5 of issue 14: big pages stay light.

    python3 -m bench.big_pages [--quick]

- A session whose shell log holds 100 entries against one holding 100,000 (seeded into the
  database while the server is stopped, then served with --log-cap above it): the median time
  of `GET session/<id>` (the detail, bounded by --detail-log-limit) and of the log's first
  page as the UI asks for it, and the time the phone UI (Chromium, bench/ui_big_output.py's
  "open long log") takes to show the newest entry. Interleaved small, big, small, big.
- 20 terminal sessions printing output at once, one WebSocket client watching: the server's
  resident memory (VmRSS of its process, sampled twice a second), peak and at the end.

Targets: the big session opens as fast as the small one (ratio ≈ 1), RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import websocket

from bench import temporary_server
from tests.wsclient import LiveClient, ServerClosed

RSS_TARGET_MB = 150
# Each session prints a burst of numbered lines, pauses, and again, until it is interrupted.
BUSY_COMMAND = "while :; do seq 1 {lines}; sleep {pause}; done"
SEED_BATCH = 5000


@dataclass(frozen=True)
class Sizes:
    small_entries: int
    big_entries: int
    requests: int
    ui_rounds: int
    busy_sessions: int
    busy_seconds: float
    busy_lines: int


QUICK = Sizes(small_entries=100, big_entries=10_000, requests=20, ui_rounds=1,
              busy_sessions=5, busy_seconds=4, busy_lines=200)
FULL = Sizes(small_entries=100, big_entries=100_000, requests=200, ui_rounds=3,
             busy_sessions=20, busy_seconds=60, busy_lines=20_000)


def entry_text(n: int) -> str:
    """A log line that names its place, so the UI's newest entry can be told apart."""
    return f"entry {n}: the quick brown fox jumps over the lazy dog\n"


def seed_shell_log(data_dir: Path, session_id: str, count: int) -> None:
    """Write `count` shell log entries for a session straight into the (stopped) server's
    database, in big transactions: typing them through a shell would take minutes."""
    from app.store import Store

    store = Store(str(data_dir / "maestro.db"), log_cap=count + 1000)
    try:
        now = int(time.time() * 1000)
        for start in range(1, count + 1, SEED_BATCH):
            store.append_logs(session_id, None, [
                {"source": "stdout", "text": entry_text(n), "timestamp": now}
                for n in range(start, min(start + SEED_BATCH, count + 1))])
    finally:
        store.close()


def median_ms(server, path: str, count: int) -> float:
    """Median wall time of `count` GETs of `path` on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    url = f"/{server.token}/api/{path}"
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", url)
            response = connection.getresponse()
            response.read()
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
    finally:
        connection.close()
    return statistics.median(times)


def ui_open_ms(server, session_ids: dict[str, str], last_lines: dict[str, str],
               rounds: int) -> dict[str, list[float]]:
    """ms from navigation to the newest entry painted in the phone UI, per session."""
    from playwright.sync_api import sync_playwright

    from bench.ui_big_output import open_long_log
    from tests.ui.conftest import ARGS, CHROMIUM

    runs: dict[str, list[float]] = {name: [] for name in session_ids}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for _ in range(rounds):
                for name, session_id in session_ids.items():
                    result = open_long_log(browser, playwright, server, session_id, None,
                                           last_lines[name])
                    runs[name].append(result["open"])
        finally:
            browser.close()
    return runs


def open_big_session(sizes: Sizes, ui: bool = True) -> dict:
    """GET session/<id>, the UI's first log page and the UI open, small vs big log."""
    counts = {"small": sizes.small_entries, "big": sizes.big_entries}
    flags = ("--log-cap", str(sizes.big_entries + 1000))
    with temporary_server("wsgi.py", *flags) as (server, project):
        ids = {name: server.api("POST", "sessions", json={
            "name": f"{name} log", "cwd": str(project), "toolType": "terminal"}).json()[
            "session"]["id"] for name in counts}
        server.stop()
        for name, count in counts.items():
            seed_shell_log(server.data_dir, ids[name], count)
        server.start(list(flags))
        # The shell's own start-up output follows the seeded entries; the newest seeded
        # line is still what a person scrolls to, but the page must show the shell's last
        # entry: wait until it is there, then take the tail's text as it is.
        time.sleep(2)
        endpoints = {"detail": "session/{id}",
                     "first log page": "session/{id}/logs?kind=shell&limit=300"}
        timings: dict[str, dict[str, list[float]]] = {e: {n: [] for n in counts}
                                                      for e in endpoints}
        rounds = 5
        for _ in range(rounds):
            for endpoint, path in endpoints.items():
                for name, session_id in ids.items():
                    timings[endpoint][name].append(median_ms(
                        server, path.format(id=session_id), max(1, sizes.requests // rounds)))
        detail_bytes = {name: len(server.api("GET", f"session/{ids[name]}").content)
                        for name in counts}
        result: dict = {"entries": counts, "detail_bytes": detail_bytes, "ms": {}, "ratios": {}}
        for endpoint, by_name in timings.items():
            medians = {name: statistics.median(values) for name, values in by_name.items()}
            result["ms"][f"GET {endpoint}"] = medians
            result["ratios"][f"GET {endpoint} big/small"] = medians["big"] / medians["small"]
        if ui:
            last_lines = {name: _newest_line(server, ids[name]) for name in counts}
            runs = ui_open_ms(server, ids, last_lines, sizes.ui_rounds)
            medians = {name: statistics.median(values) for name, values in runs.items()}
            result["ms"]["UI open"] = medians
            result["ratios"]["UI open big/small"] = medians["big"] / medians["small"]
    return result


def _newest_line(server, session_id: str) -> str:
    """The last non-empty line of the session's newest shell entry (what the UI must paint)."""
    entries = server.api("GET", f"session/{session_id}/logs?kind=shell&limit=1").json()[
        "entries"]
    lines = [line for line in entries[-1]["text"].splitlines() if line.strip()]
    return lines[-1].strip()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def busy_sessions_rss(sizes: Sizes, *flags: str) -> dict:
    """Peak and final server RSS while `busy_sessions` sessions print, one client watching."""
    command = BUSY_COMMAND.format(lines=sizes.busy_lines, pause=0.2)
    with temporary_server("wsgi.py", *flags) as (server, project):
        pid = server.process.pid
        idle_mb = rss_mb(pid)
        ids = [server.api("POST", "sessions", json={
            "name": f"busy {n}", "cwd": str(project), "toolType": "terminal"}).json()[
            "session"]["id"] for n in range(sizes.busy_sessions)]
        client = LiveClient(server)
        received = [0]
        dropped = threading.Event()  # the server closed the socket: it could not keep up
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                try:
                    message = client.next(timeout=1)
                except ServerClosed:
                    dropped.set()
                    return
                except websocket.WebSocketTimeoutException:  # a quiet second
                    continue
                if message.get("type") == "session:output":
                    received[0] += 1
                    client.messages.clear()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for session_id in ids:
            server.api("POST", f"session/{session_id}/send", json={"command": command})
        samples = []
        deadline = time.monotonic() + sizes.busy_seconds
        while time.monotonic() < deadline:
            samples.append(rss_mb(pid))
            time.sleep(0.5)
        final_mb = rss_mb(pid)
        with_output = sum(bool(server.api("GET", f"session/{session_id}").json()["session"][
            "shellLogs"]) for session_id in ids)
        for session_id in ids:
            server.api("POST", f"session/{session_id}/interrupt")
        stop.set()
        watcher.join(5)
        client.close()
    return {"sessions": sizes.busy_sessions, "seconds": sizes.busy_seconds,
            "command": command, "idle_mb": idle_mb, "peak_mb": max([*samples, final_mb]),
            "final_mb": final_mb, "outputs_received": received[0],
            "client_dropped": dropped.is_set(),
            "sessions_with_output": with_output, "target_mb": RSS_TARGET_MB}


def measure(sizes: Sizes, ui: bool = True) -> dict:
    return {"open": open_big_session(sizes, ui), "rss": busy_sessions_rss(sizes),
            "goal": "a session with 100,000 log entries opens (GET session/<id>, UI) as fast "
                    "as one with 100; server RSS < 150 MB with 20 busy sessions"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-ui", action="store_true", help="skip the Chromium measure")
    args = parser.parse_args()
    result = measure(QUICK if args.quick else FULL, ui=not args.no_ui)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
