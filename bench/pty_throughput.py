"""What the terminal view's screen model costs a flood: `seq 1 200000` through one shell.

    python3 -m bench.pty_throughput [repeats]

Runs the command in a TerminalShell (real bash, real pty; the log view's cleaner and the
raw stream as always) with the screen model (a) left out, (b) as shipped: lazy, plain-text
floods skipped, and (c) parsing every byte as it arrives, and prints the median time from
submit to the command's end, the ratios to (a), and how long a screen snapshot then takes.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from unittest import mock

from app.sessions import screen_model
from app.sessions.terminal import TerminalShell

COMMAND = "seq 1 200000"


class _Listener:
    """Counts what the shell reports; `done` is set when the command ends."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ready = threading.Event()
        self.pty_events = 0

    def on_output(self, text: str) -> None:
        pass

    def on_state(self, state: str) -> None:
        if state == "idle":
            self.ready.set()

    def on_command_done(self, exit_code: int, elapsed_ms: int, cwd: str) -> None:
        self.done.set()

    def on_shell_exit(self, exit_code: int | None) -> None:
        pass

    def on_pty(self, data: bytes, offset: int, reset: bool) -> None:
        self.pty_events += 1

    def on_notice(self, text: str) -> None:
        pass

    def on_echo(self, echo: bool) -> None:
        pass

    def on_command_begin(self) -> None:
        pass


@contextlib.contextmanager
def _variant(name: str) -> Iterator[None]:
    if name == "no model":
        with mock.patch.object(screen_model.ScreenModel, "append", lambda self, data: None):
            yield
    elif name == "eager model":
        shipped_append = screen_model.ScreenModel.append

        def parse_at_once(self: screen_model.ScreenModel, data: bytes) -> None:
            shipped_append(self, data)
            self.resize(self._screen.columns, self._screen.lines)  # parses the backlog

        with mock.patch.object(screen_model.ScreenModel, "append", parse_at_once), \
                mock.patch.object(screen_model, "_without_scrolled_text",
                                  lambda data, rows: [data]):
            yield
    else:
        yield


def run_once(folder: str) -> tuple[float, float, int]:
    """Seconds for the command, seconds for a snapshot afterwards, pty events sent."""
    listener = _Listener()
    shell = TerminalShell(name="bench", shell="bash", cwd=folder, listener=listener,
                          rc_dir=f"{folder}/rc", env={"HOME": folder})
    shell.start()
    try:
        listener.ready.wait(10)
        started = time.perf_counter()
        shell.submit(COMMAND)
        if not listener.done.wait(120):
            raise RuntimeError("the command did not end")
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        shell.screen.snapshot()
        return elapsed, time.perf_counter() - started, listener.pty_events
    finally:
        shell.close()


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("no model", "lazy model (shipped)", "eager model"):
            with _variant(name):
                runs = [run_once(folder) for _ in range(repeats)]
            results[name] = statistics.median(run[0] for run in runs)
            snapshot = statistics.median(run[1] for run in runs)
            events = statistics.median(run[2] for run in runs)
            print(f"{name:22} {results[name]:6.2f} s   snapshot {snapshot * 1000:6.1f} ms   "
                  f"{events:.0f} session:pty events")
    base = results["no model"]
    print("ratios to 'no model': " + ", ".join(
        f"{name} {value / base:.2f}" for name, value in results.items()))


if __name__ == "__main__":
    main()
