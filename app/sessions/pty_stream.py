"""The raw PTY byte stream for the terminal view: coalesced chunks with byte offsets, and
where full-screen programs switch to and from the alternate screen.

Both work on bytes as read, with C-speed operations only (extend, find, one regex): the
stream to xterm.js never goes through the log view's per-character cleaner.
"""

from __future__ import annotations

import re
from collections.abc import Callable

PTY_FLUSH_INTERVAL = 0.016  # seconds: about one animation frame
PTY_FLUSH_BYTES = 64 * 1024

# ESC [ ? <modes> h|l, where the modes include 47, 1047 or 1049 (the alternate screen).
_PRIVATE_MODES = re.compile(rb"\x1b\[\?([0-9;]*)([hl])")
_ALTERNATE_MODES = frozenset({b"47", b"1047", b"1049"})
_HELD_MAX = 32  # a private-mode sequence split across reads is at most this long
_PARTIAL_MODES = re.compile(rb"\x1b(\[(\?[0-9;]*)?)?\Z")


class PtyStream:
    """Coalesces raw output into chunks: at most one per `interval` seconds, or at once
    past `limit` bytes; output after a quiet `interval` goes out at once (a key's echo is
    not held back). `emit(data, offset, reset)`: `offset` is the byte offset of `data`
    in the shell's stream; `reset` is true for the first chunk of a new shell. Like
    OutputCoalescer, the caller drives time with `now`, `due()` and `tick()`."""

    def __init__(self, emit: Callable[[bytes, int, bool], None], *,
                 interval: float = PTY_FLUSH_INTERVAL, limit: int = PTY_FLUSH_BYTES) -> None:
        self._emit = emit
        self._interval = interval
        self._limit = limit
        self._buffer = bytearray()
        self._offset = 0  # offset of the buffer's first byte
        self._since: float | None = None  # when the buffer got its first byte
        self._held_until = 0.0  # output that comes before this waits for the timer
        self._reset = True

    def feed(self, data: bytes, now: float) -> None:
        if not data:
            return
        self._buffer += data
        if self._since is None and now >= self._held_until:
            self._held_until = now + self._interval
            self.flush()
        elif self._since is None:
            self._since = now
        if len(self._buffer) >= self._limit:
            self.flush()

    def due(self, now: float) -> float | None:
        """Seconds until tick() has something to emit, or None if nothing is pending."""
        return None if self._since is None else max(0.0, self._since + self._interval - now)

    def tick(self, now: float) -> None:
        if self._since is not None and now >= self._since + self._interval:
            self._held_until = now + self._interval
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data, offset, reset = bytes(self._buffer), self._offset, self._reset
        self._buffer.clear()
        self._offset += len(data)
        self._since = None
        self._reset = False
        self._emit(data, offset, reset)


class AlternateScreenWatch:
    """Splits output where programs enter or leave the alternate screen (vim, less, htop).

    `split(data)` returns [(bytes, alternate)] in order, where `alternate` says whether the
    bytes were written while the alternate screen was active. A sequence cut across two
    reads is held back until the next (at most _HELD_MAX bytes).
    """

    def __init__(self) -> None:
        self.active = False
        self._held = b""

    def split(self, data: bytes) -> list[tuple[bytes, bool]]:
        if self._held:
            data, self._held = self._held + data, b""
        if b"\x1b" not in data[-_HELD_MAX:] and b"\x1b[?" not in data:
            return [(data, self.active)] if data else []
        parts: list[tuple[bytes, bool]] = []
        start = 0
        for match in _PRIVATE_MODES.finditer(data):
            if not _ALTERNATE_MODES & set(match.group(1).split(b";")):
                continue
            entering = match.group(2) == b"h"
            if entering == self.active:
                continue
            end = match.end() if entering else match.start()  # the switch stays with the screen
            parts.append((data[start:end], self.active))
            start = end
            self.active = entering
        partial = _PARTIAL_MODES.search(data, max(start, len(data) - _HELD_MAX))
        if partial is not None:
            self._held = data[partial.start():]
            data = data[:partial.start()]
        parts.append((data[start:], self.active))
        return [(chunk, alternate) for chunk, alternate in parts if chunk]

    def reset(self) -> None:
        """The program ended (its shell prompt came back): the main screen is in use."""
        self.active = False

    def take_held(self) -> bytes:
        """The bytes held back (the shell ended: nothing more will complete them)."""
        held, self._held = self._held, b""
        return held
