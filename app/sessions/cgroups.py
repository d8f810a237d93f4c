"""A cgroup per session role, where the machine lets this server make them.

A process cannot leave its cgroup by `setsid`, double forks, ignoring SIGHUP or clearing its
environment: only a process allowed to write elsewhere in the hierarchy can move it. So
when we may create cgroups (cgroup v2 with a writable, delegated subtree, or a writable
cgroup v1 hierarchy such as `pids`, as root), every process a session starts is put in

    <this server's own cgroup>/maestro-<server id>/<session id>/<role>

before it execs, and everything in there is found at delete, at shutdown and at the next
start after a crash. Elsewhere the process groups and the MAESTRO_OWNER mark (procs.py) do
the job alone. The path under `maestro-` is the owner tag, so both speak the same names.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from functools import partial

V1_CONTROLLERS = ("pids", "freezer")  # v1 hierarchies that only count or freeze: harmless
_PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CgroupTree:
    """Where this server makes cgroups in one hierarchy: `key` names its line in
    /proc/<pid>/cgroup ("" for v2, else a v1 controller); `own` is the server's cgroup."""

    key: str
    mount: str
    root: str  # the cgroup mounted at `mount` ("/" unless only a subtree is mounted)
    own: str  # the server's cgroup as /proc/self/cgroup shows it, e.g. "/" or "/a.slice/b"

    @property
    def kind(self) -> str:
        return "cgroup v2" if self.key == "" else f"cgroup v1 ({self.key})"

    def path(self, tag_prefix: str) -> str:
        """The cgroup (as /proc/<pid>/cgroup shows it) of an owner tag, or of a prefix of
        one ("<server>/" or "<server>/<session>/")."""
        server, _, rest = tag_prefix.partition("/")
        if not server or ".." in tag_prefix.split("/"):
            raise ValueError(f"not an owner tag: {tag_prefix!r}")
        below = rest.strip("/")
        return f"{self.own.rstrip('/')}/maestro-{server}" + (f"/{below}" if below else "")

    def directory(self, tag_prefix: str) -> str:
        return self.mount + self.path(tag_prefix)[len(self.root.rstrip("/")):]

    def contains(self, cgroup: str, tag_prefix: str) -> bool:
        """`cgroup` (a process's, from membership()) is the tag's cgroup or below it."""
        path = self.path(tag_prefix)
        return cgroup == path or cgroup.startswith(path + "/")

    def procs_file(self, tag: str) -> str | None:
        """Create the tag's cgroup (in the parent, before the fork); None if it cannot be."""
        directory = self.directory(tag)
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError:
            return None
        return os.path.join(directory, "cgroup.procs")

    def release(self, tag_prefix: str) -> None:
        """Kill what is left in the tag's cgroups (at once, forks in flight included, where
        cgroup v2 offers cgroup.kill) and remove them, innermost first. Call it after the
        members had their chance to end cleanly."""
        top = self.directory(tag_prefix)
        kill_file = os.path.join(top, "cgroup.kill")
        if os.path.exists(kill_file):
            with contextlib.suppress(OSError), open(kill_file, "w") as handle:
                handle.write("1")
        for directory, _, _ in sorted(os.walk(top), key=lambda walked: -len(walked[0])):
            with contextlib.suppress(OSError):  # not empty yet: the next release removes it
                os.rmdir(directory)


def membership(pid: str, key: str) -> str:
    """The cgroup of process `pid` in the hierarchy `key` ("" when unreadable)."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if (key == "" and number == "0") or (key and key in controllers.split(",")):
            return path
    return ""


def join(procs_file: str | None) -> None:
    """In the forked child, before exec: enter the cgroup; without it, the process is
    still found by its group and its mark."""
    if procs_file is not None:
        with contextlib.suppress(OSError), open(procs_file, "w") as handle:
            handle.write(str(os.getpid()))


def find_tree(server_id: str) -> CgroupTree | None:
    """The first hierarchy where this server may create cgroups and move its children into
    them (v2 first, then the v1 ones that do no harm); None when there is none."""
    for tree in candidates():
        if can_move_children(tree, server_id):
            return tree
    return None


def candidates() -> list[CgroupTree]:
    """The hierarchies where our own cgroup is visible, best first (untried)."""
    trees = []
    for root, mount, fstype, options in _cgroup_mounts():
        keys = [""] if fstype == "cgroup2" else [
            name for name in V1_CONTROLLERS if name in options.split(",")]
        for key in keys:
            own = membership("self", key)
            if own and (own + "/").startswith(root.rstrip("/") + "/"):  # seen through it
                trees.append(CgroupTree(key, mount, root, own))
    trees.sort(key=lambda tree: V1_CONTROLLERS.index(tree.key) + 1 if tree.key else 0)
    return trees


def _cgroup_mounts() -> list[tuple[str, str, str, str]]:
    """(root, mount point, fstype, super options) of every cgroup mount (mountinfo(5))."""
    mounts = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle.read().splitlines():
            fields, _, tail = line.partition(" - ")
            fields, tail = fields.split(), tail.split()
            if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                mounts.append((_unescape(fields[3]), _unescape(fields[4]), tail[0], tail[2]))
    return mounts


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        text = text.replace(code, chr(int(code[1:], 8)))
    return text


def can_move_children(tree: CgroupTree, server_id: str) -> bool:
    """Try it for real: a child that cannot enter its cgroup fails to start."""
    probe = f"{server_id}/probe-{os.getpid()}/probe"
    procs_file = tree.procs_file(probe)
    if procs_file is None:
        return False
    try:
        subprocess.run(["/bin/sh", "-c", "exit 0"], preexec_fn=partial(_join_strictly, procs_file),
                       check=True, timeout=_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        tree.release(f"{server_id}/probe-{os.getpid()}/")
        with contextlib.suppress(OSError):  # kept when a crashed run left sessions in it
            os.rmdir(tree.directory(f"{server_id}/"))


def _join_strictly(procs_file: str) -> None:
    with open(procs_file, "w") as handle:
        handle.write(str(os.getpid()))
