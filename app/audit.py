"""The audit log: one JSON line per remote action, in `<data-dir>/audit.log`.

Who did what, from where, with which kind of token, and how it ended; never the token. Each
channel records in one place: an after_request hook for REST (every POST/PUT/PATCH/DELETE,
named after its endpoint, so a new endpoint is audited without a line of its own) and the
WebSocket MessageHandler. The file is private (0600) and bounded: a line that would take it
past ROTATE_BYTES first moves it to `audit.log.1` (replacing the one before).

Requests refused by the rate limit are not recorded: they ran nothing, and a line per refusal
would let a flood push the real entries out.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from .auth import READ_METHODS
from .roles import VIEWER, caller_role
from .sessions.manager import SECRET_MASK
from .store import open_private_file

logger = logging.getLogger(__name__)

AUDIT_FILE = "audit.log"
ROTATE_BYTES = 10 * 1024 * 1024
COMMAND_CAP_BYTES = 4096
KEYS_CAP = 50  # key names kept of one keys action
ID_CAP = 128  # characters kept of an id the client sent (ids we make are far shorter)
# Refused attempts are kept at most once a second per address and action (with a count of
# those left out), so a flood of them cannot rotate the real entries out of the log.
REFUSED_EVERY_S = 1.0
REFUSED_TRACKED = 10_000
READ_BLOCK = 64 * 1024
# Action names shared by both channels, where the endpoint or message type says it otherwise.
ACTION_NAMES = {"send_command": "send", "make_live": "live", "make_offline": "offline"}
# Actions that set something, and the fields of what was sent that the entry keeps as the new
# values (a list, not whatever came: nothing else a client sends, a token say, is written).
SET_FIELDS = {
    "create_session": ("name", "cwd", "toolType", "inputMode", "groupId", "groupName",
                       "groupEmoji"),
    "update_session": ("name", "cwd", "inputMode", "groupId", "groupName", "groupEmoji"),
    "set_theme": ("id",),
    "new_tab": ("name",),
    "update_tab": ("name", "starred", "permissionMode", "model"),
    "rename_tab": ("name",),
    "switch_mode": ("mode",),
}
VALUE_CAP = 512  # characters kept of one new value (a name is at most 200, a path may be long)
RATE_LIMITED = 429


def logged_command(text: str, secret: bool = False) -> tuple[str, bool]:
    """What the audit log keeps of a sent text: its first COMMAND_CAP_BYTES bytes (UTF-8),
    and whether it was cut; only a mask when it was typed into a password prompt (`secret`).
    """
    if secret:
        return SECRET_MASK, False
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= COMMAND_CAP_BYTES:
        return text, False
    return data[:COMMAND_CAP_BYTES].decode("utf-8", "ignore"), True


def outcome(role: str | None, status: int) -> str:
    """`ok`, `forbidden` (a view-only token tried to act) or `failed`."""
    if status < 400:
        return "ok"
    return "forbidden" if role == VIEWER and status == 403 else "failed"


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _dig(mapping: Mapping[str, Any], *keys: str) -> Any:
    value: Any = mapping
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def new_values(action: str, sent: Mapping[str, Any]) -> dict[str, Any] | None:
    """The values an action set, from what was sent: texts cut to VALUE_CAP characters,
    true/false/null as they are, anything else left out; None when it sets nothing."""
    values = {}
    for field in SET_FIELDS.get(action, ()):
        value = sent.get(field)
        if isinstance(value, str):
            values[field] = value[:VALUE_CAP]
        elif (value is None or isinstance(value, bool)) and field in sent:
            values[field] = value
    return values or None


def _id(value: Any) -> str | None:
    """An id (or a short word) the client sent, cut to ID_CAP characters."""
    text = _text_or_none(value)
    return text[:ID_CAP] if text is not None else None


class AuditLog:
    """Appends entries (thread-safe) and reads them back a page at a time, newest first."""

    def __init__(self, path: str, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.path = path
        self.rotated_path = path + ".1"
        self._rotate_bytes = rotate_bytes
        self._lock = threading.Lock()
        # (address, action) -> (when a refused attempt was last written, left out since)
        self._refused: dict[tuple[str, str], tuple[float, int]] = {}
        self._last_id = self._read_last_id()

    def record_action(self, *, channel: str, action: str, address: str, role: str | None,
                      status: int, sent: Mapping[str, Any],
                      reply: Mapping[str, Any]) -> None:
        """Record one action from what the client sent and what it was answered.

        `sent` holds the request's fields (sessionId, tabId, command, keys, ...), `reply`
        the answer's body; either may lack any of them.
        """
        entry: dict[str, Any] = {
            "time": _now_iso(), "address": address, "role": role, "channel": channel,
            "action": ACTION_NAMES.get(action, action),
            "sessionId": _id(sent.get("sessionId")) or _id(_dig(reply, "session", "id")),
            "tabId": _id(sent.get("tabId")) or _id(reply.get("tabId")) or _id(
                _dig(reply, "tab", "id")),
            "approvalId": _id(sent.get("approvalId")),
            "decision": _id(sent.get("decision")),
        }
        entry["values"] = new_values(entry["action"], sent)
        command = sent.get("command")
        if isinstance(command, str) and entry["action"] == "send":
            entry["command"], cut = logged_command(command, secret=reply.get("secret") is True)
            if cut:
                entry["commandTruncated"] = True
            entry["mode"] = _text_or_none(reply.get("mode"))
        keys = sent.get("keys")
        if isinstance(keys, list) and entry["action"] == "keys":
            entry["keys"] = [str(key)[:20] for key in keys[:KEYS_CAP]]
        entry.update(status=status, outcome=outcome(role, status))
        if entry["outcome"] == "forbidden":
            left_out = self._refused_left_out(address, entry["action"])
            if left_out is None:
                return
            if left_out:
                entry["leftOut"] = left_out  # refused attempts not written since the last one
        self._append({key: value for key, value in entry.items() if value is not None})

    def _refused_left_out(self, address: str, action: str) -> int | None:
        """None when this refused attempt is not to be written (one a second is), else how
        many were left out before it."""
        key, now = (address, action), time.monotonic()
        with self._lock:
            last, left_out = self._refused.pop(key, (-math.inf, 0))
            if now - last < REFUSED_EVERY_S:
                self._refused[key] = (last, left_out + 1)
                return None
            self._refused[key] = (now, 0)
            while len(self._refused) > REFUSED_TRACKED:
                del self._refused[next(iter(self._refused))]  # the least recently refused
            return left_out

    def _append(self, entry: dict[str, Any]) -> None:
        """Write one line; a failure is logged, never raised (the action has already run)."""
        with self._lock:
            self._last_id += 1
            # ASCII JSON: any text, lone surrogates included, reads back as it was sent.
            line = (json.dumps({"id": self._last_id, **entry}) + "\n").encode("ascii")
            try:
                self._write(line)
            except OSError:
                logger.exception("could not write the audit log %s", self.path)

    def _write(self, line: bytes) -> None:
        fd = open_private_file(self.path, os.O_RDWR | os.O_APPEND)
        try:
            size = os.fstat(fd).st_size
            if size and size + len(line) > self._rotate_bytes:
                os.close(fd)
                fd = -1
                os.replace(self.path, self.rotated_path)
                fd = open_private_file(self.path, os.O_RDWR | os.O_APPEND)
            elif size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # the last line was cut short (a crash, a full disk)
            while line:  # a full disk may take part of it
                line = line[os.write(fd, line):]
        finally:
            if fd >= 0:
                os.close(fd)

    def page(self, limit: int, before: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` entries with an id below `before` (default: all), newest first,
        and whether older ones exist."""
        entries: list[dict[str, Any]] = []
        with contextlib.closing(self._newest_first()) as newest_first:
            for entry in newest_first:
                if before is not None and entry["id"] >= before:
                    continue
                if len(entries) == limit:
                    return entries, True
                entries.append(entry)
        return entries, False

    def _newest_first(self) -> Iterator[dict[str, Any]]:
        """Every entry, newest first, from a consistent snapshot of both files.

        Both are opened, and the current one's size taken, under the writer's lock: a
        rotation or an append afterwards changes nothing this reader sees.
        """
        handles: list[tuple[BinaryIO, int]] = []
        with self._lock:
            for path in (self.path, self.rotated_path):
                try:
                    handle = open(path, "rb")  # noqa: SIM115 - closed below, after reading
                except FileNotFoundError:
                    continue
                handles.append((handle, os.fstat(handle.fileno()).st_size))
        try:
            lowest = None
            for handle, size in handles:
                for line in _lines_backwards(handle, size):
                    entry = _parse(line)
                    if entry is not None and (lowest is None or entry["id"] < lowest):
                        lowest = entry["id"]
                        yield entry
        finally:
            for handle, _ in handles:
                handle.close()

    def _read_last_id(self) -> int:
        newest, _ = self.page(1)
        return newest[0]["id"] if newest else 0


