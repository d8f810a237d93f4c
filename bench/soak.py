"""Crash soak: kill -9 the server at random moments, many times, and check nothing was lost.

    python3 -m bench.soak [cycles] [--seed N]

Each cycle starts the server (run.py and wsgi.py in turn) on one data dir, floods two
terminal sessions while a WebSocket client records what it sees, kills the server with
SIGKILL after a random 0.2-3 s, restarts it, and checks that every entry the client saw is
stored with the same text, in order, and that seq went on from above what was seen. Writes
bench/results/soak.json and prints a summary (the figures in docs/reliability.md).
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from tests.conftest import ServerProcess
from tests.test_crash_durability import FLOOD, stored_shell_entries, watch_until_killed
from tests.wsclient import LiveClient

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"


def wait_idle(server: ServerProcess, sid: str) -> None:
    for _ in range(200):
        state = requests.get(server.url(f"api/session/{sid}"), timeout=10).json()[
            "session"]["state"]
        if state == "idle":
            return
        time.sleep(0.05)
    raise RuntimeError(f"session {sid} did not become idle")


def cycle(tmp: Path, script: str, sessions: list[str], project: Path, kill_after: float,
          last_seq: int) -> dict:
    server = ServerProcess(tmp / "data", tmp / "home", ["--no-rate-limit"], script).start()
    try:
        while len(sessions) < 2:
            body = {"name": f"soak {len(sessions)}", "cwd": str(project), "toolType": "terminal"}
            sessions.append(server.api("POST", "sessions", json=body).json()["session"]["id"])
        for sid in sessions:
            server.api("POST", f"session/{sid}/interrupt")  # a flood left from the last cycle
            wait_idle(server, sid)
        client = LiveClient(server)
        if client.init["seq"] <= last_seq:
            raise AssertionError(f"seq went back: {client.init['seq']} <= {last_seq}")
        seen: list[dict] = []
        watcher = threading.Thread(target=watch_until_killed, args=(client, seen), daemon=True)
        watcher.start()
        for sid in sessions:
            server.api("POST", f"session/{sid}/send", json={"command": FLOOD})
        time.sleep(kill_after)
    finally:
        server.stop(signal.SIGKILL)
    watcher.join(timeout=30)
    verifier = ServerProcess(tmp / "data", tmp / "home", ["--no-rate-limit"], script).start()
    try:
        lost = checked = 0
        for sid in sessions:
            outputs = [m["entry"] for m in seen
                       if m.get("type") == "session:output" and m.get("sessionId") == sid]
            stored = {e["id"]: e for e in stored_shell_entries(verifier, sid)}
            lost += sum(1 for e in outputs if stored.get(e["id"], {}).get("text") != e["text"])
            ids = [e["id"] for e in outputs]
            lost += sum(1 for a, b in itertools.pairwise(ids) if b <= a)  # out of order
            checked += len(outputs)
    finally:
        verifier.stop()
    return {"script": script, "killAfterS": round(kill_after, 2), "entriesSeen": checked,
            "lost": lost, "seqSeen": max((m["seq"] for m in seen if "seq" in m), default=0)}


def main() -> None:
    args = sys.argv[1:]
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else int(time.time())
    positional = [a for i, a in enumerate(args) if a != "--seed" and
                  (i == 0 or args[i - 1] != "--seed")]
    cycles = int(positional[0]) if positional else 20
    rng = random.Random(seed)
    results, sessions, last_seq = [], [], 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "home").mkdir()
        project = tmp / "project"
        project.mkdir()
        for n in range(cycles):
            script = ("run.py", "wsgi.py")[n % 2]
            result = cycle(tmp, script, sessions, project, rng.uniform(0.2, 3.0), last_seq)
            last_seq = max(last_seq, result["seqSeen"])
            results.append(result)
            print(json.dumps(result), flush=True)
    summary = {"seed": seed, "cycles": cycles, "kills": cycles,
               "entriesChecked": sum(r["entriesSeen"] for r in results),
               "lost": sum(r["lost"] for r in results),
               "seconds": round(time.monotonic() - started, 1), "runs": results}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{cycles} kill -9 cycles, {summary['entriesChecked']} entries checked, "
          f"{summary['lost']} lost or out of order, seq never went back ({summary['seconds']} s)")


if __name__ == "__main__":
    main()
