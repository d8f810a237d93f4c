"""The user at the desk, for the tmux tests: tmux commands on a test's own tmux server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class Desk:
    """The user at the desk: tmux commands on the test's own tmux server."""

    def __init__(self, socket: Path, home: Path) -> None:
        self.socket = socket
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home), "TERM": "xterm-256color",
                    "SHELL": "/bin/bash", "LANG": "C.UTF-8"}

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", str(self.socket), "-f", os.devnull, *args],
                              capture_output=True, text=True, env=self.env, timeout=10,
                              check=check)

    def new_session(self, name: str) -> None:
        self.tmux("new-session", "-d", "-s", name, "-x", "100", "-y", "30",
                  "bash --norc --noprofile")

    def capture(self, name: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", f"={name}:").stdout

    def alive(self, name: str) -> bool:
        return self.tmux("has-session", "-t", f"={name}", check=False).returncode == 0

    def clients(self, name: str) -> list[str]:
        return self.tmux("list-clients", "-t", f"={name}").stdout.splitlines()
