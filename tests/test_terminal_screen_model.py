"""The screen model's shortcuts (app/sessions/screen_model.py) give the screen a model that
parses every byte gives, for output made of long lines, line floods, escapes and accents."""

from __future__ import annotations

import random

import pyte
import pytest

from app.sessions.screen_model import ScreenModel, _Screen


def parsed_in_full(data: bytes, cols: int, rows: int) -> list[str]:
    screen = _Screen(cols, rows)
    pyte.ByteStream(screen).feed(data)
    return [line.rstrip() for line in screen.display]


def random_output(rng: random.Random, cols: int, rows: int) -> bytes:
    pieces = []
    for _ in range(rng.randrange(1, 12)):
        kind = rng.randrange(6)
        if kind == 0:  # a long line that wraps many times
            letters = bytes(rng.randrange(0x21, 0x7f) for _ in range(cols))
            pieces.append(letters * rng.randrange(rows, 6 * rows) + letters[:rng.randrange(cols)])
        elif kind == 1:  # a flood of short lines
            pieces.append(b"".join(b"%d\r\n" % n for n in range(rng.randrange(3 * rows))))
        elif kind == 2:
            pieces.append(b"\x1b[%d;%dH" % (rng.randrange(1, rows + 1), rng.randrange(1, cols)))
        elif kind == 3:
            pieces.append(b"\x1b[3%dm" % rng.randrange(8))
        elif kind == 4:
            pieces.append("é\u0301 ü".encode())
        else:
            pieces.append(b"\x1b[?7l" if rng.random() < 0.5 else b"\x1b[?7h")
    return b"".join(pieces)


@pytest.mark.parametrize("seed", range(60))
def test_the_shortcuts_give_the_screen_a_full_parse_gives(seed):
    rng = random.Random(seed)
    cols, rows = rng.randrange(5, 30), rng.randrange(2, 12)
    data = random_output(rng, cols, rows)
    model = ScreenModel(cols, rows, backlog_bytes=rng.randrange(1, 4096))
    for start in range(0, len(data), 997):  # chunks like reads, some parsed by the backlog bound
        model.append(data[start:start + 997])
    assert model.snapshot()["lines"] == parsed_in_full(data, cols, rows)


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
