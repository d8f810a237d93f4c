"""Turn raw terminal output into readable log text, and decide when to emit it.

A terminal is a 2-D screen; the phone UI is a log. We emulate just enough of
one line of a terminal (carriage return, backspace, erase-line, horizontal
cursor moves) that progress bars collapse to their final state, keep SGR
colour sequences for the UI to render, and drop every other control sequence.
"""

import re
from collections.abc import Callable

_ESC = "\x1b"
_CSI_MAX = 64  # a CSI longer than this is garbage: give up on it
_STRING_MAX = 4096  # an OSC/DCS never terminated: stop swallowing output after this
# No cursor move takes the column past this. Counts in escape sequences come from
# untrusted output: ESC[99999999999999999999C must cost nothing, not memory and CPU.
MAX_COLUMN = 16384
_SGR_PARAM_CHARS = frozenset("0123456789;:")
_SGR_MAX = 1024  # colour codes kept waiting for a character; hostile output may send millions
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # all C0/C1 but tab, and DEL
# Whole lines that need no terminal emulation: printable text, tabs and SGR colour sequences
# (kept as they are), each ended by \n or the pty's \r\n. Most output is made of these.
_PLAIN_LINES = re.compile(
    "(?:(?:[^\x00-\x1f\x7f-\x9f]++|\t|\x1b\\[[0-9;:]{0,"
    + str(_CSI_MAX) + "}m)*+\r?\n)+")  # possessive: no backtracking within a line
# What plain lines (once their \r\n is \n) never hold: C0/C1 controls but tab and \n.
_NOT_PLAIN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Escape-parser states.
_TEXT, _ESCAPE, _CSI, _ESC_INTERMEDIATE, _STRING, _STRING_ESCAPE = range(6)


