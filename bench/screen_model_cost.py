"""What the terminal view's screen model costs per MB of output, this checkout vs another.

    python3 -m bench.screen_model_cost [--tree OTHER_CHECKOUT] [--megabytes 2]

Feeds the same output (in 64 KiB reads, as the pty delivers it) to `ScreenModel` of this
checkout and, with --tree, of another one (`git worktree add /tmp/before <commit>`), each in
a child process, interleaved A, B, A, B; prints the median CPU seconds per MB of each. The
old per-character log cleaner's cost on the same input is the yardstick (issue 10 item 9:
the screen model must not cost per byte what it cost).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The child: feeds the input file to the tree's ScreenModel, prints CPU-s per MB.
CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from app.sessions.screen_model import ScreenModel
with open(sys.argv[2], "rb") as file:
    data = file.read()
model = ScreenModel(120, 40)
started = time.process_time()
for at in range(0, len(data), 65536):
    model.append(data[at:at + 65536])
model.snapshot()
print(json.dumps((time.process_time() - started) / (len(data) / 1e6)))
"""

INPUTS = ("seq", "coloured ls", "screen flips", "screen flips, bare LF", "sixel images")


def output(name: str, megabytes: float) -> bytes:
    """`megabytes` of one kind of terminal output (bytes as the pty gives them)."""
    size = int(megabytes * 1_000_000)
    if name == "seq":
        unit = b"".join(b"%d\r\n" % n for n in range(1, 200_000))
    elif name == "coloured ls":
        unit = (b"\x1b[0m\x1b[01;34mdirectory\x1b[0m  \x1b[01;32mscript.sh\x1b[0m  "
                b"notes.txt\r\n") * 1000
    elif name == "screen flips":  # a program toggling the alternate screen (ESC[?1049h/l)
        unit = b"\x1b[?1049h\x1b[H\x1b[2JX\x1b[?1049l\r\n" * 1000
    elif name == "screen flips, bare LF":  # the same from a raw-mode program
        unit = b"\x1b[?1049h\x1b[H\x1b[2JX\x1b[?1049l\n" * 1000
    else:  # a sixel image a line of text, as `img2sixel` in a loop prints them
        unit = (b"frame\r\n\x1bPq\"1;1;100;100#0;2;0;0;0#1;2;100;100;0"
                + b"#1~~@@vv@@~~@@~~$#0??}}GG}}??}}??-" * 400 + b"\x1b\\") * 10
    return (unit * (size // len(unit) + 1))[:size]


def cleaner_cost(name: str, megabytes: float) -> float:
    """CPU-s per MB of the log cleaner, character by character (its old path)."""
    import time

    from bench.cleaner_throughput import READ, CharByCharCleaner
    text = output(name, megabytes).decode()
    cleaner = CharByCharCleaner()
    started = time.process_time()
    for at in range(0, len(text), READ):
        cleaner.feed(text[at:at + READ])
        cleaner.take_complete()
    return (time.process_time() - started) / (len(text.encode()) / 1e6)


def model_cost(tree: Path, data_file: Path) -> float:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(data_file)],
                          capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, help="another checkout to compare with")
    parser.add_argument("--megabytes", type=float, default=2)
    args = parser.parse_args()
    this = Path(__file__).resolve().parent.parent
    trees = {"this": this, **({"other": args.tree.resolve()} if args.tree else {})}
    print(f"CPU-s per MB ({args.megabytes:g} MB each, median of 3)")
    print(f"{'input':<24}{'old cleaner':>12}" + "".join(f"{name:>10}" for name in trees))
    for name in INPUTS:
        costs: dict[str, list[float]] = {tree: [] for tree in trees}
        with tempfile.NamedTemporaryFile(suffix=".out") as data_file:
            data_file.write(output(name, args.megabytes))
            data_file.flush()
            for _ in range(3):  # interleaved: drift on a shared machine hits both alike
                for tree, path in trees.items():
                    costs[tree].append(model_cost(path, Path(data_file.name)))
        cleaner = cleaner_cost(name, min(args.megabytes, 1))
        print(f"{name:<24}{cleaner:>12.3f}"
              + "".join(f"{statistics.median(costs[tree]):>10.3f}" for tree in trees))


if __name__ == "__main__":
    main()