def _parse(line: bytes) -> dict[str, Any] | None:
    """An entry, or None for a line that is not one (cut short by a crash)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
        return None
    return entry


def _lines_backwards(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """The lines of the first `size` bytes of a file, last first, read in blocks."""
    position = size
    tail = b""
    while position > 0:
        step = min(READ_BLOCK, position)
        position -= step
        handle.seek(position)
        block = handle.read(step) + tail
        lines = block.split(b"\n")
        tail = lines.pop(0)  # may continue in the block before
        for line in reversed(lines):
            if line:
                yield line
    if tail:
        yield tail


# -- the REST channel ---------------------------------------------------------------------

def init_audit(app: Flask) -> None:
    """Record every REST action that reached a route, whatever its answer."""
    app.after_request(_record_http_action)


def _record_http_action(response: Response) -> Response:
    if (request.method in READ_METHODS or request.endpoint is None
            or response.status_code == RATE_LIMITED):
        return response
    view_args = request.view_args or {}
    body = _request_object()
    sent = {**body, "sessionId": view_args.get("session_id"),
            "tabId": view_args.get("tab_id") or body.get("tabId"),
            "approvalId": view_args.get("approval_id")}
    reply = response.get_json(silent=True) if response.is_json else None
    current_app.extensions["maestro"].audit.record_action(
        channel="http", action=request.endpoint.rpartition(".")[2],
        address=request.remote_addr or "-", role=caller_role(),
        status=response.status_code, sent=sent,
        reply=reply if isinstance(reply, dict) else {})
    return response


def _request_object() -> dict[str, Any]:
    """The request's JSON object, or {} (no body, not JSON, or too large to read)."""
    try:
        data = request.get_data(cache=True)
        body = json.loads(data) if data else {}
    except (RequestEntityTooLarge, ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}
