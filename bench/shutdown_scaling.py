"""Does a clean shutdown take time in proportion to the number of sessions (not its square)?

    python3 -m bench.shutdown_scaling [small] [large]

Starts run.py with `small` and then `large` idle terminal sessions (default 20 and 100),
stops it with SIGTERM and prints the seconds until it exited, per session. A ratio of the
per-session times near 1.0 means shutdown scales linearly.
"""

from __future__ import annotations

import sys
import time

import requests

from bench import temporary_server


def shutdown_seconds(sessions: int) -> float:
    with temporary_server("run.py") as (server, project):
        body = {"cwd": str(project), "toolType": "terminal"}
        ids = [server.api("POST", "sessions", json={**body, "name": f"s{n}"}).json()[
            "session"]["id"] for n in range(sessions)]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = {s["state"] for s in requests.get(server.url("api/sessions"),
                                                       timeout=30).json()["sessions"]}
            if states == {"idle"}:
                break
            time.sleep(0.2)
        assert len(ids) == sessions
        started = time.monotonic()
        server.stop(timeout=300)
        return time.monotonic() - started


def main() -> None:
    small = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    large = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    timings = {count: shutdown_seconds(count) for count in (small, large)}
    for count, seconds in timings.items():
        print(f"{count:4d} sessions: shutdown {seconds:6.2f} s ({seconds / count * 1000:.0f} ms"
              " per session)")
    per_small, per_large = timings[small] / small, timings[large] / large
    print(f"per-session ratio ({large} / {small}): {per_large / per_small:.2f}")


if __name__ == "__main__":
    main()
