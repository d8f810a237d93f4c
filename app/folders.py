"""Session folders as the UI names them: `~` expanded on the server, and the sub-folders of a
folder listed for the new-session folder picker (inside the user's home unless configured)."""

from __future__ import annotations

import os
from typing import Any

from .errors import ApiError


def home_folder() -> str:
    """The server user's home, symlinks resolved (what `~` means here)."""
    return os.path.realpath(os.path.expanduser("~"))


def expand_folder(path: str) -> str:
    """`~` and `~/x` become the server user's home (the phone's user has no other `~`)."""
    if path == "~" or path.startswith("~/"):
        return os.path.expanduser("~") + path[1:]
    return path


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def list_folders(path: str | None, *, outside_home: bool, limit: int) -> dict[str, Any]:
    """The sub-folders of `path` (default: home), by name, at most `limit`, hidden ones left
    out. A path outside home, or a symlink that leads out of it, is refused (403) unless
    `outside_home`; names that are not valid UTF-8 are left out (no request could name them).

    :raise ApiError: 400 not a full path or not a folder, 403 outside home or unreadable,
        404 missing.
    """
    home = home_folder()
    asked = expand_folder(path) if path else home
    if not os.path.isabs(asked):
        raise ApiError(400, f"Folder must be a full path such as ~/code or /home/me/code, "
                            f"got '{asked}'")
    real = _resolved(asked)
    if real is None:
        raise ApiError(403, f"Folder '{asked}' cannot be read")
    if not outside_home and not _inside(real, home):
        raise ApiError(403, f"Folder '{asked}' is outside your home folder; the server lists "
                            "only folders inside it (start it with --browse-outside-home to "
                            "change that)")
    if not os.path.exists(real):
        raise ApiError(404, f"Folder '{asked}' does not exist")
    if not os.path.isdir(real):
        raise ApiError(400, f"'{asked}' is a file, not a folder")
    try:
        entries = sorted(os.scandir(real), key=lambda entry: entry.name.lower())
    except OSError:
        raise ApiError(403, f"Folder '{asked}' cannot be read") from None
    folders: list[dict[str, str]] = []
    truncated = False
    for entry in entries:
        if entry.name.startswith(".") or not _names_a_folder(entry):
            continue
        target = _resolved(entry.path)
        if target is None or (not outside_home and not _inside(target, home)):
            continue  # a symlink that leads out of home, or that we may not read
        if len(folders) == limit:
            truncated = True
            break
        folders.append({"name": entry.name, "path": os.path.join(real, entry.name)})
    parent = os.path.dirname(real)
    if parent == real or (not outside_home and not _inside(parent, home)):
        parent = None
    return {"path": real, "home": home, "parent": parent, "folders": folders,
            "count": len(folders), "truncated": truncated}


def _resolved(path: str) -> str | None:
    """`path` with symlinks resolved; None when one on the way may not be read (realpath
    raises then: /proc/<pid>/root of a process we may not trace, say)."""
    try:
        return os.path.realpath(path)
    except OSError:
        return None


def _names_a_folder(entry: os.DirEntry) -> bool:
    try:
        entry.name.encode("utf-8")
        return entry.is_dir()
    except (UnicodeEncodeError, OSError):
        return False
