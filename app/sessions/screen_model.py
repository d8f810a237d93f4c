"""The server's model of a terminal's screen (pyte), fed lazily from the raw PTY stream.

The reader thread only appends bytes (`append`, a bytearray extend); the model parses them
when someone asks for the screen (`snapshot`), or when the backlog passes its bound. Escape
strings (images...) are taken out first (escape_strings.py). What cannot change the screen
is then skipped without parsing: a flood of plain lines (`seq 1 200000`, see
`_without_scrolled_text`), a long line's wrapped-away part (`_without_wrapped_text`), and a
visit to the alternate screen that leaves nothing behind (`_without_alternate_visits`).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections import defaultdict
from typing import Any

import pyte
from pyte import graphics
from pyte import modes as pyte_modes

from .escape_strings import STRING_MAX_BYTES, StringStripper

logger = logging.getLogger(__name__)

BACKLOG_BYTES = 256 * 1024  # unparsed bytes kept before the reader parses them itself
# Private modes that switch to the alternate screen (xterm's 1049 also saves the cursor).
ALTERNATE_MODES = frozenset({47, 1047, 1049})
# Private modes a client must be put in to behave like the program expects (re-sent in `ansi`).
_CARRIED_MODES = (1, 1000, 1002, 1003, 1006, 2004)
# Text that may scroll away unparsed: anything but escapes and controls (bar tab, CR, LF,
# BS) and 0xc2, which starts the UTF-8 form of the C1 controls (U+0080-U+009F) among others
# (one byte class keeps the scan fast); but colours (SGR) and erase-in-line are in (the way
# ls, grep and compilers colour their lines).
# Possessive: nothing after a run is worth backtracking for (5x faster on coloured lines).
_SCROLLING_TEXT = re.compile(rb"(?:[^\x00-\x07\x0b\x0c\x0e-\x1f\x7f\xc2]++|\x1b\[[0-9;]*+[mK])++")
_SGR = re.compile(rb"\x1b\[[0-9;]*m")
_SGR_RESETS = (b"\x1b[m", b"\x1b[0m", b"\x1b[00m", b"\x1b[0;", b"\x1b[00;", b"\x1b[;")
_CRLF = b"\r\n"
# A CSI that sets or resets modes (h, l) or scroll margins (r), as pyte reads one: C0
# controls inside run, `?` anywhere makes it private, spaces and `>` are ignored.
_STATE_SEQUENCE = re.compile(rb"(?:\x1b\[|\xc2\x9b)([0-9;?> \x07-\x0d]*)([hlr])")
# Output that changes nothing but the current screen's cells and the cursor (no mode,
# margins, tab stops, saved cursor, title): printable text, C0 controls, and CSIs that draw,
# erase, move the cursor or set colours.
_DRAWING = rb"(?:[^\x1b\xc2]|\x1b\[[0-9;]*[@A-HJ-MPX`ac-fmn])*"
_DRAWING_ONLY = re.compile(_DRAWING)
_ALTERNATE_SWITCH = re.compile(rb"\x1b\[\?(?:47|1047|1049)[hl]")
# A visit to the alternate screen that only draws (the simple forms of the switches).
_ALTERNATE_VISIT = re.compile(rb"\x1b\[\?(?:47|1047|1049)h" + _DRAWING
                              + rb"\x1b\[\?(?:47|1047|1049)l")
# Any CSI setting (resetting) a mode numbered like a switch to the alternate screen.
_ALTERNATE_MODE = (rb"(?:\x1b\[|\xc2\x9b)[0-9;?> \x07-\x0d]*?(?<![0-9])(?:47|1047|1049)"
                   rb"(?![0-9])[0-9;?> \x07-\x0d]*")
_ALTERNATE_ENTER = re.compile(_ALTERNATE_MODE + b"h")
_ALTERNATE_LEAVE = re.compile(_ALTERNATE_MODE + b"l")
# What follows ESC to end a sequence: a CSI (`[` params intermediates final), a string
# opener (nothing of the string is plain: it never counts as text), or intermediates + final.
_CSI_TAIL = re.compile(rb"[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
_ESCAPE_TAIL = re.compile(rb"\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
                          rb"|[\x20-\x2f]*[\x30-\x4f\x51-\x57\x59-\x5c\x60-\x7e]")

_FG_CODES = {name: code for code, name in {**graphics.FG_ANSI, **graphics.FG_AIXTERM}.items()}
_BG_CODES = {name: code for code, name in {**graphics.BG_ANSI, **graphics.BG_AIXTERM}.items()}
_PALETTE = {colour: index for index, colour in enumerate(graphics.FG_BG_256)}
_FLAGS = (("bold", 1), ("italics", 3), ("underscore", 4), ("blink", 5), ("reverse", 7),
          ("strikethrough", 9))


TITLE_MAX = 1024  # characters of a window title (or icon name) kept
_TITLE_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
DECCOLM_PRIVATE = 3  # the private mode number of DECCOLM (pyte shifts private modes itself)
_TITLE_BYTES = 2 + 4 * TITLE_MAX  # `2;` and as many characters of UTF-8
# Combining marks kept on one cell. pyte NFC-normalises the whole cell at each mark it adds,
# so a run of n marks costs O(n^2) or worse: 20,000 took 34 s of the reader's time.
COMBINING_MAX = 8


@functools.cache
def _combining_runs() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns for a run of more than COMBINING_MAX combining marks, and for the marks a
    string starts with (the characters pyte adds to the cell before the cursor)."""
    marks = [code for code in range(0x110000) if unicodedata.combining(chr(code))]
    ranges: list[list[int]] = []
    for code in marks:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    mark = "[" + "".join(f"{re.escape(chr(low))}-{re.escape(chr(high))}"
                         for low, high in ranges) + "]"
    return re.compile(f"{mark}{{{COMBINING_MAX + 1},}}"), re.compile(f"{mark}+")


