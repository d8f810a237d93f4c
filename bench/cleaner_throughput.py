"""How fast the log view's output cleaner runs, bulk vs character by character.

    python3 -m bench.cleaner_throughput [megabytes]

Feeds the same terminal output (in 64 KiB reads, as the pty delivers it) through
OutputCleaner with and without its bulk path, interleaved three times, and prints the
median MB/s of each and the ratio. Inputs: `seq` output, coloured `ls`-like lines, and a
progress bar redrawn with carriage returns (which takes the slow path in both).
"""

from __future__ import annotations

import statistics
import sys
import time

from app.sessions.screen import OutputCleaner

READ = 65536


class CharByCharCleaner(OutputCleaner):
    bulk = False


def inputs(megabytes: float) -> dict[str, str]:
    size = int(megabytes * 1_000_000)
    seq = "".join(f"{n}\r\n" for n in range(1, size // 7))[:size]
    coloured = ("\x1b[0m\x1b[01;34mdirectory\x1b[0m  \x1b[01;32mscript.sh\x1b[0m  "
                "notes.txt\r\n") * (size // 60)
    progress = "".join(f"\rdownloading {n % 100:3d}% [{'=' * (n % 40):<40}]"
                       for n in range(size // 60)) + "\r\n"
    return {"seq": seq, "coloured ls": coloured, "progress bar": progress}


def megabytes_per_second(cleaner_class: type[OutputCleaner], text: str) -> float:
    cleaner = cleaner_class()
    started = time.perf_counter()
    for at in range(0, len(text), READ):
        cleaner.feed(text[at:at + READ])
        cleaner.take_complete()
    return len(text.encode()) / 1e6 / (time.perf_counter() - started)


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{'input':<14}{'char by char':>14}{'bulk':>12}{'ratio':>8}")
    for name, text in inputs(megabytes).items():
        slow, fast = [], []
        for _ in range(3):  # interleaved: drift on a shared machine hits both alike
            slow.append(megabytes_per_second(CharByCharCleaner, text))
            fast.append(megabytes_per_second(OutputCleaner, text))
        slow_mb, fast_mb = statistics.median(slow), statistics.median(fast)
        print(f"{name:<14}{slow_mb:>10.1f} MB/s{fast_mb:>8.1f} MB/s{fast_mb / slow_mb:>7.1f}x")


if __name__ == "__main__":
    main()
