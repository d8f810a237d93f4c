"""The operating system under the engines: waiting for a process's exit or a wake-up,
listing processes, and telling whether the terminal's foreground program waits for input.

Two implementations with one interface, chosen once at import:

- LinuxLayer: a pidfd per child, an eventfd per wake-up, /proc for the process table
  (environment marks, cgroups) and for the exact "blocked reading or polling the terminal"
  test (/proc/<pid>/syscall, tty_wait.py).
- PortableLayer, for any POSIX system (macOS, BSD, a Linux without pidfd): a self-pipe per
  wake-up; exits found by the owner's own non-blocking reap (Popen.poll, PtyProcess.isalive:
  os.waitpid with WNOHANG) at most every EXIT_POLL seconds, so nothing else reaps its child;
  the process table from ps(1) (its environment column carries the MAESTRO_OWNER mark); no
  cgroups; and, degraded, "waits for input" judged from the foreground process group's wait
  channel as ps reports it (a read on the terminal, or a quiet poll/select).

MAESTRO_PLATFORM=portable forces the portable layer (CI runs the engine tests with it, so the
macOS path is exercised on Linux); MAESTRO_PLATFORM=linux insists on the Linux one.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import NamedTuple

from . import cgroups
from .tty_wait import task_polls_tty

PLATFORM_VAR = "MAESTRO_PLATFORM"
OWNER_VAR = "MAESTRO_OWNER"
_OWNER_PREFIX = OWNER_VAR.encode() + b"="
EXIT_POLL = 0.05  # portable: seconds between checks whether a child has exited
_PS_TIMEOUT = 10.0
_TREE_LIMIT = 4096  # processes walked below one shell, at most

# Syscall numbers of read(2) and readv(2): a task blocked in one of them on the
# pty slave is waiting for the user (Linux /proc/<pid>/syscall, decimal).
_READ_SYSCALLS = {"x86_64": ("0", "19"), "aarch64": ("63", "65")}.get(platform.machine(), ())


class Proc(NamedTuple):
    pid: int
    group: int
    session: int
    owner: str  # MAESTRO_OWNER from its environment; "" when unset or unreadable
    cgroup: str  # its cgroup in the tracked hierarchy; "" without one


class ExitWatch:
    """Tells when a child process has exited. `fd` (None: there is none) becomes readable
    then; without it, call exited() at least every `poll_every` seconds."""

    fd: int | None = None
    poll_every: float | None = None

    def exited(self) -> bool:
        raise NotImplementedError

    def cap(self, timeout: float | None) -> float | None:
        """`timeout` (None: forever) shortened so that exited() is asked often enough."""
        if self.poll_every is None:
            return timeout
        return self.poll_every if timeout is None else min(timeout, self.poll_every)

    def close(self) -> None:
        """Release the watch (the process is not touched)."""


class _PidfdWatch(ExitWatch):
    def __init__(self, pid: int) -> None:
        self.fd = os.pidfd_open(pid)

    def exited(self) -> bool:
        return bool(select.select([self.fd], [], [], 0)[0])

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _ReapWatch(ExitWatch):
    """`reaped()` is the owner's own non-blocking wait (True once the child is reaped)."""

    poll_every = EXIT_POLL

    def __init__(self, reaped: Callable[[], bool]) -> None:
        self._reaped = reaped
        self._exited = False

    def exited(self) -> bool:
        self._exited = self._exited or self._reaped()
        return self._exited