class _Screen(pyte.Screen):
    """pyte's screen plus the alternate screen (pyte ignores modes 47/1047/1049): entering
    it keeps the main screen aside and clears; leaving brings the main screen back."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.saved_main: tuple[dict, Any] | None = None  # (buffer, cursor) while alternate

    def draw(self, data: str) -> None:
        """pyte's draw with at most COMBINING_MAX combining marks on a cell."""
        if not data.isascii():
            too_many, leading = _combining_runs()
            data = too_many.sub(lambda run: run.group()[:COMBINING_MAX], data)
            marks = leading.match(data)
            if marks:  # they go on the cell before the cursor, which may hold some already
                room = max(0, COMBINING_MAX + 1 - len(self._cell_before_cursor().data))
                data = data[:room] + data[marks.end():] if room < marks.end() else data
        super().draw(data)

    def _cell_before_cursor(self) -> Any:
        """The cell pyte puts a combining mark on: left of the cursor, or at the end of the
        row above when the cursor is in the first column."""
        if self.cursor.x:
            return self.buffer[self.cursor.y][min(self.cursor.x, self.columns) - 1]
        return self.buffer[max(self.cursor.y - 1, 0)][self.columns - 1]

    def set_title(self, param: str) -> None:
        super().set_title(_shown_title(param))

    def set_icon_name(self, param: str) -> None:
        super().set_icon_name(_shown_title(param))

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        modes = _without_column_mode(modes, kwargs)
        if kwargs.get("private") and ALTERNATE_MODES & set(modes) and self.saved_main is None:
            # Set aside, not copied: a program flipping screens fast must cost little.
            self.saved_main = (self.buffer, _copy_cursor(self.cursor))
            self.buffer = defaultdict(lambda: pyte.screens.StaticDefaultDict(self.default_char))
            self.dirty.update(range(self.lines))
        super().set_mode(*modes, **kwargs)

    def select_graphic_rendition(self, *attrs: int, private: bool = False) -> None:
        """pyte passes `private` for ESC [ ? ... m (vim sends one) but does not take it."""
        if not private:
            super().select_graphic_rendition(*attrs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        modes = _without_column_mode(modes, kwargs)
        if kwargs.get("private") and ALTERNATE_MODES & set(modes) and self.saved_main:
            self.buffer, self.cursor = self.saved_main
            self.saved_main = None
            self.dirty.update(range(self.lines))
        super().reset_mode(*modes, **kwargs)


def _shown_title(param: str) -> str:
    """A title as kept: capped (hostile output may send megabytes of it) and without control
    characters (an escape sequence in a title must not reach whoever shows it)."""
    return _TITLE_CONTROLS.sub("", param[:TITLE_MAX])


def _without_column_mode(modes: tuple[int, ...], kwargs: dict[str, Any]) -> tuple[int, ...]:
    """The modes but DECCOLM (ESC [ ? 3 h/l, 132/80 columns): like xterm and xterm.js by
    default, ignored, or any output could widen the phone's terminal to 132 columns (the
    page sizes xterm.js from GET screen)."""
    if not kwargs.get("private"):
        return modes
    return tuple(mode for mode in modes if mode != DECCOLM_PRIVATE)


def _copy_cursor(cursor: pyte.screens.Cursor) -> pyte.screens.Cursor:
    copy = pyte.screens.Cursor(cursor.x, cursor.y, cursor.attrs)
    copy.hidden = cursor.hidden
    return copy


class ScreenModel:
    """One shell's screen. Thread-safe: `append` from the reader, the rest from anywhere."""

    def __init__(self, cols: int, rows: int, backlog_bytes: int = BACKLOG_BYTES,
                 string_max_bytes: int = STRING_MAX_BYTES) -> None:
        self._backlog_bytes = backlog_bytes
        # Guards _pending and _received (short holds only).
        self._pending_lock = threading.Lock()
        self._pending = bytearray()
        self._received = 0  # bytes appended since the shell started
        # Guards the pyte screen and stream, the strings' stripper, and _consumed (held
        # while parsing).
        self._model_lock = threading.Lock()
        self._screen = _Screen(cols, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._strings = StringStripper(_TITLE_BYTES, string_max_bytes)
        self._consumed = 0  # bytes parsed, skipped or held by the stripper
        self._parse_failed = False  # a parse failure was logged (once per screen: see _feed)

    def append(self, data: bytes) -> None:
        """Take raw output (reader thread): cheap, unless the backlog passes its bound."""
        with self._pending_lock:
            self._pending += data
            self._received += len(data)
            over = len(self._pending) > self._backlog_bytes
        # Never wait here for a snapshot being rendered: it parses the backlog anyway.
        if over and self._model_lock.acquire(blocking=False):
            try:
                self._catch_up()
            finally:
                self._model_lock.release()

    def resize(self, cols: int, rows: int) -> None:
        """Bytes received so far were written for the old size: parse them first."""
        with self._model_lock:
            self._catch_up()
            self._screen.resize(rows, cols)

    def snapshot(self) -> dict[str, Any]:
        """The screen now: cols, rows, lines, cursor, title, offset, alternate, ansi."""
        with self._model_lock:
            self._catch_up()
            screen = self._screen
            return {
                "cols": screen.columns, "rows": screen.lines,
                "lines": [line.rstrip() for line in screen.display],
                "cursor": {"x": screen.cursor.x, "y": screen.cursor.y,
                           "visible": not screen.cursor.hidden},
                "title": screen.title, "offset": self._consumed,
                "alternate": screen.saved_main is not None,
                # The sequence or string the output stopped inside of, so that the bytes
                # after `offset` go on from the same place in the client's terminal.
                "ansi": _paint(screen) + self._strings.pending(),
            }

    def _catch_up(self) -> None:
        """Parse the backlog (model lock held), skipping what leaves no trace on the screen."""
        with self._pending_lock:
            data = bytes(self._pending)
            self._pending.clear()
        self._consumed += len(data)  # skipped bytes too: the screen is the same without them
        data = self._strings.feed(data)  # it ends, and so every piece below starts, in text
        data = _without_alternate_visits(data, self._screen.saved_main is not None)
        start = 0
        for change in _STATE_SEQUENCE.finditer(data):
            if _changes_shortcut_state(change):
                self._parse_segment(data[start:change.end()])
                start = change.end()
        self._parse_segment(data[start:])

    def _parse_segment(self, data: bytes) -> None:
        """Parse `data`, in which margins, autowrap and insert mode stay as they are now (but
        for a change at its very end), less what scrolls or wraps away unseen."""
        screen = self._screen
        if screen.margins not in (None, (0, screen.lines - 1)):  # a scroll region: parse all
            self._feed(data)
            return
        pieces = [data]
        if pyte_modes.DECAWM in screen.mode and pyte_modes.IRM not in screen.mode:
            pieces = _without_wrapped_text(data, screen.lines, screen.columns)
        # 2 x rows line feeds and nothing else blank the screen from anywhere: more do too.
        line_feeds = re.compile(rb"\n{%d,}" % (2 * screen.lines + 1))
        for piece in pieces:
            for part in _without_scrolled_text(piece, screen.lines):
                self._feed(line_feeds.sub(b"\n" * (2 * screen.lines), part))

    def _feed(self, part: bytes) -> None:
        """Parse `part` (model lock held); a sequence pyte chokes on restarts its parser.

        Said once per screen, without the traceback: hostile output can make every chunk
        fail, and a traceback a chunk would flood the log."""
        try:
            self._stream.feed(part)
        except Exception as exc:  # noqa: BLE001 - any pyte failure: the screen stays, parsing restarts
            if not self._parse_failed:
                self._parse_failed = True
                logger.warning("the screen model could not parse this terminal's output "
                               "(%s: %.80s); parsing on, later failures are not logged",
                               type(exc).__name__, exc)
            self._stream = pyte.ByteStream(self._screen)


def _changes_shortcut_state(sequence: re.Match[bytes]) -> bool:
    """A DECSTBM (scroll margins), or a mode change that sets autowrap (?7) or insert (4)."""
    params, final = sequence.groups()
    if final == b"r":
        return True
    codes = re.findall(rb"[0-9]+", params)
    return b"7" in codes if b"?" in params else b"4" in codes


def _without_alternate_visits(data: bytes, alternate: bool) -> bytes:
    """`data` without the visits to the alternate screen that leave no trace: the main
    screen (and cursor) come back as they were, so a visit that only draws and moves the
    cursor can go unparsed. A program flipping screens fast cost ~2 s per MB, parsed.
    `alternate`: the screen is on the alternate screen at the start of `data`.

    A visit is one only if it starts on the main screen: on the main screen, up to the
    first switch to the alternate screen that does not start a visit, visits go at C speed;
    elsewhere the switches are followed one by one.
    """
    pieces: list[bytes] = []
    at = 0
    while alternate:  # up to the switch back
        leave = _ALTERNATE_LEAVE.search(data, at)
        if leave is None:
            return b"".join(pieces) + data[at:]
        piece, alternate = _without_visits_followed(data[at:leave.end()], alternate)
        pieces.append(piece)
        at = leave.end()
    rest = data[at:]
    collapsed = _ALTERNATE_VISIT.sub(b"", rest)
    if not _ALTERNATE_ENTER.search(collapsed):
        return b"".join(pieces) + collapsed
    # (None: the switch left was made by joining what was around a visit, as in
    # `ESC[?10` visit `49h`: hostile output, followed one by one from the start.)
    stays = next((enter.start() for enter in _ALTERNATE_ENTER.finditer(rest)
                  if not _ALTERNATE_VISIT.match(rest, enter.start())), 0)
    pieces.append(_ALTERNATE_VISIT.sub(b"", rest[:stays]))
    pieces.append(_without_visits_followed(rest[stays:], alternate)[0])
    return b"".join(pieces)


def _without_visits_followed(data: bytes, alternate: bool) -> tuple[bytes, bool]:
    """_without_alternate_visits following every switch of screen one by one (slower);
    and whether the screen is on the alternate screen after `data`."""
    pieces: list[bytes] = []
    kept_from = 0
    entered: re.Match[bytes] | None = None  # the switch from the main screen, if simple
    for switch in _STATE_SEQUENCE.finditer(data):
        params, final = switch.groups()
        if final == b"r" or b"?" not in params or not ALTERNATE_MODES & {
                int(code) for code in re.findall(rb"[0-9]+", params)}:
            continue
        simple = _ALTERNATE_SWITCH.fullmatch(switch.group()) is not None
        if final == b"h":
            entered = switch if simple and not alternate else None
            alternate = True
            continue
        if entered and simple and _DRAWING_ONLY.fullmatch(data, entered.end(), switch.start()):
            pieces.append(data[kept_from:entered.start()])
            kept_from = switch.end()
        entered = None
        alternate = False
    pieces.append(data[kept_from:])
    return b"".join(pieces), alternate


def _without_scrolled_text(data: bytes, rows: int) -> list[bytes]:
    """`data` without what a screen of `rows` rows scrolls away unseen: the parts to parse.

    In a run of text (no escapes but colours and erase-in-line, no controls but tab, CR, LF,
    BS) with more than 2 x rows CRLF line ends, everything before its last 2 x rows lines
    can be skipped: from any cursor position, rows line feeds reach the bottom and `rows`
    more scroll every row of the screen away, so the screen afterwards holds only what those
    last lines wrote (each from column 0, after a CR), whatever came before them, in the
    colours in force when they start: the colour changes skipped are parsed (from the last
    reset on). With a scroll region set, lines need not scroll the whole screen: the caller
    does not skip then.
    """
    parts: list[bytes] = []
    kept_from = 0  # start of what has not been put in `parts` yet
    for run in _SCROLLING_TEXT.finditer(data):
        if run.end() - run.start() <= 4 * rows:
            continue
        start = _plain_from(data, run.start())  # past a sequence the run starts inside of
        if start is None or data.count(_CRLF, start, run.end()) <= 2 * rows:
            continue
        cut = run.end()
        for _ in range(2 * rows + 1):  # the line end before the run's last 2 x rows lines
            cut = data.rfind(_CRLF, start, cut)
        parts.append(data[kept_from:start])
        reset = max(data.rfind(form, start, cut) for form in _SGR_RESETS)
        parts.append(b"".join(_SGR.findall(data, max(reset, start), cut)))
        kept_from = cut + len(_CRLF)
    parts.append(data[kept_from:])
    return [part for part in parts if part]


def _after_sequence(data: bytes, start: int) -> int:
    """Where plain text can start after the special byte before `start`: past the rest of
    an escape sequence (ESC [ 3 5 m) or a C1 control's UTF-8 form, which are not text; an
    escape string (OSC, DCS...) runs to a BEL or ST, itself special, so nothing of it is."""
    lead = data[start - 1]
    if lead == 0xC2 and start < len(data) and 0x80 <= data[start] <= 0x9F:  # C1 in UTF-8
        lead, start = data[start] - 0x40, start + 1
    if lead == 0x1B:
        match = _ESCAPE_TAIL.match(data, start)
        return match.end() if match else len(data)
    if lead == ord("["):  # the 8-bit CSI (from C1 above)
        match = _CSI_TAIL.match(data, start)
        return match.end() if match else len(data)
    if lead in b"]PX^_":  # the other C1 strings
        return len(data)
    return start


def _without_wrapped_text(data: bytes, rows: int, cols: int) -> list[bytes]:
    """`data` without what a long line of printable ASCII wraps away unseen: the pieces to parse.

    With autowrap on and insert mode off, such a line fills rows of `cols` cells from where
    it starts. Dropping a whole number of rows' worth from its start leaves its characters
    in the same columns and only scrolls less; when (rows + 1) x cols of them remain, they
    cover the whole screen either way. So a 10 MB line costs what a screen does (parsed,
    it kept the reader busy ~7 s per MB). `data` starts in text, not inside a sequence.
    """
    keep = (rows + 1) * cols
    pieces: list[bytes] = []
    kept_from = 0
    for run in re.finditer(rb"[\x20-\x7e]{%d,}" % (keep + cols), data):
        start = _plain_from(data, run.start())
        if start is None or run.end() - start < keep + cols:
            continue
        pieces.append(data[kept_from:start])
        kept_from = start + (run.end() - start - keep) // cols * cols
    pieces.append(data[kept_from:])
    return [piece for piece in pieces if piece]


def _plain_from(data: bytes, start: int) -> int | None:
    """Where text starts in the printable run at `start`: past an escape sequence's rest
    when one precedes it; None when unknown (inside an escape string)."""
    if start == 0:
        return 0
    before = data[start - 1]
    if before in (0x1B, 0xC2) or (0x80 <= before <= 0x9F and start >= 2
                                  and data[start - 2] == 0xC2):
        after = _after_sequence(data, start if before in (0x1B, 0xC2) else start - 1)
        return after if after < len(data) else None
    return start


def _paint(screen: _Screen) -> str:
    """ANSI that paints `screen` into a fresh terminal of its size, cursor placed."""
    parts = ["\x1b[0m\x1b[H\x1b[2J"]
    if screen.saved_main is not None:  # the main screen underneath, then the alternate one
        buffer, _ = screen.saved_main
        parts += _paint_rows(buffer, screen.columns, screen.lines)
        parts.append("\x1b[?1049h\x1b[H\x1b[2J")
    parts += _paint_rows(screen.buffer, screen.columns, screen.lines)
    parts += [f"\x1b[?{mode}h" for mode in _CARRIED_MODES if (mode << 5) in screen.mode]
    if pyte_modes.DECAWM not in screen.mode:
        parts.append("\x1b[?7l")
    parts.append(f"\x1b[{screen.cursor.y + 1};{screen.cursor.x + 1}H")
    parts.append("\x1b[?25l" if screen.cursor.hidden else "\x1b[?25h")
    return "".join(parts)


def _paint_rows(buffer: dict, columns: int, lines: int) -> list[str]:
    parts: list[str] = []
    for y in range(lines):
        line = buffer.get(y)
        if not line:
            continue
        parts.append(f"\x1b[{y + 1};1H")
        last = max((x for x, char in line.items() if x < columns and (
            char.data != " " or _sgr(char) != "0")), default=-1)
        style = "0"
        for x in range(last + 1):
            char = line[x]
            if char.data == "":  # the right half of a wide character
                continue
            wanted = _sgr(char)
            if wanted != style:
                parts.append(f"\x1b[{wanted}m")
                style = wanted
            parts.append(char.data)
        if style != "0":
            parts.append("\x1b[0m")
    return parts


def _sgr(char: pyte.screens.Char) -> str:
    """The SGR parameters that give a cell its colours and attributes ("0": none)."""
    codes = ["0"]
    codes += [str(code) for name, code in _FLAGS if getattr(char, name)]
    codes += _colour(char.fg, _FG_CODES, 38)
    codes += _colour(char.bg, _BG_CODES, 48)
    return ";".join(codes)


def _colour(colour: str, named: dict[str, int], extended: int) -> list[str]:
    if colour == "default":
        return []
    if colour in named:
        return [str(named[colour])]
    if colour in _PALETTE:
        return [str(extended), "5", str(_PALETTE[colour])]
    if len(colour) == 6:
        try:
            red, green, blue = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
        except ValueError:
            return []
        return [str(extended), "2", str(red), str(green), str(blue)]
    return []
