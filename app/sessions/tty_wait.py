"""Is a thread blocked polling the terminal? (poll, ppoll, select, pselect6, epoll_wait)

Programs that read keys (python's REPL, vim, less) wait in poll or select, not in read(2).
/proc/<task>/syscall names the call and its arguments; the watched descriptors are read
from the process's memory (/proc/<pid>/mem: allowed for our own descendants) for poll and
select, and from /proc/<pid>/fdinfo for epoll. The terminal counts when it is watched for
input. Linux only; anything unreadable counts as "not polling".
"""

from __future__ import annotations

import os
import platform
import struct

_POLL, _SELECT, _EPOLL = "poll", "select", "epoll"
# Syscall numbers (decimal, as /proc/<pid>/syscall shows them) -> how the fds are passed.
_SYSCALLS = {
    "x86_64": {"7": _POLL, "271": _POLL, "23": _SELECT, "270": _SELECT,
               "232": _EPOLL, "281": _EPOLL, "441": _EPOLL},
    "aarch64": {"73": _POLL, "72": _SELECT, "22": _EPOLL, "441": _EPOLL},
}.get(platform.machine(), {})
_POLLIN = 0x001
_POLLFD = struct.Struct("iHH")  # struct pollfd: int fd; short events; short revents
_MAX_FDS = 4096  # a wait on more descriptors than this is not a terminal program's


def task_polls_tty(task: str, tty_rdev: int) -> bool:
    """Whether the thread at /proc/<pid>/task/<tid> waits for input on the terminal."""
    try:
        with open(f"{task}/syscall", encoding="ascii") as syscall_file:
            fields = syscall_file.read().split()
        kind = _SYSCALLS.get(fields[0]) if len(fields) >= 3 else None
        if kind is None:
            return False
        first, second = int(fields[1], 16), int(fields[2], 16)
        if kind == _EPOLL:
            watched = _epoll_fds(task, first)
        elif kind == _POLL:
            watched = _poll_fds(task, first, min(second, _MAX_FDS))
        else:
            watched = _select_fds(task, min(first, _MAX_FDS), second)
        return any(_is_tty(task, fd, tty_rdev) for fd in watched)
    except (OSError, ValueError, IndexError, struct.error):
        return False


def _read_memory(task: str, address: int, size: int) -> bytes:
    with open(f"{task}/mem", "rb", buffering=0) as memory:
        memory.seek(address)
        return memory.read(size)


def _poll_fds(task: str, address: int, count: int) -> list[int]:
    data = _read_memory(task, address, count * _POLLFD.size)
    return [fd for fd, events, _ in _POLLFD.iter_unpack(data) if events & _POLLIN]


def _select_fds(task: str, count: int, readfds: int) -> list[int]:
    if not readfds:
        return []
    bitmap = _read_memory(task, readfds, (count + 7) // 8)
    return [fd for fd in range(count) if bitmap[fd // 8] >> (fd % 8) & 1]


def _epoll_fds(task: str, epoll_fd: int) -> list[int]:
    with open(f"{task}/fdinfo/{epoll_fd}", encoding="ascii") as fdinfo:
        return [int(line.split()[1]) for line in fdinfo if line.startswith("tfd:")]


def _is_tty(task: str, fd: int, tty_rdev: int) -> bool:
    try:
        return os.stat(f"{task}/fd/{fd}").st_rdev == tty_rdev
    except OSError:
        return False