class OutputCleaner:
    """Incremental cleaner: feed decoded text in any chunking, read back log text.

    Complete lines accumulate until taken; the current unfinished line is kept
    as a list of cells so that later output can overwrite it like a terminal.
    Each cell is one character prefixed by the SGR sequences written just
    before it.
    """

    def __init__(self) -> None:
        self._done: list[str] = []
        self._done_size = 0
        self._cells: list[str] = []
        self._col = 0
        self._sgr = ""  # SGR sequences seen but not yet attached to a cell
        self._state = _TEXT
        self._seq = ""  # parameters of the CSI being parsed
        self._string_len = 0  # length of the OSC/DCS string being skipped

    bulk = True  # take runs of plain whole lines at once (False: character by character)

    def feed(self, text: str) -> None:
        i, end = 0, len(text)
        while i < end:
            if self._state == _TEXT:
                if self.bulk and not self._cells and not self._col and not self._sgr:
                    # Fastest path: at a line start, whole plain lines are already clean.
                    lines, lines_end = _plain_lines(text, i)
                    if lines:
                        self._add_done(lines)
                        i = lines_end
                        continue
                # Fast path: a run of printable characters.
                match = _CONTROL.search(text, i)
                stop = match.start() if match else end
                if stop > i:
                    self._put_run(text[i:stop])
                    i = stop
                    continue
            self._step(text[i])
            i += 1

    def _step(self, ch: str) -> None:
        state = self._state
        if state == _TEXT:
            self._text_char(ch)
        elif state == _ESCAPE:
            self._escape_char(ch)
        elif state == _CSI:
            self._csi_char(ch)
        elif state == _ESC_INTERMEDIATE:
            if ch == _ESC:
                self._state = _ESCAPE
            elif "\x30" <= ch <= "\x7e":
                self._state = _TEXT
        elif state == _STRING:
            self._string_char(ch)
        elif ch == "\\":  # _STRING_ESCAPE: ESC \ is the string terminator
            self._state = _TEXT
        else:  # any other ESC ends the string and starts a new sequence
            self._escape_char(ch)

    def take_complete(self) -> str:
        """Return all complete lines (each ending in "\\n") and forget them."""
        text = "".join(self._done)
        self._done.clear()
        self._done_size = 0
        return text

    def partial(self) -> str:
        """The unfinished current line as it would display (with colours)."""
        return "".join(self._cells) + self._sgr

    def take_partial(self) -> str:
        """Return the unfinished line and start a fresh one.

        Later text then starts at column 0 of an empty line, so a carriage
        return cannot overwrite text that was already handed out.
        """
        text = self.partial()
        self._cells = []
        self._col = 0
        self._sgr = ""
        return text

    def end_escape(self) -> None:
        """Forget an escape sequence left unterminated (at a command boundary): text that
        follows is text again, not the rest of an OSC string or a CSI."""
        self._state, self._seq, self._string_len = _TEXT, "", 0

    def give_back(self, lines: str) -> None:
        """Put complete lines taken too early back in front of the pending ones."""
        self._done.insert(0, lines)
        self._done_size += len(lines)

    def has_complete(self) -> bool:
        return bool(self._done)

    def has_partial_text(self) -> bool:
        """True when the unfinished line holds characters, not just colour codes."""
        return bool(self._cells)

    def partial_size(self) -> int:
        """Approximate size of the unfinished line."""
        return len(self._cells) + len(self._sgr)

    def pending_size(self) -> int:
        """Approximate number of characters waiting to be taken."""
        return self._done_size + len(self._cells) + len(self._sgr)

    # -- plain text -----------------------------------------------------------

    def _text_char(self, ch: str) -> None:
        if ch == "\n":
            self._add_done("".join(self._cells) + self._sgr + "\n")
            self._cells = []
            self._col = 0
            self._sgr = ""
        elif ch == "\r":
            self._col = 0
        elif ch == "\b":
            self._col = max(0, self._col - 1)
        elif ch == _ESC:
            self._state = _ESCAPE
        elif ch == "\t" or not (ch < " " or "\x7f" <= ch <= "\x9f"):
            self._put(ch)
        # any other C0/C1 control (BEL, NUL, DEL, ...) is dropped

    def _add_done(self, lines: str) -> None:
        self._done.append(lines)
        self._done_size += len(lines)

    def _put(self, ch: str) -> None:
        cells, col = self._cells, self._col
        if col < len(cells):
            old = cells[col]
            # Keep the overwritten cell's colours unless new ones were given,
            # so the colour state stays right without prefixes piling up.
            cells[col] = (self._sgr or old[:-1]) + ch
        else:
            cells.extend(" " * (col - len(cells)))
            cells.append(self._sgr + ch)
        self._sgr = ""
        self._col = col + 1

    def _put_run(self, run: str) -> None:
        if self._col == len(self._cells):  # appending: the common case
            self._put(run[0])
            self._cells.extend(run[1:])
            self._col += len(run) - 1
        else:
            for ch in run:
                self._put(ch)

    # -- escape sequences -----------------------------------------------------

    def _escape_char(self, ch: str) -> None:
        if ch == "[":
            self._state, self._seq = _CSI, ""
        elif ch in "]P_^X":  # OSC, DCS, APC, PM, SOS: strings ended by BEL/ST
            self._state, self._string_len = _STRING, 0
        elif " " <= ch <= "/":  # e.g. ESC ( B charset select
            self._state = _ESC_INTERMEDIATE
        elif ch != _ESC:
            self._state = _TEXT  # lone ESC + char (ESC =, ESC 7, ...)

    def _csi_char(self, ch: str) -> None:
        if "\x40" <= ch <= "\x7e":
            self._state = _TEXT
            self._csi(self._seq, ch)
        elif ch == _ESC:
            self._state = _ESCAPE
        elif ch in "\x18\x1a" or len(self._seq) >= _CSI_MAX:  # CAN/SUB abort
            self._state = _TEXT
        elif ch >= " ":
            self._seq += ch
        # C0 controls inside a CSI are ignored

    def _string_char(self, ch: str) -> None:
        if ch == "\x07" or ch in "\x18\x1a" or self._string_len >= _STRING_MAX:
            self._state = _TEXT
        elif ch == _ESC:
            self._state = _STRING_ESCAPE
        else:
            self._string_len += 1

    def _csi(self, params: str, final: str) -> None:
        if params and not set(params) <= _SGR_PARAM_CHARS:
            return  # private (?2004h, >4m, ...) or with intermediates: drop
        if final == "m":
            if len(self._sgr) >= _SGR_MAX:  # colours without text between them: keep the last
                self._sgr = self._sgr[len(self._sgr) // 2:]
                self._sgr = self._sgr[self._sgr.find(_ESC):]
            self._sgr += f"{_ESC}[{params}m"
            return
        arg = params.split(";")[0]
        n = min(int(arg), MAX_COLUMN) if arg.isdigit() else 0
        if final == "K":
            self._erase_line(n)
        elif final == "C":
            # Text may already stand past MAX_COLUMN; a move never adds blanks beyond it.
            self._col = max(self._col, min(self._col + max(n, 1), MAX_COLUMN))
        elif final == "D":
            self._col = max(0, self._col - max(n, 1))
        elif final == "G":
            self._col = max(n, 1) - 1

    def _erase_line(self, mode: int) -> None:
        if mode == 0:
            del self._cells[self._col:]
        elif mode == 1:
            end = min(self._col + 1, len(self._cells))
            self._cells[:end] = [" "] * end
        elif mode == 2:
            self._cells = []


class OutputCoalescer:
    """Decide when cleaned output is emitted, so the UI gets few, timely entries.

    Complete lines that come after `flush_interval` seconds without an entry go out at
    once (a command's first line is not held back); after that, lines go out
    `flush_interval` seconds after the first one is pending (or at once past
    `flush_bytes`); an unfinished line (a prompt such as "Continue? [y/N] ") goes out
    once it has been quiet for `partial_quiet` seconds. The caller drives time via `now`
    arguments, `due()` and `tick()`, so no timer thread is needed. The concatenation of
    everything emitted is the cleaned transcript; nothing empty is emitted.
    """

    def __init__(self, emit: Callable[[str], None], *, cleaner: OutputCleaner | None = None,
                 flush_interval: float = 0.05, flush_bytes: int = 16384,
                 partial_quiet: float = 0.25) -> None:
        self._emit_cb = emit
        self._cleaner = cleaner or OutputCleaner()
        self._flush_interval = flush_interval
        self._flush_bytes = flush_bytes
        self._partial_quiet = partial_quiet
        self._lines_since: float | None = None  # when the oldest complete line became pending
        self._partial_since: float | None = None  # when the unfinished line last changed
        self._held_until = 0.0  # lines that come before this wait for the timer

    def feed(self, text: str, now: float) -> None:
        cleaner = self._cleaner
        cleaner.feed(text)
        if cleaner.has_complete() and self._lines_since is None:
            if now >= self._held_until:  # the first lines after a quiet spell: at once
                self._held_until = now + self._flush_interval
                self._emit(cleaner.take_complete())
            else:
                self._lines_since = now
        self._partial_since = now if cleaner.has_partial_text() else None
        if cleaner.pending_size() >= self._flush_bytes:
            # Full entries go out now; the rest of the lines waits for more or for the timer,
            # so a flood makes few big entries rather than one small one per read.
            chunks = split_text(cleaner.take_complete(), self._flush_bytes)
            if chunks and len(chunks[-1]) < self._flush_bytes:
                cleaner.give_back(chunks.pop())
            self._emit_chunks(chunks)
            if cleaner.partial_size() >= self._flush_bytes:  # one huge unfinished line
                # (with the lines given back before it, so nothing goes out of order)
                self._emit(cleaner.take_complete() + cleaner.take_partial())

    def due(self, now: float) -> float | None:
        """Seconds until `tick()` has something to do, or None if nothing is pending."""
        deadlines = []
        if self._lines_since is not None:
            deadlines.append(self._lines_since + self._flush_interval)
        if self._partial_since is not None:
            deadlines.append(self._partial_since + self._partial_quiet)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def tick(self, now: float) -> None:
        cleaner = self._cleaner
        if self._partial_since is not None and now >= self._partial_since + self._partial_quiet:
            # Lines must precede the partial line, so take both together.
            self._emit(cleaner.take_complete() + cleaner.take_partial())
        elif self._lines_since is not None and now >= self._lines_since + self._flush_interval:
            self._held_until = now + self._flush_interval
            self._emit(cleaner.take_complete())

    def end_escape(self) -> None:
        self._cleaner.end_escape()

    def reset(self) -> None:
        """Forget everything pending and start clean (after the cleaner failed)."""
        self._cleaner = OutputCleaner()
        self._lines_since = self._partial_since = None

    def flush_all(self) -> None:
        """Emit everything pending, including an unfinished line. A boundary (a command
        begins or ends, a program waits for input): the next lines go out at once."""
        self._held_until = 0.0
        self._emit(self._cleaner.take_complete() + self._cleaner.take_partial())

    def _emit(self, text: str) -> None:
        self._emit_chunks(split_text(text, self._flush_bytes))

    def _emit_chunks(self, chunks: list[str]) -> None:
        cleaner = self._cleaner
        if not cleaner.has_complete():
            self._lines_since = None
        if not cleaner.has_partial_text():
            self._partial_since = None
        for chunk in chunks:
            self._emit_cb(chunk)


def _plain_lines(text: str, start: int) -> tuple[str, int]:
    """The run of whole plain lines (_PLAIN_LINES) at `start`, with "\n" line ends, and the
    index after it ("" and `start` when there is none).

    Text without escapes or lone CRs up to its last newline (`seq`, logs, most output) is
    checked with one character-class search, ~3x faster than matching it line by line;
    _PLAIN_LINES takes the rest (SGR colours).
    """
    end = text.rfind("\n", start) + 1
    if end:
        lines = text[start:end].replace("\r\n", "\n")
        if _NOT_PLAIN.search(lines) is None:
            return lines, end
    match = _PLAIN_LINES.match(text, start)
    if match is None:
        return "", start
    return match.group().replace("\r\n", "\n"), match.end()


def strip_controls(text: str) -> str:
    """Text without control characters (but newlines and tabs): safe to show as it is."""
    return _CONTROL.sub(lambda match: "\n" if match.group() == "\n" else "", text)


def split_text(text: str, limit: int) -> list[str]:
    """Cut text into pieces of at most `limit` characters, at line ends where possible."""
    chunks = []
    start, end = 0, len(text)
    while end - start > limit:
        cut = text.rfind("\n", start, start + limit) + 1 or start + limit
        chunks.append(text[start:cut])
        start = cut
    if start < end:
        chunks.append(text[start:])
    return chunks
