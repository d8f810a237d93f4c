"""Shared by the stand-in agent CLIs: JSON lines as the real CLIs print them, and the
prompt keywords that pick a scenario.

Prompt keywords: `slow` (several events 0.3 s apart), `tool` (a tool call and its result),
`fail` (the CLI reports an error and exits 1), `hang` (one answer line, then the CLI and a
child `sleep` wait forever; their pids go to `.standin-pids` in the folder), and for claude
`stubborn hang` (the same, ignoring SIGINT), `graceful hang` (the same, but SIGINT ends it as
it ends the real claude: an error result with zero usage, exit 0), `orphan` (answers normally
but leaves a child `sleep` running; its pid goes to `.standin-pids`) and `where` (the answer
names $PWD); `escape` (first leave a child that left the session, forked twice and ignores
SIGHUP; its pid goes to `.standin-escaped`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def emit(event: dict) -> None:
    """One compact JSON line, flushed (Node's JSON.stringify and serde write no spaces)."""
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def pause(seconds: float = 0.3) -> None:
    time.sleep(seconds)


def hang() -> None:
    """Wait forever, with a child in the same process group, and tell the tests both pids."""
    child = subprocess.Popen(["sleep", "600"])
    with open(".standin-pids", "w", encoding="utf-8") as pids:
        pids.write(f"{os.getpid()} {child.pid}\n")
    while True:
        time.sleep(1)


def escape() -> None:
    """Leave a `sleep 600` that escaped as daemons do: a new session (setsid), a double fork
    (its parent shell exits, so init adopts it) and SIGHUP ignored; its pid goes to
    `.standin-escaped` in the folder."""
    started = subprocess.run(
        ["setsid", "sh", "-c", "trap '' HUP; sleep 600 </dev/null >/dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, check=True)
    with open(".standin-escaped", "w", encoding="utf-8") as pids:
        pids.write(started.stdout.strip() + "\n")


def usage_error(program: str, message: str) -> None:
    sys.stderr.write(f"{program}: error: {message}\n")
    raise SystemExit(2)
