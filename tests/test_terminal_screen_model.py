"""The screen model's shortcuts (app/sessions/screen_model.py) give the screen a model that
parses every byte gives, for output made of long lines, line floods, escapes and accents,
scroll regions, visits to the alternate screen and escape strings (images), however the
output is cut into reads and parsing batches."""

from __future__ import annotations

import random
import re

import pyte
import pytest

from app.sessions.screen_model import ScreenModel, _paint, _Screen

# An escape string (DCS, SOS, PM, APC, in ESC or C1 form) ended by ST: what xterm never shows.
ESCAPE_STRING = re.compile(rb"(?:\x1b[PX^_]|\xc2[\x90\x98\x9e\x9f])[^\x1b\xc2]*(?:\x1b\\|\xc2\x9c)")


def parsed_in_full(data: bytes, cols: int, rows: int) -> list[str]:
    """What a terminal shows: pyte parsing every byte but escape strings (pyte prints them)."""
    return [line.rstrip() for line in screen_parsed_in_full(data, cols, rows).display]


def screen_parsed_in_full(data: bytes, cols: int, rows: int) -> _Screen:
    screen = _Screen(cols, rows)
    pyte.ByteStream(screen).feed(ESCAPE_STRING.sub(b"", data))
    return screen


def image_string(rng: random.Random) -> bytes:
    """A sixel image (DCS), a kitty image (APC), a PM or SOS string, in ESC or C1 form."""
    opener = rng.choice([b"\x1bPq", b"\x1b_Ga=T,f=100;", b"\x1b^", b"\x1bX", "\x90q".encode(),
                         "\x9f".encode()])
    payload = bytes(rng.choice(b"#0;2;100!20~-$?@ABC\r\n") for _ in range(rng.randrange(200)))
    return opener + payload + rng.choice([b"\x1b\\", "\x9c".encode()])


