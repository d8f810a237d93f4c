"""The host's tmux: list its sessions, and build the command that attaches a terminal
session's shell to one of them.

A session name reaches tmux as a target, and tmux target syntax is rich (`name:window.pane`,
`$id`, `@id`, `%id`, fnmatch patterns, a prefix match, `-flags`), so names are checked
against a plain alphabet here and always passed as an exact match (`=name`). The tmux server
is never started, stopped or changed by us: we only list, check, and attach a client (which
a hang-up detaches).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from typing import Any

from ..errors import ApiError

NAME_MAX = 64
# Letters, digits, '_', '-', '+', '@', ',', '~' and inner spaces; never ':' or '.' (target
# separators), never a leading '-' (an option) or '$'/'@'/'%'/'=' (ids, exact match).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+@,~ -]*")
_TIMEOUT_S = 5.0  # a tmux server that does not answer in this long is treated as absent
_MAX_LISTED = 500  # windows listed at most (a session list, not a dump)
_INSTALL_HINT = ("tmux is not installed on the server's machine; install it (Debian/Ubuntu: "
                 "sudo apt-get install tmux; Fedora: sudo dnf install tmux; macOS: brew "
                 "install tmux), then try again")
_LIST_FORMAT = "\t".join(("#{session_name}", "#{session_attached}", "#{session_created}",
                          "#{window_index}", "#{window_active}", "#{window_panes}",
                          "#{window_name}"))


def name_error(name: str) -> str | None:
    """Why `name` cannot be used as a tmux session name here (None: it can)."""
    if len(name) > NAME_MAX:
        return f"A tmux session name is at most {NAME_MAX} characters"
    if not _NAME.fullmatch(name) or name.endswith(" "):
        return ("A tmux session name may hold letters, digits, spaces and _ - + @ , ~ "
                "only, and must start with a letter, a digit or _")
    return None


class Tmux:
    """The tmux server of this host (the default socket, or `socket` as with tmux -S)."""

    def __init__(self, socket: str | None = None) -> None:
        self._socket = socket

    def _binary(self) -> str:
        """:raise ApiError 501: tmux is not installed (not on PATH)."""
        binary = shutil.which("tmux")
        if binary is None:
            raise ApiError(501, _INSTALL_HINT)
        return binary

    def _argv(self, binary: str, *args: str) -> list[str]:
        socket = ["-S", self._socket] if self._socket else []
        return [binary, *socket, *args]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str] | None:
        """Run one tmux command; None when tmux did not answer in time."""
        try:
            return subprocess.run(self._argv(self._binary(), *args), capture_output=True,
                                  text=True, errors="replace", timeout=_TIMEOUT_S,
                                  env=_environment(), stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return None

    def sessions(self) -> list[dict[str, Any]]:
        """Every tmux session with its windows (none when no tmux server runs).

        :raise ApiError 501: tmux is not installed.
        """
        done = self._run("list-windows", "-a", "-F", _LIST_FORMAT)
        if done is None or done.returncode != 0:  # "no server running", or it hangs
            return []
        sessions: dict[str, dict[str, Any]] = {}
        for line in done.stdout.splitlines()[:_MAX_LISTED]:
            fields = line.split("\t", 6)
            if len(fields) != 7 or not all(field.isdigit() for field in fields[1:6]):
                continue
            name, attached, created, index, active, panes, window = fields
            session = sessions.setdefault(name, {
                "name": name, "attached": int(attached), "createdAt": int(created) * 1000,
                "attachable": name_error(name) is None, "windows": []})
            session["windows"].append({"index": int(index), "name": window,
                                       "active": active == "1", "panes": int(panes)})
        return list(sessions.values())

    def require_session(self, name: str) -> None:
        """:raise ApiError 400/501/404: a bad name, no tmux, or no such session."""
        problem = name_error(name)
        if problem is not None:
            raise ApiError(400, problem)
        done = self._run("has-session", "-t", "=" + name)
        if done is None or done.returncode != 0:
            raise ApiError(404, f"No tmux session named '{name}' on this machine (GET /api/tmux "
                                f"lists them); start one at the desk with: tmux new -s {name}")

    def attach_command(self, name: str) -> str:
        """The shell command that attaches to session `name` (checked with name_error).

        :raise ApiError 501: tmux is not installed.
        """
        argv = self._argv(self._binary(), "attach-session", "-t", "=" + name)
        # Without $TMUX: a server started inside tmux would otherwise refuse to nest.
        return "env -u TMUX " + shlex.join(argv)


def _environment() -> dict[str, str]:
    """Our environment without $TMUX, so every tmux call here talks to the same server
    as the attach command does."""
    return {key: value for key, value in os.environ.items() if key != "TMUX"}
