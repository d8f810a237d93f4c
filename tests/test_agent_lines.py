"""An agent's output stream, split into lines in linear time and with a cap per line."""

from __future__ import annotations

import random

from app.sessions.agents.lines import CUT_NOTE, LineSplitter


def test_lines_come_out_whole_whatever_the_chunking():
    text = "".join(f"line {n}\n" for n in range(2000)) + "last without newline"
    rng = random.Random(3)
    splitter, lines, at = LineSplitter(), [], 0
    while at < len(text):
        step = rng.randint(1, 50)
        lines += splitter.feed(text[at:at + step])
        at += step
    assert lines == [f"line {n}" for n in range(2000)]
    assert splitter.rest() == "last without newline" and splitter.rest() == ""


def test_a_line_of_many_megabytes_in_small_reads_is_kept_whole_below_the_cap():
    splitter = LineSplitter(max_line=64 * 1024 * 1024)
    piece = "x" * 4096
    for _ in range(5000):  # 20 MB in 4 KiB reads: linear, where re-joining was quadratic
        assert splitter.feed(piece) == []
    (line,) = splitter.feed("\n")
    assert len(line) == 5000 * 4096


def test_a_line_longer_than_the_cap_is_cut_and_says_so():
    splitter = LineSplitter(max_line=1024 * 1024)
    lines = splitter.feed("y" * 3_000_000 + "\nnext\n")
    assert lines[0] == "y" * (1024 * 1024) + CUT_NOTE.format(1)
    assert lines[1] == "next"