class Waker:
    """A descriptor another thread makes readable to wake a poll loop."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.fd, self._write_fd = read_fd, write_fd

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is pending already
            os.write(self._write_fd, b"\1")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 4096)

    def close(self) -> None:
        os.close(self.fd)
        if self._write_fd != self.fd:
            os.close(self._write_fd)


class _EventfdWaker(Waker):
    def __init__(self) -> None:
        fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        super().__init__(fd, fd)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_write(self.fd, 1)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.fd)


def _pipe_waker() -> Waker:
    read_fd, write_fd = os.pipe()  # close-on-exec by default (PEP 446)
    for fd in (read_fd, write_fd):
        os.set_blocking(fd, False)
    return Waker(read_fd, write_fd)


class LinuxLayer:
    name = "linux"
    has_cgroups = True
    input_detection = "exact: a read, poll, select or epoll on the terminal (/proc)"

    def exit_watch(self, pid: int, reaped: Callable[[], bool]) -> ExitWatch:
        return _PidfdWatch(pid)

    def waker(self) -> Waker:
        return _EventfdWaker()

    def tty_device(self, pid: int) -> int:
        """The device number of the terminal on `pid`'s stdin (0: unknown)."""
        try:
            return os.stat(f"/proc/{pid}/fd/0").st_rdev
        except OSError:
            return 0

    def scan(self, cgroup_key: str | None) -> list[Proc]:
        """The live (not zombie) processes; cgroups from hierarchy `cgroup_key` (None: none)."""
        return [Proc(int(pid), group, session, _environ_owner(pid),
                     "" if cgroup_key is None else cgroups.membership(pid, cgroup_key))
                for pid, group, session in _live_processes()]

    def program_name(self, pid: int) -> str | None:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as comm:
                return comm.read().strip() or None
        except OSError:
            return None

    def group_waits_on_tty(self, group: int, tty_device: int,
                           shell: int | None) -> tuple[bool, bool]:
        """Whether a task of process group `group` (looked for below `shell` first) is
        blocked reading the terminal, and whether one is blocked polling it (poll, select,
        epoll)."""
        members = _group_members(shell, group) if shell is not None else []
        if not members:  # reparented out of the shell's tree, or gone: look everywhere
            members = [int(pid) for pid, its_group, _ in _live_processes() if its_group == group]
        foreground = [task for pid in members for task in _tasks(pid)]
        if any(_task_reads_tty(task, tty_device) for task in foreground):
            return True, False
        return False, any(task_polls_tty(task, tty_device) for task in foreground)


def _live_processes() -> Iterator[tuple[str, int, int]]:
    """(pid, process group, session) of every live (not zombie) process."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(entry)
            if stat is not None and stat[0] not in "ZX":
                yield entry, stat[1], stat[2]


def _group_members(root: int, group: int) -> list[int]:
    """Pids of live processes in `group` among `root` and its descendants.

    Walks /proc/<pid>/task/<tid>/children from `root` (a few reads) instead of reading every
    process's stat on the machine; a member that has left the tree (its parent exited and it
    was reparented) is missed, so a caller that finds none looks everywhere."""
    members, pending, seen = [], [root], set()
    while pending and len(seen) < _TREE_LIMIT:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stat = _proc_stat(str(pid))
        if stat is None or stat[0] in "ZX":
            continue
        if stat[1] == group:
            members.append(pid)
        for task in _tasks(pid):
            try:
                with open(f"{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return members


def _proc_stat(pid: str) -> tuple[str, int, int] | None:
    """(state, process group, session) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat_file:
            text = stat_file.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses.
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[3])


