"""Unified diffs of the file changes an agent asks to make, so they can be reviewed first.

Built from the tool call's input (Claude Code's Edit, MultiEdit and Write) and the file as it is
now in the session's folder; when the file cannot be read (or the edit does not apply to it),
the diff shows just the replaced text. Codex reports its changes itself (a new file's text, a
deleted file's text, or an update's hunks): those get the file headers of a unified diff.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

DIFF_MAX_BYTES = 64 * 1024  # a longer diff is cut, with a last line saying so
FILE_MAX_BYTES = 1024 * 1024  # bigger files are not read: the diff shows the edit alone
CUT_NOTE = "\n... (diff cut at 64 KiB)\n"


def tool_diff(tool: str, arguments: dict[str, Any], cwd: str) -> str | None:
    """The unified diff of a file-changing tool call; None for any other call."""
    path = arguments.get("file_path")
    if not isinstance(path, str) or not path:
        return None
    if tool == "Write" and isinstance(arguments.get("content"), str):
        before = _read(path, cwd)
        return _unified(path, before or "", arguments["content"], before is None)
    edits = _edits(tool, arguments)
    if not edits:
        return None
    before = _read(path, cwd)
    after = _apply(before, edits) if before is not None else None
    if after is None:  # unreadable, or the edit does not match: show the edit on its own
        old = "".join(_line_end(old) for old, _, _ in edits)
        new = "".join(_line_end(new) for _, new, _ in edits)
        return _unified(path, old, new, False)
    return _unified(path, before, after, False)


def change_diff(path: str, kind: str, text: str, cwd: str) -> str:
    """The unified diff of one file change an agent reports: `kind` add (`text` is the new
    file), delete (`text` is the old one) or update (`text` holds the hunks, `@@ ...`)."""
    name = _relative(path, cwd)
    if kind == "add":
        return _unified(name, "", text, True)
    if kind == "delete":
        return _unified(name, text, "", False)
    if text.startswith("--- "):
        return _cut(text)
    return _cut(f"--- a/{name.lstrip('/')}\n+++ b/{name.lstrip('/')}\n{text}")


def content_diff(path: str, old: str | None, new: str, cwd: str) -> str:
    """The unified diff of a change an agent describes as whole texts (ACP's `diff` content:
    `oldText` None for a new file)."""
    return _unified(_relative(path, cwd), old or "", new, old is None)


def _relative(path: str, cwd: str) -> str:
    """A path as shown in a diff: relative to the session's folder when inside it."""
    return os.path.relpath(path, cwd) if os.path.isabs(path) and \
        os.path.commonpath([path, cwd]) == cwd else path


def _edits(tool: str, arguments: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(old, new, replace all) of an Edit or each edit of a MultiEdit."""
    items = [arguments] if tool == "Edit" else arguments.get("edits") if tool == "MultiEdit" \
        else None
    if not isinstance(items, list):
        return []
    return [(item["old_string"], item["new_string"], bool(item.get("replace_all")))
            for item in items if isinstance(item, dict)
            and isinstance(item.get("old_string"), str) and isinstance(item.get("new_string"), str)]


def _apply(text: str, edits: list[tuple[str, str, bool]]) -> str | None:
    for old, new, every in edits:
        if old not in text:
            return None
        text = text.replace(old, new) if every else text.replace(old, new, 1)
    return text


def _read(path: str, cwd: str) -> str | None:
    """The file's text now; None when it is missing, too big or unreadable."""
    full = os.path.join(cwd, path)
    try:
        if os.path.getsize(full) > FILE_MAX_BYTES:
            return None
        with open(full, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _unified(path: str, before: str, after: str, new_file: bool) -> str:
    name = path.lstrip("/")
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 "/dev/null" if new_file else f"a/{name}", f"b/{name}")
    return _cut("".join(_line_end(line) for line in lines))


def _cut(diff: str) -> str:
    data = diff.encode("utf-8")
    if len(data) <= DIFF_MAX_BYTES:
        return diff
    return data[:DIFF_MAX_BYTES].decode("utf-8", "ignore").rpartition("\n")[0] + CUT_NOTE


def _line_end(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
