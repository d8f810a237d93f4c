"""What the "is it waiting for input?" check costs while commands run.

    python3 -m bench.input_check --tree OTHER_CHECKOUT [sessions]

N terminal sessions each run `sleep` (busy: the check runs every 0.25 s per shell); the
server's CPU seconds over the same wall time are compared with another checkout's,
interleaved A, B, A, B. Also prints how many processes the machine has (the old check
read every one's /proc/<pid>/stat).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench import temporary_server
from bench.fanout import cpu_seconds

WATCH_S = 8
ROUNDS = 3


def busy_cpu(script: str, sessions: int) -> float:
    """Server CPU seconds over WATCH_S while `sessions` shells each run a long sleep."""
    with temporary_server(script) as (server, project):
        ids = [server.api("POST", "sessions", json={
            "name": f"busy {n}", "cwd": str(project), "toolType": "terminal"}).json()
            ["session"]["id"] for n in range(sessions)]
        for session_id in ids:
            server.api("POST", f"session/{session_id}/send", json={"command": "sleep 60"})
        time.sleep(1)
        before = cpu_seconds(server.process.pid)
        time.sleep(WATCH_S)
        return cpu_seconds(server.process.pid) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sessions", type=int, nargs="?", default=5)
    parser.add_argument("--tree", type=Path, required=True)
    args = parser.parse_args()
    scripts = {"this": "wsgi.py", "other": str(args.tree.resolve() / "wsgi.py")}
    runs: dict[str, list[float]] = {name: [] for name in scripts}
    for _ in range(ROUNDS):
        for name, script in scripts.items():
            runs[name].append(busy_cpu(script, args.sessions))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    processes = sum(entry.isdigit() for entry in os.listdir("/proc"))
    for name, spent in medians.items():
        print(f"{name:6} {args.sessions} busy shells: {spent / WATCH_S * 100:.1f}% of a core")
    print(f"this/other: {medians['this'] / medians['other']:.2f} ({processes} processes here)")


if __name__ == "__main__":
    main()