def random_output(rng: random.Random, cols: int, rows: int) -> bytes:
    pieces = []
    for _ in range(rng.randrange(1, 12)):
        kind = rng.randrange(10)
        if kind == 0:  # a long line that wraps many times
            letters = bytes(rng.randrange(0x21, 0x7f) for _ in range(cols))
            pieces.append(letters * rng.randrange(rows, 6 * rows) + letters[:rng.randrange(cols)])
        elif kind == 1:  # a flood of short lines
            pieces.append(b"".join(b"%d\r\n" % n for n in range(rng.randrange(3 * rows))))
        elif kind == 2:
            pieces.append(b"\x1b[%d;%dH" % (rng.randrange(1, rows + 1), rng.randrange(1, cols)))
        elif kind == 3:  # colours, and coloured lines (ls, grep)
            pieces.append(rng.choice([b"\x1b[3%dm" % rng.randrange(8), b"\x1b[0m", b"".join(
                b"\x1b[01;3%dmdir%d\x1b[0m  \x1b[4%dmfile\x1b[K\r\n" % (n % 8, n, n % 7)
                for n in range(rng.randrange(4 * rows)))]))
        elif kind == 4:
            pieces.append("é\u0301 ü".encode())
        elif kind == 5:
            pieces.append(b"\x1b[?7l" if rng.random() < 0.5 else b"\x1b[?7h")
        elif kind == 6:  # a scroll region (or none), the cursor anywhere
            top = rng.randrange(1, rows + 1)
            bottom = rng.randrange(top, rows + 2)
            pieces.append(rng.choice([b"\x1b[r", b"\x1b[%d;%dr" % (top, bottom)]))
        elif kind == 7:  # visits to the alternate screen, some only drawing
            inside = rng.choice([b"", b"\x1b[?25l", b"\x1b[4r"])
            visit = b"\x1b[?1049h\x1b[2;3H\x1b[31mX\x1b[0m" + inside
            pieces.append((visit + b"\x1b[?1049l\r\n") * rng.randrange(1, 4 * rows))
        elif kind == 8:
            pieces.append(image_string(rng))
        else:
            pieces.append(rng.choice([b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b]2;a title\x07"]))
    return b"".join(pieces)


@pytest.mark.parametrize("seed", range(150))
def test_the_shortcuts_give_the_screen_a_full_parse_gives(seed):
    rng = random.Random(seed)
    cols, rows = rng.randrange(5, 30), rng.randrange(2, 12)
    data = random_output(rng, cols, rows)
    model = ScreenModel(cols, rows, backlog_bytes=rng.randrange(1, 4096))
    read = rng.choice([1, 7, 997])
    for start in range(0, len(data), read):  # chunks like reads, some parsed by the backlog bound
        model.append(data[start:start + read])
    snapshot = model.snapshot()
    full = screen_parsed_in_full(data, cols, rows)
    assert snapshot["lines"] == [line.rstrip() for line in full.display]
    assert snapshot["ansi"] == _paint(full)  # colours and cursor too
    assert snapshot["offset"] == len(data)


def test_a_sequence_cut_by_a_parsing_batch_survives_the_line_flood_after_it():
    # The backlog bound (or a GET screen) can cut the output anywhere: here inside ESC [ 3 1 m.
    # The flood's skip started at the batch's first byte, dropping `1m`: ESC [ 3 then took
    # the digits and line ends kept (`seq`'s) for its parameters, and the screen stayed blank.
    flood = b"".join(b"%d\r\n" % n for n in range(3000))
    model = ScreenModel(80, 24)
    model.append(b"red:\x1b[3")
    model.snapshot()
    model.append(b"1m" + flood)
    lines = model.snapshot()["lines"]
    assert lines[-2] == "2999" and lines == parsed_in_full(b"red:\x1b[31m" + flood, 80, 24)


def test_a_switch_made_by_joining_the_ends_of_a_visit_is_parsed_without_failing():
    model = ScreenModel(80, 24)
    model.append(b"\x1b[?10\x1b[?1049hX\x1b[?1049l49hdrawn")
    assert "drawn" in "".join(model.snapshot()["lines"])


def test_a_line_flood_in_a_scroll_region_with_the_cursor_above_it_keeps_the_top_lines():
    data = b"\x1b[10;20r" + b"".join(b"%d\r\n" % n for n in range(1, 3000))
    model = ScreenModel(80, 24)
    model.append(data)
    lines = model.snapshot()["lines"]
    assert lines[:3] == ["1", "2", "3"] and lines == parsed_in_full(data, 80, 24)


def test_an_unterminated_escape_string_gives_the_screen_back_after_its_cap():
    model = ScreenModel(80, 24, string_max_bytes=10_000)
    model.append(b"before\x1bPq" + b"#" * 9_999)  # 10,000 bytes after ESC P: the cap
    assert model.snapshot()["lines"][0] == "before"  # still inside the string: swallowed
    model.append(b"visible")
    assert model.snapshot()["lines"][0] == "beforevisible"


def test_the_snapshot_carries_the_string_the_output_stopped_inside_of():
    # A client paints `ansi`, then the bytes after `offset`: they must go on inside the string.
    model = ScreenModel(80, 24)
    output = b"a\x1bPq#0;2;0;0;0"
    model.append(output)
    snapshot = model.snapshot()
    assert snapshot["offset"] == len(output) and snapshot["ansi"].endswith("\x1bP")
    model.append(b"\x1b[3")
    assert model.snapshot()["ansi"].endswith("\x1b[3")


def test_a_mode_set_just_before_a_line_flood_is_kept():
    # `ESC [ ? 25 l` (hide the cursor) then 3000 lines: the skip used to start inside the
    # sequence, dropping it (and leaving a lone ESC to eat the first byte kept).
    model = ScreenModel(80, 24)
    model.append(b"\x1b[?25l" + b"".join(b"line %d\r\n" % n for n in range(3000)))
    snapshot = model.snapshot()
    assert snapshot["cursor"]["visible"] is False
    assert snapshot["lines"][-2] == "line 2999"


def test_a_ten_megabyte_line_gives_the_screen_a_full_parse_gives():
    line = b"0123456789" * 1_000_000
    model = ScreenModel(80, 24)
    for start in range(0, len(line), 65536):  # as the reader appends it
        model.append(line[start:start + 65536])
    model.append(b"\r\nafter")
    snapshot = model.snapshot()
    assert snapshot["lines"] == parsed_in_full(line[-8000:] + b"\r\nafter", 80, 24)
    assert snapshot["cursor"] == {"x": 5, "y": 23, "visible": True}


def test_output_cannot_change_the_terminal_width():
    # DECCOLM (ESC [ ? 3 h) asked pyte for 132 columns; the page sizes xterm.js from GET
    # screen, so any output could widen the phone's terminal. xterm ignores it by default.
    model = ScreenModel(80, 24)
    model.append(b"\x1b[?3hwide?")
    assert (model.snapshot()["cols"], model.snapshot()["lines"][0]) == (80, "wide?")
    model.append(b"\x1b[?3l")
    assert model.snapshot()["cols"] == 80


def test_a_title_keeps_no_control_characters():
    model = ScreenModel(80, 24)
    model.append(b"\x1b]2;build\x01 \x7fdone\x07")
    assert model.snapshot()["title"] == "build done"
