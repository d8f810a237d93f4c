"""Splitting an agent's output stream into lines: in linear time, and with a cap per line.

A stream may send one line of many megabytes in thousands of reads; joining the pieces on
every read would cost quadratic time and memory (a 20 MB line took 30 s and 605 MB). The
pieces are kept until the line ends, and a line longer than the cap is cut.
"""

from __future__ import annotations

MAX_LINE_CHARS = 8 * 1024 * 1024
CUT_NOTE = " [… line cut: longer than {} MiB]"


class LineSplitter:
    """Feed decoded text in any chunking; get back the complete lines (without "\\n")."""

    def __init__(self, max_line: int = MAX_LINE_CHARS) -> None:
        self._max = max_line
        self._parts: list[str] = []
        self._size = 0
        self._cut = False

    def feed(self, text: str) -> list[str]:
        lines, start = [], 0
        while (end := text.find("\n", start)) >= 0:
            self._add(text[start:end])
            lines.append(self.rest())
            start = end + 1
        self._add(text[start:])
        return lines

    def rest(self) -> str:
        """The unfinished line (all of it that was kept), and start a new one."""
        line = "".join(self._parts)
        if self._cut:
            line += CUT_NOTE.format(self._max // (1024 * 1024))
        self._parts, self._size, self._cut = [], 0, False
        return line

    def _add(self, piece: str) -> None:
        room = self._max - self._size
        if len(piece) > room:
            piece, self._cut = piece[:room], True
        if piece:
            self._parts.append(piece)
            self._size += len(piece)
