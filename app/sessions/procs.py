"""Process helpers for the engines: a clean child before exec, and Linux /proc queries."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
from collections.abc import Callable, Iterator
from typing import NamedTuple

# Syscall numbers of read(2) and readv(2): a task blocked in one of them on the
# pty slave is waiting for the user (Linux /proc/<pid>/syscall, decimal).
_READ_SYSCALLS = {"x86_64": ("0", "19"), "aarch64": ("63", "65")}.get(platform.machine(), ())

# Python ignores SIGPIPE and SIGXFSZ, and a server started in the background may ignore
# SIGINT: ignored signals survive exec, so without this `yes | head` would spin and an
# interrupt could never stop a command.
_RESET_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE,
                  signal.SIGXFSZ, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)


def prepare_child(cwd: str) -> None:
    """In the forked child, before exec: default signal handling, then the folder."""
    for number in _RESET_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.chdir(cwd)


class ProcStat(NamedTuple):
    state: str
    group: int
    session: int


def proc_stat(pid: str) -> ProcStat | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat_file:
            text = stat_file.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses.
    fields = text[text.rindex(")") + 2:].split()
    return ProcStat(fields[0], int(fields[2]), int(fields[3]))


def processes(match: Callable[[ProcStat], bool]) -> list[int]:
    """Pids of live (not zombie) processes whose stat matches."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat is not None and stat.state not in "ZX" and match(stat):
                pids.append(int(entry))
    return pids


def tasks(pid: int) -> Iterator[str]:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        yield f"/proc/{pid}/task/{tid}"


def task_reads_tty(task: str, tty_rdev: int) -> bool:
    """Is this thread blocked in read(2) on the terminal? (/proc/<pid>/syscall
    is "running" or "<nr> <arg1> ..." with arg1, the fd, in hex.)"""
    try:
        with open(f"{task}/syscall", encoding="ascii") as syscall_file:
            fields = syscall_file.read().split()
        if len(fields) < 2 or fields[0] not in _READ_SYSCALLS:
            return False
        return os.stat(f"{task}/fd/{int(fields[1], 16)}").st_rdev == tty_rdev
    except (OSError, ValueError):
        return False


def kill_quietly(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