def _environ_owner(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ_file:
            environ = environ_file.read()
    except OSError:
        return ""
    for entry in environ.split(b"\0"):
        if entry.startswith(_OWNER_PREFIX):
            return entry[len(_OWNER_PREFIX):].decode("utf-8", "replace")
    return ""


def _tasks(pid: int) -> Iterator[str]:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        yield f"/proc/{pid}/task/{tid}"


def _task_reads_tty(task: str, tty_rdev: int) -> bool:
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


class _PsRow(NamedTuple):
    pid: int
    group: int
    state: str
    wait_channel: str
    owner: str


_OWNER_IN_PS = re.compile(r"(?:^|\s)" + OWNER_VAR + r"=(\S+)")
# Kernel wait channels of a terminal read (macOS and BSD ttyin, ttread; Linux wait_woken, which
# other blocking reads such as a socket's share: a degradation) and of a wait for several
# descriptors (poll, select, epoll, kqueue).
_TTY_READ_CHANNEL = re.compile(r"ttyin|ttread|tty_read|wait_woken", re.IGNORECASE)
_POLL_CHANNEL = re.compile(r"poll|select|kqread|kevent", re.IGNORECASE)


class PortableLayer:
    name = "portable"
    has_cgroups = False
    input_detection = ("approximate: the foreground program's wait channel from ps(1) "
                       "(a terminal read, or a quiet poll/select)")

    def exit_watch(self, pid: int, reaped: Callable[[], bool]) -> ExitWatch:
        return _ReapWatch(reaped)

    def waker(self) -> Waker:
        return _pipe_waker()

    def tty_device(self, pid: int) -> int:
        return 0  # not needed: the foreground group is asked of the pty itself

    def scan(self, cgroup_key: str | None) -> list[Proc]:
        procs = []
        for row in _ps_rows(owners=True):
            if row.state[:1] not in "ZX":
                try:
                    session = os.getsid(row.pid)
                except OSError:  # gone since ps listed it
                    continue
                procs.append(Proc(row.pid, row.group, session, row.owner, ""))
        return procs

    def program_name(self, pid: int) -> str | None:
        try:
            result = subprocess.run(["ps", "-o", "comm=", "-p", str(pid)], capture_output=True,
                                    text=True, errors="replace", timeout=_PS_TIMEOUT,
                                    stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return os.path.basename(result.stdout.strip()) or None

    def group_waits_on_tty(self, group: int, tty_device: int,
                           shell: int | None) -> tuple[bool, bool]:
        channels = [row.wait_channel for row in _ps_rows()
                    if row.group == group and row.state[:1] not in "ZX"]
        if any(_TTY_READ_CHANNEL.search(channel) for channel in channels):
            return True, False
        return False, any(_POLL_CHANNEL.search(channel) for channel in channels)


def _ps_command(environment: bool) -> list[str]:
    """ps(1) listing every process, with (`environment`) its environment after its command
    line: BSD and macOS ps say so with -E, procps (Linux) with the BSD-style `e`."""
    # One -o per column: BSD ps takes everything after "=" as the header, commas included.
    if sys.platform.startswith(("darwin", "freebsd", "openbsd", "netbsd")):
        columns, flag = ("pid", "pgid", "stat", "wchan", "command"), "-E"
    else:
        columns, flag = ("pid", "pgid", "stat", "wchan:40", "args"), "e"
    return ["ps", "-A", "-ww", *([flag] if environment else []),
            *(argument for column in columns for argument in ("-o", column + "="))]


def _ps_lines(environment: bool) -> tuple[dict[int, list[str]], set[int]]:
    """pid → [pgid, stat, wchan, command line (and environment)], first row of each pid; and
    the pids listed twice (BSD ps prints a newline in an argument as is, so a process can
    add rows that look like another's). Nothing when ps fails."""
    try:
        result = subprocess.run(_ps_command(environment), capture_output=True,
                                timeout=_PS_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}, set()
    lines: dict[int, list[str]] = {}
    listed_twice = set()
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4 and fields[0].isdigit() and fields[1].isdigit():
            pid = int(fields[0])
            if pid in lines:
                listed_twice.add(pid)
            else:
                lines[pid] = fields[1:] + [""] * (5 - len(fields))
    return lines, listed_twice


def _ps_rows(owners: bool = False) -> list[_PsRow]:
    """Every process ps(1) lists; empty (nothing found) when ps fails. With `owners`, the
    OWNER_VAR mark from each one's environment: ps prints it after the command line on the
    same line, so the command line (listed again without it) is cut off first, or a process
    started with the mark as an argument would pass for ours. A pid listed twice has no
    mark: which row is real cannot be told."""
    with_environment, doubtful = _ps_lines(environment=owners)
    commands, doubtful_too = _ps_lines(environment=False) if owners else ({}, set())
    doubtful |= doubtful_too
    rows = []
    for pid, (group, state, wait_channel, text) in with_environment.items():
        owner = ""
        command = commands.get(pid, [""] * 4)[3]
        if owners and command and pid not in doubtful and text.startswith(command):
            found = _OWNER_IN_PS.search(text[len(command):])  # else: changed in between
            owner = found.group(1) if found else ""
        rows.append(_PsRow(pid, int(group), state, wait_channel, owner))
    return rows


def _linux_works() -> bool:
    """pidfd and eventfd exist and work (kernel 5.3+), and /proc is mounted."""
    if not (hasattr(os, "pidfd_open") and hasattr(os, "eventfd")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return os.path.isdir("/proc/self/task")


def choose(forced: str | None = None) -> LinuxLayer | PortableLayer:
    """The layer MAESTRO_PLATFORM names ("linux", "portable"), else the best that works."""
    forced = (forced if forced is not None else os.environ.get(PLATFORM_VAR, "")).strip().lower()
    if forced == "portable":
        return PortableLayer()
    if forced == "linux":
        return LinuxLayer()
    if forced:
        raise ValueError(f"{PLATFORM_VAR} must be 'linux' or 'portable', not {forced!r}")
    return LinuxLayer() if _linux_works() else PortableLayer()


LAYER = choose()
