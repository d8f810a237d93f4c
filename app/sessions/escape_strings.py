"""Escape strings taken out of a terminal's raw output before the screen model parses it.

pyte knows OSC (titles) but not DCS, SOS, PM or APC: it prints their payloads (sixel and
kitty images, tmux passthrough, terminal replies) as text. `StringStripper` drops them, and
every OSC but a window title's, across chunk boundaries and bounded; it also holds back an
escape sequence the chunk ends inside of, so what it returns always ends between sequences.
"""

from __future__ import annotations

import re

# Bytes of one escape string dropped before it counts as unterminated and what follows it
# is output again: a sixel or kitty image is a few MB at most, a stray `ESC P` must not
# hide the screen for good.
STRING_MAX_BYTES = 8 * 1024 * 1024
# Bytes of an unfinished escape sequence a chunk may end with that are held for the next one
# (a longer one is hostile: passed on as it is).
TAIL_MAX_BYTES = 4096

# ESC P (DCS), X (SOS), ] (OSC), ^ (PM), _ (APC), or their C1 forms in UTF-8.
_STRING_START = re.compile(rb"\x1b[PX\]^_]|\xc2[\x90\x98\x9d\x9e\x9f]")
_C1_KIND = {0x90: b"P", 0x98: b"X", 0x9D: b"]", 0x9E: b"^", 0x9F: b"_"}
# What ends a string: ESC (ESC \ is ST; any other escape starts a new sequence), CAN, SUB,
# a C1 control (ST among them); BEL ends an OSC only (xterm, xterm.js).
_STRING_END = re.compile(rb"[\x1b\x18\x1a]|\xc2[\x80-\x9f]")
_OSC_END = re.compile(rb"[\x1b\x07\x18\x1a]|\xc2[\x80-\x9f]")
_ST_C1 = b"\xc2\x9c"
# An escape sequence cut off by the end of the chunk (pyte runs C0 controls inside a CSI).
_UNFINISHED = re.compile(rb"(?:\x1b(?:\[[\x07-\x0d\x30-\x3f]*)?|\xc2(?:\x9b[\x30-\x3f]*)?)"
                         rb"[\x20-\x2f]*\Z")
_TITLE = re.compile(rb"[012];")  # OSC 0, 1, 2: icon name and window title


class StringStripper:
    """Takes the raw output chunk by chunk; returns it without escape strings."""

    def __init__(self, title_bytes: int, string_max_bytes: int = STRING_MAX_BYTES) -> None:
        self._title_bytes = title_bytes  # an OSC title's bytes passed on (more are cut)
        self._string_max = string_max_bytes
        self._held = b""  # an unfinished sequence (or string end) from the last chunk
        self._kind: bytes | None = None  # the string being dropped: P, X, ], ^ or _
        self._length = 0  # its bytes so far
        self._osc = bytearray()  # an OSC's first bytes, passed on if it is a title

    def feed(self, data: bytes) -> bytes:
        data = self._held + data
        self._held = b""
        out: list[bytes] = []
        at = 0
        while at < len(data):
            at = self._string(data, at, out) if self._kind else self._text(data, at, out)
        return b"".join(out)

    def pending(self) -> str:
        """What a terminal that has parsed our output must still be given to be in the state
        the raw output left it in: an unfinished sequence, or the opening of a string."""
        if self._kind is None:
            return self._held.decode("utf-8", "ignore")
        opened = b"\x1b" + self._kind + (bytes(self._osc) if self._kind == b"]" else b"")
        return opened.decode("utf-8", "ignore")

    def _text(self, data: bytes, at: int, out: list[bytes]) -> int:
        start = _STRING_START.search(data, at)
        if start is None:
            unfinished = _UNFINISHED.search(data, max(at, len(data) - TAIL_MAX_BYTES))
            end = unfinished.start() if unfinished else len(data)
            out.append(data[at:end])
            self._held = data[end:]
            return len(data)
        out.append(data[at:start.start()])
        opener = start.group()
        self._kind = _C1_KIND[opener[1]] if opener[0] == 0xC2 else opener[1:]
        self._length = 0
        self._osc.clear()
        return start.end()

    def _string(self, data: bytes, at: int, out: list[bytes]) -> int:
        end = (_OSC_END if self._kind == b"]" else _STRING_END).search(data, at)
        stop = end.start() if end else len(data)
        if end is None and data.endswith(b"\xc2"):  # maybe the first byte of ST
            stop -= 1
        room = self._string_max - self._length
        if stop - at > room:  # unterminated: give up, what follows is output again
            self._kind = None
            return at + room
        self._length += stop - at
        if self._kind == b"]" and len(self._osc) < self._title_bytes:
            self._osc += data[at:min(stop, at + self._title_bytes - len(self._osc))]
        if end is None:
            self._held = data[stop:]
            return len(data)
        if end.group() == b"\x1b":
            if end.end() == len(data):  # ST or a new sequence: the next chunk says
                self._held = b"\x1b"
                return len(data)
            after = end.end() + 1 if data[end.end()] == ord("\\") else end.start()
        else:  # a C1 control other than ST starts what follows; CAN, SUB, BEL, ST end here
            after = end.start() if end.group()[0] == 0xC2 and end.group() != _ST_C1 else end.end()
        self._finish(out)
        return after

    def _finish(self, out: list[bytes]) -> None:
        """The string ended: a title goes on to pyte, whole, ended by BEL."""
        if self._kind == b"]" and _TITLE.match(self._osc):
            title = bytes(self._osc).decode("utf-8", "ignore").encode()
            out.append(b"\x1b]" + title + b"\x07")
        self._kind = None
