"""Hostile output and input against the terminal view, black-box: a real server, real bash,
the raw stream, the screen model, the key paths (see docs/terminal-protocol.md).
"""

from __future__ import annotations

import shlex
import sys

from tests.conftest import wait_for
from tests.test_terminal_sessions import history, ready_session, send
from tests.test_terminal_view import screen


def python_output(code: str) -> str:
    """A shell command that runs `code` with this Python (hostile output made to measure)."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_a_flood_of_combining_marks_neither_stalls_the_shell_nor_the_screen(server, project):
    sid = ready_session(server, project)
    # 600 KB of accents on one letter: pyte re-normalised the whole cell at every mark.
    send(server, sid, python_output(
        "import sys; sys.stdout.write('a' + chr(0x301) * 300000 + chr(10)); print('after')"))
    entry = wait_for(lambda: history(server, sid), timeout=60)[0]
    assert entry["exitCode"] == 0
    assert server.api("POST", f"session/{sid}/resize", json={"cols": 100, "rows": 30}).ok
    lines = screen(server, sid)["lines"]
    accented = next(line for line in lines if line.startswith("a") or line.startswith("\u00e1"))
    assert len(accented) <= 16 and any(line == "after" for line in lines)
