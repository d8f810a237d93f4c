"""Process helpers for the engines: a clean child before exec, and the process table
(listed by the operating-system layer, oslayer.py).

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
import signal
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial

from . import cgroups
from .oslayer import LAYER, OWNER_VAR, Proc

_SCAN_MAX_AGE = 0.02  # callers within this many seconds share one scan of the processes
_END_POLL = 0.02

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


def kill_quietly(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def server_id(data_dir: str) -> str:
    """A stable id for the server that owns `data_dir` (one server per data dir)."""
    return hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]


def owner_tag(server: str, session_id: str, role: str) -> str:
    return f"{server}/{session_id}/{role}"


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
        use_cgroups = use_cgroups and LAYER.has_cgroups
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
        return LAYER.scan(None if self.cgroups is None else self.cgroups.key)


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
