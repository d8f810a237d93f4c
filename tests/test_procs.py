"""The process table the engines use to find a session's processes, escaped ones included."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from app.sessions import procs
from app.sessions.procs import OWNER_VAR, ProcessTable, end_processes


class CountingTable(ProcessTable):
    scans = 0

    def _scan(self):
        CountingTable.scans += 1
        return super()._scan()


def test_callers_within_one_tick_share_one_scan_of_proc():
    table = CountingTable(max_age=60)
    CountingTable.scans = 0
    threads = [threading.Thread(target=table.snapshot) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert CountingTable.scans == 1
    fresh = CountingTable(max_age=0)
    fresh.snapshot()
    fresh.snapshot()
    assert CountingTable.scans == 3


def test_a_process_is_found_by_its_mark_after_leaving_the_session(monkeypatch):
    monkeypatch.setattr(procs, "PROCESS_TABLE", ProcessTable(max_age=0))
    marked = subprocess.Popen(
        [sys.executable, "-c", "import os, time; os.setsid(); time.sleep(60)"],
        env={**os.environ, OWNER_VAR: "server/session/shell"})
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        found = [proc for proc in procs.PROCESS_TABLE.snapshot() if proc.pid == marked.pid]
        assert found and found[0].owner == "server/session/shell"
        end_processes(lambda proc: proc.owner == "server/session/shell", grace=1.0)
        assert marked.wait(5) is not None
        assert bystander.poll() is None
    finally:
        for child in (marked, bystander):
            child.kill()
            child.wait()
