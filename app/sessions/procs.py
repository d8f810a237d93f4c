"""Process helpers for the engines: a clean child before exec, and Linux /proc queries.

Every process a session starts carries MAESTRO_OWNER=<server id>/<session id>/<role> in its
environment, which survives `setsid`, double forks and a crash of the server, and, where the
machine allows, sits in the cgroup of that tag (cgroups.py), which survives a cleared
environment too: that is how a session's leftovers are found at delete, at shutdown and at
the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import NamedTuple

from . import cgroups

OWNER_VAR = "MAESTRO_OWNER"
_OWNER_PREFIX = OWNER_VAR.encode() + b"="
_SCAN_MAX_AGE = 0.02  # callers within this many seconds share one scan of /proc
_END_POLL = 0.02
_TREE_LIMIT = 4096  # processes walked below one shell, at most

# Syscall numbers of read(2) and readv(2): a task blocked in one of them on the
# pty slave is waiting for the user (Linux /proc/<pid>/syscall, decimal).
_READ_SYSCALLS = {"x86_64": ("0", "19"), "aarch64": ("63", "65")}.get(platform.machine(), ())

# Python ignores SIGPIPE and SIGXFSZ, and a server started in the background may ignore
# SIGINT: ignored signals survive exec, so without this `yes | head` would spin and an
# interrupt could never stop a command.
_RESET_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE,
                  signal.SIGXFSZ, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCHLD)


def prepare_child(cwd: str, procs_file: str | None = None) -> None:
    """In the forked child, before exec: its cgroup, default signal handling, the folder."""
    cgroups.join(procs_file)
    for number in _RESET_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.chdir(cwd)


def child_setup(cwd: str, env: Mapping[str, str]) -> Callable[[], None]:
    """The preexec_fn for a child with environment `env` (called in the parent: the
    cgroup of its OWNER_VAR tag is made here, not in the forked child)."""
    owner = env.get(OWNER_VAR)
    tree = PROCESS_TABLE.cgroups
    procs_file = tree.procs_file(owner) if tree is not None and owner else None
    return partial(prepare_child, cwd, procs_file)


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


def group_members(root: int, group: int) -> list[int]:
    """Pids of live processes in `group` among `root` and its descendants.

    Walks /proc/<pid>/task/<tid>/children from `root` (a few reads) instead of reading every
    process's stat on the machine; a member that has left the tree (its parent exited and it
    was reparented) is missed, so a caller that finds none falls back to `processes()`."""
    members, pending, seen = [], [root], set()
    while pending and len(seen) < _TREE_LIMIT:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stat = proc_stat(str(pid))
        if stat is None or stat.state in "ZX":
            continue
        if stat.group == group:
            members.append(pid)
        for task in tasks(pid):
            try:
                with open(f"{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return members


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


class Proc(NamedTuple):
    pid: int
    group: int
    session: int
    owner: str  # MAESTRO_OWNER from its environment; "" when unset or unreadable
    cgroup: str  # its cgroup in the tracked hierarchy; "" without one


def server_id(data_dir: str) -> str:
    """A stable id for the server that owns `data_dir` (one server per data dir)."""
    return hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]


def owner_tag(server: str, session_id: str, role: str) -> str:
    return f"{server}/{session_id}/{role}"


def _owner(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ_file:
            environ = environ_file.read()
    except OSError:
        return ""
    for entry in environ.split(b"\0"):
        if entry.startswith(_OWNER_PREFIX):
            return entry[len(_OWNER_PREFIX):].decode("utf-8", "replace")
    return ""


class ProcessTable:
    """The live processes, scanned at most once per `max_age` seconds for all callers.

    Hundreds of shells closing at once (a shutdown) each poll for their processes; one
    shared scan per tick keeps that linear in the number of shells.
    """

    def __init__(self, max_age: float = _SCAN_MAX_AGE) -> None:
        self._max_age = max_age
        self._lock = threading.Lock()
        self._scan_started = -math.inf
        self._procs: list[Proc] = []
        self.cgroups: cgroups.CgroupTree | None = None  # where sessions' processes live

    def track(self, server: str, use_cgroups: bool) -> str:
        """Track `server`'s processes in cgroups where possible (and allowed); say how."""
        self.cgroups = cgroups.find_tree(server) if use_cgroups else None
        if self.cgroups is None:
            return "process groups and the MAESTRO_OWNER environment mark"
        return (f"{self.cgroups.kind} at {self.cgroups.directory(server + '/')}, "
                "process groups and the MAESTRO_OWNER environment mark")

    def marked(self, tag_prefix: str) -> Callable[[Proc], bool]:
        """Whether a process carries an owner tag starting with `tag_prefix` (a whole tag,
        "<server>/" or "<server>/<session>/"), in its environment or as its cgroup."""
        tree = self.cgroups

        def match(proc: Proc) -> bool:
            return proc.owner.startswith(tag_prefix) or (
                tree is not None and tree.contains(proc.cgroup, tag_prefix))
        return match

    def snapshot(self, not_before: float | None = None) -> list[Proc]:
        """The processes, from a scan begun at `not_before` (monotonic) or later; by
        default, from one at most `max_age` old. A caller that must not miss a process
        started a moment ago passes the time it began to look."""
        with self._lock:
            if not_before is None:
                not_before = time.monotonic() - self._max_age
            if self._scan_started < not_before:
                self._scan_started = time.monotonic()
                self._procs = self._scan()
            return self._procs

    def _scan(self) -> list[Proc]:
        procs = []
        key = None if self.cgroups is None else self.cgroups.key
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = proc_stat(entry)
                if stat is not None and stat.state not in "ZX":
                    cgroup = "" if key is None else cgroups.membership(entry, key)
                    procs.append(Proc(int(entry), stat.group, stat.session, _owner(entry),
                                      cgroup))
        return procs


PROCESS_TABLE = ProcessTable()


def end_processes(match: Callable[[Proc], bool], grace: float) -> None:
    """SIGHUP, then SIGTERM, then SIGKILL every live process that matches (never this
    one), each after up to `grace` seconds for them to end; returns once none is left."""
    def members(not_before: float | None = None) -> list[int]:
        return [proc.pid for proc in PROCESS_TABLE.snapshot(not_before)
                if proc.pid != os.getpid() and match(proc)]

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL):
        pids = members(not_before=time.monotonic())  # fresh: a scan older would miss the newest
        if not pids:
            return
        for pid in pids:
            kill_quietly(pid, sig)
            if sig != signal.SIGKILL:
                kill_quietly(pid, signal.SIGCONT)  # a stopped job must run to die
        deadline = time.monotonic() + grace
        while members() and time.monotonic() < deadline:
            time.sleep(_END_POLL)


def end_marked(tag_prefix: str, grace: float,
               also: Callable[[Proc], bool] = lambda proc: False) -> None:
    """End every process marked `tag_prefix` (see ProcessTable.marked), or that `also`
    matches; then remove the tag's cgroups."""
    marked = PROCESS_TABLE.marked(tag_prefix)
    end_processes(lambda proc: marked(proc) or also(proc), grace)
    if PROCESS_TABLE.cgroups is not None:
        PROCESS_TABLE.cgroups.release(tag_prefix)
