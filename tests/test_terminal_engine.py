"""The terminal engine: output cleaning and coalescing, and a real bash in a real pty."""

from __future__ import annotations

import contextlib
import os
import random
import re
import resource
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from app.sessions import screen
from app.sessions.pty_stream import PtyStream
from app.sessions.screen import MAX_COLUMN, OutputCleaner, OutputCoalescer, split_text
from app.sessions.shell_protocol import Begin, Sentinel, SentinelParser
from app.sessions.terminal import ShellStartError, TerminalShell

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0  # upper bound for anything the shell should do promptly


def clean(*chunks: str) -> str:
    cleaner = OutputCleaner()
    for chunk in chunks:
        cleaner.feed(chunk)
    return cleaner.take_complete() + cleaner.take_partial()


# -- OutputCleaner --------------------------------------------------------------------------


def test_carriage_return_progress_bar_collapses_to_last_state():
    assert clean("downloading 10%\rdownloading 55%\rdownloading 100%\r\n") == (
        "downloading 100%\n")


def test_shorter_overwrite_keeps_the_tail_like_a_terminal():
    assert clean("abcdef\rXY\n") == "XYcdef\n"


def test_colours_are_kept():
    assert clean("\x1b[1;31mred\x1b[0m plain\r\n") == "\x1b[1;31mred\x1b[0m plain\n"


def test_cursor_and_mode_noise_is_removed():
    text = ("\x1b[?2004h\x1b]0;user@host: ~\x07\x1b(B\x1b[?25l\x1b[2J\x1b[H"
            "ok\x1b=\x07\x00\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b[>4;2m\n")
    assert clean(text) == "oklink\n"


def test_sequences_split_across_feeds():
    chunks = ["\x1b", "[3", "2m", "gr", "een\x1b[", "0m \x1b]0;ti", "tle\x1b", "\\done\r", "\n"]
    assert clean(*chunks) == "\x1b[32mgreen\x1b[0m done\n"


def test_every_split_point_gives_the_same_result():
    text = "a\x1b[31mb\x1b[0m\x1b]0;t\x07c\rd\r\n\x1b[2Ke\bf\n"
    whole = clean(text)
    for cut in range(len(text) + 1):
        assert clean(text[:cut], text[cut:]) == whole


def test_erase_line_clears_before_being_dropped():
    assert clean("50% [=====     ]\r\x1b[2Kdone\n") == "done\n"
    assert clean("abcdef\x1b[3D\x1b[K!\n") == "abc!\n"
    assert clean("spinner |\x1b[1G\x1b[0Kfinished\n") == "finished\n"


def test_backspace_moves_left():
    assert clean("ab\bc\n") == "ac\n"
    assert clean("\b\bx\n") == "x\n"


@pytest.mark.parametrize("count", ["99999999999999999999", "50000000", str(MAX_COLUMN + 1)])
@pytest.mark.parametrize("final", ["C", "G"])
def test_huge_cursor_counts_from_hostile_output_are_clamped(count, final):
    text = clean(f"ab\x1b[{count}{final}end\n")
    assert text.endswith("end\n") and text.startswith("ab")
    assert len(text) <= MAX_COLUMN + len("end\n")


def test_cursor_moves_never_pad_past_the_column_limit():
    text = clean(("\x1b[99999999C." * 1000) + "\n")
    assert len(text) == MAX_COLUMN + 1000 + 1 and text.count(".") == 1000


def test_huge_counts_elsewhere_are_harmless():
    assert clean("abc\x1b[99999999999999999999D!\n") == "!bc\n"
    assert clean("abc\x1b[99999999999999999999K!\n") == "abc!\n"
    assert clean("\x1b[99999999999999999999mred\n") == "\x1b[99999999999999999999mred\n"


def test_split_text_keeps_every_character_and_cuts_at_line_ends():
    text = "".join(f"line {n}\n" for n in range(5000)) + "x" * 40000
    chunks = split_text(text, 1000)
    assert "".join(chunks) == text
    assert all(0 < len(chunk) <= 1000 for chunk in chunks)
    assert all(chunk.endswith("\n") for chunk in chunks if "line" in chunk)


class CharByCharCleaner(OutputCleaner):
    bulk = False


PIECES = ["plain", " ", "\t", "\n", "\r\n", "\r", "\b", "\x1b[31m", "\x1b[0m", "\x1b[m",
          "\x1b[1;38;5;208m", "\x1b[" + "1;" * 31 + "1m", "\x1b[" + "1" * 64 + "m",
          "\x1b[" + "1" * 65 + "m", "\x1b[2K", "\x1b[3D", "\x1b[?25l", "\x1b]0;title\x07",
          "\x1b(B", "\x00", "\x07", "\x7f", "\x9b31m", "é", "\u2603", "\x1b", "\x1b["]


@pytest.mark.parametrize("seed", range(40))
def test_bulk_cleaning_gives_exactly_what_character_by_character_cleaning_gives(seed):
    rng = random.Random(seed)
    text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 400)))
    cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 8))))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    bulk, reference = OutputCleaner(), CharByCharCleaner()
    for chunk in chunks:
        bulk.feed(chunk)
        reference.feed(chunk)
        assert bulk.take_complete() == reference.take_complete()
        assert bulk.partial() == reference.partial()


def test_partial_line_and_take_partial():
    cleaner = OutputCleaner()
    cleaner.feed("line\nContinue? [y/N] ")
    assert cleaner.partial() == "Continue? [y/N] "
    assert cleaner.take_complete() == "line\n"
    assert cleaner.take_partial() == "Continue? [y/N] "
    cleaner.feed("\rnew")
    assert cleaner.partial() == "new"
    assert cleaner.pending_size() == 3


# -- OutputCoalescer ------------------------------------------------------------------------


def make_coalescer(**options: float) -> tuple[OutputCoalescer, list[str]]:
    emitted: list[str] = []
    return OutputCoalescer(emitted.append, **options), emitted


def test_fast_output_is_coalesced_into_few_entries():
    coalescer, emitted = make_coalescer()
    for i in range(1000):  # 1000 lines within 10 ms
        coalescer.feed(f"line {i}\r\n", now=i * 0.00001)
        coalescer.tick(now=i * 0.00001)
    assert emitted == ["line 0\n"]  # the first line after a quiet spell goes out at once
    assert coalescer.due(0.01) == pytest.approx(0.04, abs=1e-4)
    coalescer.tick(now=0.051)
    assert emitted == ["line 0\n", "".join(f"line {i}\n" for i in range(1, 1000))]
    assert coalescer.due(0.051) is None


def test_the_first_lines_after_a_quiet_spell_are_emitted_at_once():
    coalescer, emitted = make_coalescer(flush_interval=0.05)
    coalescer.feed("hi\r\n", now=1.0)
    assert emitted == ["hi\n"]
    coalescer.feed("more\r\n", now=1.01)  # right after: held for the timer
    assert emitted == ["hi\n"]
    coalescer.tick(now=1.07)
    assert emitted == ["hi\n", "more\n"]
    coalescer.feed("next\r\n", now=1.1)  # within the interval after that entry: held
    assert emitted == ["hi\n", "more\n"]
    coalescer.tick(now=1.2)
    coalescer.feed("later\r\n", now=1.5)  # quiet again
    assert emitted == ["hi\n", "more\n", "next\n", "later\n"]
    coalescer.flush_all()  # a command ended: the next one's first line is not held back
    coalescer.feed("next command\r\n", now=1.51)
    assert emitted[-1] == "next command\n"


def test_raw_stream_sends_output_after_a_quiet_spell_at_once_and_coalesces_the_rest():
    emitted: list[tuple[bytes, int, bool]] = []
    stream = PtyStream(lambda *chunk: emitted.append(chunk), interval=0.016)
    stream.feed(b"a", now=1.0)  # a key's echo
    assert emitted == [(b"a", 0, True)]
    stream.feed(b"b", now=1.001)
    stream.feed(b"c", now=1.002)
    assert stream.due(1.002) == pytest.approx(0.015, abs=1e-6)
    stream.tick(now=1.02)
    assert emitted == [(b"a", 0, True), (b"bc", 1, False)]
    stream.feed(b"d", now=1.03)  # within the interval after that chunk: held
    assert len(emitted) == 2
    stream.tick(now=1.05)
    stream.feed(b"e", now=1.2)
    assert emitted[2:] == [(b"d", 3, False), (b"e", 4, False)]


def test_output_is_emitted_at_once_past_flush_bytes():
    coalescer, emitted = make_coalescer(flush_bytes=16384)
    line = "x" * 99 + "\n"
    coalescer.feed(line, now=0.0)  # the first line after a quiet spell goes out at once
    for _ in range(200):  # 20000 chars at the same instant
        coalescer.feed(line, now=0.0)
    # 164 lines were pending: the most whole lines that fit in 16384 go out at once; the
    # rest waits (for more, or the timer), so a flood makes few full entries
    assert emitted == [line, line * 163]
    coalescer.flush_all()
    assert "".join(emitted) == line * 201
    coalescer.feed(line, now=0.01)  # after a flush_all(): at once
    coalescer.feed(line * 400, now=0.02)  # 40000 chars in one read
    assert [len(chunk) for chunk in emitted[3:]] == [100, 16300, 16300]
    coalescer.tick(now=0.08)
    assert [len(chunk) for chunk in emitted[3:]] == [100, 16300, 16300, 7400]
    assert all(chunk.endswith("\n") for chunk in emitted)


def test_a_long_unfinished_line_never_overtakes_the_lines_before_it():
    coalescer, emitted = make_coalescer(flush_bytes=100)
    coalescer.feed("a" * 60 + "\n" + "b" * 30 + "\n", now=0.0)  # whole lines, under the limit
    coalescer.feed("c" * 150, now=0.0)  # then an unfinished line past it
    coalescer.flush_all()
    assert "".join(emitted) == "a" * 60 + "\n" + "b" * 30 + "\n" + "c" * 150


def test_one_huge_unfinished_line_is_emitted_past_flush_bytes():
    coalescer, emitted = make_coalescer(flush_bytes=1000)
    coalescer.feed("y" * 1500, now=0.0)
    assert emitted == ["y" * 1000, "y" * 500]


def test_prompt_without_newline_is_emitted_after_quiet():
    coalescer, emitted = make_coalescer(partial_quiet=0.25)
    coalescer.feed("Continue? [y/N] ", now=1.0)
    coalescer.tick(now=1.2)
    assert emitted == []
    assert coalescer.due(1.2) == pytest.approx(0.05)
    coalescer.tick(now=1.25)
    assert emitted == ["Continue? [y/N] "]


def test_changing_partial_line_waits_for_quiet():
    coalescer, emitted = make_coalescer(partial_quiet=0.25)
    for step in range(10):  # a progress bar redrawn every 0.1 s
        now = step * 0.1
        coalescer.feed(f"\r{step * 10}%", now=now)
        coalescer.tick(now=now)
    assert emitted == []
    coalescer.tick(now=0.9 + 0.25)
    assert emitted == ["90%"]


def test_concatenation_is_the_transcript_and_nothing_empty_is_emitted():
    chunks = ["a\r\nb", "\x1b[3", "1mc\x1b[0m\r\n", "", "\x1b[?25l", "50%\r", "100%\r\n",
              "tail \x1b]0;x\x07", "end"]
    coalescer, emitted = make_coalescer()
    now = 0.0
    for chunk in chunks:
        coalescer.feed(chunk, now=now)
        now += 0.02
        coalescer.tick(now=now)
    coalescer.tick(now=now + 0.01)
    coalescer.flush_all()
    coalescer.flush_all()
    coalescer.tick(now=now + 10)
    assert "".join(emitted) == clean(*chunks)
    assert len(emitted) > 1
    assert all(emitted)


# -- sentinels ------------------------------------------------------------------------------


def test_sentinels_are_parsed_across_any_split_and_fakes_are_dropped():
    text = ("out\x1b]697;n0nce;begin;4\x07put\n\x1b]697;WRONG;0;4;/x\x07"
            "\x1b]0;title\x07\x1b]697;n0nce;1;4;/tmp/a;b\x07")
    for cut in range(len(text) + 1):
        parser = SentinelParser("n0nce")
        items = parser.feed(text[:cut]) + parser.feed(text[cut:])
        texts = "".join(item for item in items if isinstance(item, str))
        assert texts + parser.flush() == "output\n\x1b]0;title\x07"
        assert [item for item in items if not isinstance(item, str)] == [
            Begin(4), Sentinel(1, 4, "/tmp/a;b")]


# -- TerminalShell --------------------------------------------------------------------------


class Recorder:
    """A TerminalListener that records every call."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.outputs: list[str] = []
        self.states: list[str] = []
        self.done: list[tuple[int, int, str]] = []
        self.exits: list[int | None] = []
        self.pty: list[tuple[bytes, int, bool]] = []
        self.notices: list[str] = []
        self.echoes: list[bool] = []
        self.begins = 0
        self.order: list[str] = []  # call kinds, in order

    def _record(self, kind: str, into: list, value: object) -> None:
        with self.changed:
            into.append(value)
            self.order.append(kind)
            self.changed.notify_all()

    def on_output(self, text: str) -> None:
        self._record("output", self.outputs, text)

    def on_state(self, state: str) -> None:
        self._record(f"state:{state}", self.states, state)

    def on_command_done(self, exit_code: int, elapsed_ms: int, cwd: str) -> None:
        self._record("done", self.done, (exit_code, elapsed_ms, cwd))

    def on_shell_exit(self, exit_code: int | None) -> None:
        self._record("exit", self.exits, exit_code)

    def on_pty(self, data: bytes, offset: int, reset: bool) -> None:
        with self.changed:  # not in `order`: it interleaves with everything
            self.pty.append((data, offset, reset))
            self.changed.notify_all()

    def on_notice(self, text: str) -> None:
        self._record("notice", self.notices, text)

    def on_echo(self, echo: bool) -> None:
        self._record(f"echo:{echo}", self.echoes, echo)

    def on_command_begin(self) -> None:
        with self.changed:  # not in `order`: the tests of call order predate it
            self.begins += 1

    def pty_bytes(self) -> bytes:
        with self.changed:
            return b"".join(data for data, _, _ in self.pty)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), f"timed out; calls: {self.order}"

    def text(self, start: int = 0) -> str:
        with self.changed:
            return "".join(self.outputs[start:])


class Harness:
    def __init__(self, shell: TerminalShell, recorder: Recorder) -> None:
        self.shell = shell
        self.rec = recorder

    def run(self, command: str, timeout: float = WAIT) -> tuple[int, str]:
        """Run a command to completion; return its exit code and output."""
        rec = self.rec
        done_before, out_before = len(rec.done), len(rec.outputs)
        assert self.shell.submit(command) == "command"
        rec.wait_for(lambda: len(rec.done) > done_before, timeout)
        return rec.done[done_before][0], rec.text(out_before)

    def wait_state(self, state: str) -> None:
        self.rec.wait_for(lambda: self.shell.state == state and self.rec.states[-1] == state)


@pytest.fixture
def make_shell(tmp_path) -> Iterator[Callable[..., Harness]]:
    shells: list[TerminalShell] = []

    def make(start: bool = True, **options) -> Harness:
        recorder = Recorder()
        options = {"name": "test", "shell": "bash", "cwd": str(tmp_path),
                   "listener": recorder, "rc_dir": str(tmp_path / "rc"),
                   "env": {"HOME": str(tmp_path)}, **options}
        shell = TerminalShell(**options)
        shells.append(shell)
        harness = Harness(shell, recorder)
        if start:
            shell.start()
            harness.wait_state("idle")
        return harness

    yield make
    for shell in shells:
        shell.close()


def alive(pid: int) -> bool:
    """Running, not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def wait_for_program(shell: TerminalShell, name: str) -> None:
    """Wait until a process called `name` runs in the shell's session: a signal
    sent before the shell hands it the terminal would reach only bash."""
    stop = threading.Event()
    for _ in range(int(WAIT / 0.02)):
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{entry}/stat") as stat_file:
                    stat = stat_file.read()
            except FileNotFoundError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if stat.split("(", 1)[1].startswith(name + ")") and int(fields[3]) == shell.pid:
                return
        stop.wait(0.02)
    pytest.fail(f"{name} did not start")


def test_shell_becomes_idle_after_connecting(make_shell):
    h = make_shell()
    assert h.rec.states[:2] == ["connecting", "idle"]
    assert isinstance(h.shell.pid, int) and alive(h.shell.pid)


def test_echo_output_and_exit_codes(make_shell, tmp_path):
    h = make_shell()
    assert h.run("echo hello") == (0, "hello\n")
    code, output = h.run("false")
    assert (code, output) == (1, "")
    assert h.run("echo $?") == (0, "1\n")  # $? survives into the next command
    assert h.rec.done[0][2] == str(tmp_path)
    order = h.rec.order
    first = order.index("state:busy")
    assert order[first:first + 4] == ["state:busy", "output", "done", "state:idle"]


def test_cd_and_export_persist(make_shell):
    h = make_shell()
    assert h.run("cd /tmp")[0] == 0
    assert h.run("pwd") == (0, "/tmp\n")
    assert h.shell.cwd == "/tmp" and h.rec.done[-1][2] == "/tmp"
    h.run("export X=1; declare -a ARR=(a b)")
    assert h.run('echo "$X ${ARR[1]}"') == (0, "1 b\n")


def test_a_fake_sentinel_is_just_noise(make_shell):
    h = make_shell()
    code, output = h.run(r"printf '\033]697;abc;0;1;/x\007visible\n'; sleep 0.3; echo end")
    assert (code, output) == (0, "visible\nend\n")


def test_multi_line_command_runs_once(make_shell):
    h = make_shell()
    h.run("n=0")
    code, output = h.run("n=$((n+1))\nif true; then\n  echo \"n=$n\"\nfi\necho 'it''s'")
    assert (code, output) == (0, "n=1\nits\n")
    assert h.run("echo $n") == (0, "1\n")


def test_long_command_is_not_truncated(make_shell):
    h = make_shell()
    word = "w" * 10000
    assert h.run(f"echo {word} | wc -c") == (0, "10001\n")


def test_a_short_command_after_a_long_one_runs_as_sent(make_shell):
    h = make_shell()
    assert h.run("echo " + "a" * 500) == (0, "a" * 500 + "\n")
    assert h.run("echo b") == (0, "b\n")  # nothing left over from the longer command


def test_answering_a_read_prompt(make_shell):
    h = make_shell()
    out_before = len(h.rec.outputs)
    assert h.shell.submit("read -p 'Continue? [y/N] ' a; echo got $a") == "command"
    h.wait_state("waiting_input")
    assert h.rec.text(out_before) == "Continue? [y/N] "  # flushed before the state
    assert h.shell.submit("y") == "input"
    h.rec.wait_for(lambda: len(h.rec.done) == 1)
    assert h.rec.done[0][0] == 0
    assert h.rec.text(out_before) == "Continue? [y/N] got y\n"


def test_waiting_input_for_an_external_program(make_shell):
    h = make_shell()
    python = shlex.quote(sys.executable)
    h.shell.submit(f"{python} -c 'print(\"you said\", input(\"> \"))'")
    h.wait_state("waiting_input")
    assert h.shell.submit("hi") == "input"
    h.rec.wait_for(lambda: len(h.rec.done) == 1)
    assert "you said hi" in h.rec.text()


def test_busy_without_reading_is_not_waiting_input(make_shell):
    h = make_shell()
    code, _ = h.run("sleep 0.8")
    assert code == 0
    assert "waiting_input" not in h.rec.states


def test_interrupt_with_sigint(make_shell):
    h = make_shell()
    h.shell.submit("sleep 100")
    wait_for_program(h.shell, "sleep")
    assert h.shell.interrupt() == "SIGINT"
    h.rec.wait_for(lambda: len(h.rec.done) == 1)
    assert h.rec.done[0][0] == 130
    assert h.shell.interrupt() is None  # nothing running any more


def test_interrupt_works_even_when_the_server_ignores_sigint(make_shell):
    """A server started from a script with `&` ignores SIGINT; its shells must not."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        h = make_shell()
    finally:
        signal.signal(signal.SIGINT, previous)
    h.shell.submit("sleep 100")
    wait_for_program(h.shell, "sleep")
    assert h.shell.interrupt() == "SIGINT"


@pytest.mark.parametrize("ignored, stopped_by", [("INT", signal.SIGTERM),
                                                 ("INT TERM", signal.SIGKILL)])
def test_interrupt_escalates_past_ignored_signals(make_shell, ignored, stopped_by):
    h = make_shell(interrupt_grace=0.3)
    h.shell.submit(f"bash -c \"trap '' {ignored}; sleep 100\"")
    wait_for_program(h.shell, "sleep")
    assert h.shell.interrupt() == stopped_by.name
    h.rec.wait_for(lambda: len(h.rec.done) == 1)
    assert h.rec.done[0][0] == 128 + stopped_by
    assert h.run("echo still here") == (0, "still here\n")


def test_interrupting_a_builtin_loop(make_shell):
    h = make_shell()
    h.shell.submit("while true; do :; done")
    h.wait_state("busy")
    assert h.shell.interrupt() == "SIGINT"
    assert h.run("echo alive") == (0, "alive\n")


def test_ctrl_c_key_stops_a_command(make_shell):
    h = make_shell()
    h.shell.submit("sleep 100")
    wait_for_program(h.shell, "sleep")
    h.shell.send_keys(["C-c"])
    h.rec.wait_for(lambda: len(h.rec.done) == 1)
    assert h.rec.done[0][0] == 130


def test_ctrl_c_at_the_prompt_does_not_confuse_the_next_command(make_shell):
    h = make_shell()
    h.shell.send_keys(["C-c"])
    assert h.run("sleep 0.3; echo after") == (0, "after\n")
    assert h.rec.done[0][1] >= 250


def test_keys_typed_at_the_prompt_do_not_break_the_next_command(make_shell):
    h = make_shell()
    h.shell.send_keys(["Up", "Space", "Tab", "Left"])
    assert h.run("echo ok") == (0, "ok\n")


def test_unknown_key_is_rejected(make_shell):
    h = make_shell()
    with pytest.raises(ValueError, match="Bogus"):
        h.shell.send_keys(["Up", "Bogus"])


def test_missing_folder_and_shell_fail_to_start(make_shell, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ShellStartError, match=f"Folder {missing} does not exist"):
        make_shell(start=False, cwd=str(missing)).shell.start()
    with pytest.raises(ShellStartError, match="Shell /bin/zsh2 not found"):
        make_shell(start=False, shell="/bin/zsh2").shell.start()
    assert not list(tmp_path.glob("rc/*"))  # no rc files left behind


def test_close_ends_the_shell_and_its_background_jobs(make_shell, tmp_path):
    fds_before = set(os.listdir("/proc/self/fd"))
    h = make_shell()
    _, output = h.run("sleep 1000 & echo PID=$!")
    background = int(re.search(r"PID=(\d+)", output).group(1))
    shell_pid = h.shell.pid
    assert alive(background) and alive(shell_pid)
    h.shell.close()
    assert not alive(background) and not alive(shell_pid)
    assert h.shell.state == "exited" and h.shell.pid is None
    assert h.rec.exits == []  # closing on purpose is not reported as an exit
    assert not [t for t in threading.enumerate() if t.name == "terminal-test-reader"]
    assert set(os.listdir("/proc/self/fd")) == fds_before
    assert not os.listdir(tmp_path / "rc")
    h.shell.close()  # idempotent


def test_exit_reports_shell_exit(make_shell):
    h = make_shell()
    h.shell.submit("exit 3")
    h.rec.wait_for(lambda: h.rec.exits == [3])
    assert h.shell.state == "exited"
    with pytest.raises(RuntimeError):
        h.shell.submit("echo too late")


def test_hostile_cursor_sequences_leave_the_shell_working(make_shell):
    h = make_shell()
    code, output = h.run(r"printf 'a\e[99999999999999999999Cb\e[50000000Cc\n'; echo after")
    assert code == 0 and output.endswith("after\n") and "c\n" in output
    assert h.run("echo next") == (0, "next\n")


def test_the_reader_survives_a_failing_output_cleaner(make_shell, monkeypatch):
    real_feed = screen.OutputCleaner.feed

    def feed(self, text):
        if "BOOM" in text:
            raise RuntimeError("a bug in the cleaner")
        real_feed(self, text)

    monkeypatch.setattr(screen.OutputCleaner, "feed", feed)
    h = make_shell()
    code, output = h.run("echo BOOM; echo fine")
    assert code == 0 and "BOOM" in output  # shown as plain text, not lost
    assert h.run("echo next") == (0, "next\n")
    assert h.shell.state == "idle"


def test_a_folder_name_with_bel_and_percent_signs_keeps_the_prompt_sentinel_intact(
        make_shell, tmp_path):
    awkward = tmp_path / "bell\a%07 100%25;x"
    awkward.mkdir()
    h = make_shell()
    assert h.run(f"cd {shlex.quote(str(awkward))}") == (0, "")
    assert h.rec.done[-1][2] == str(awkward)
    assert h.run("echo inside") == (0, "inside\n")  # no stray sentinel text in the output
    assert h.shell.cwd == str(awkward)


@pytest.mark.parametrize("spare", range(7))
def test_a_shell_short_of_descriptors_starts_or_fails_cleanly_as_out_of_resources(
        make_shell, spare):
    """With every descriptor but `spare` taken, at any step of start()."""
    h = make_shell(start=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = set(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(map(int, before)) + 1, hard))
    fillers = []
    try:
        with contextlib.suppress(OSError):
            while len(fillers) < 100_000:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
        for fd in fillers[:spare]:
            os.close(fd)
        try:
            h.shell.start()
            failure = None
        except ShellStartError as exc:
            failure = exc
    finally:
        for fd in fillers[spare:]:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if failure is None:  # it runs (bash itself is short of descriptors: just end it)
        h.shell.close()
    else:
        assert failure.out_of_resources
        assert set(os.listdir("/proc/self/fd")) == before  # nothing leaked
        assert h.shell.pid is None or not alive(h.shell.pid)
    assert spare > 0 or failure is not None


def test_a_look_alike_sentinel_start_cannot_swallow_the_real_sentinel():
    text = "before\n\x1b]697;after\nmore\n\x1b]697;n0nce;0;3;/tmp\x07"
    for cut in range(len(text) + 1):
        parser = SentinelParser("n0nce")
        items = parser.feed(text[:cut]) + parser.feed(text[cut:])
        assert [item for item in items if not isinstance(item, str)] == [Sentinel(0, 3, "/tmp")]
        assert "after\nmore\n" in "".join(item for item in items if isinstance(item, str))


def test_output_after_a_stray_sentinel_start_or_open_escape_is_not_lost(make_shell):
    h = make_shell()
    code, output = h.run(r"echo before; printf '\033]697;'; echo after; echo more")
    assert code == 0 and "before" in output
    assert h.run("echo next") == (0, "next\n")
    h.run(r"printf '\033_'")  # an APC string never terminated
    assert h.run("echo ONE") == (0, "ONE\n")
    h.run(r"printf '\033[1'")  # a CSI never finished
    assert h.run("echo NEXT") == (0, "NEXT\n")


def test_colour_codes_with_no_text_between_them_stay_bounded():
    cleaner = OutputCleaner()
    cleaner.feed("\r" + "\x1b[1m" * 200_000 + "\x1b[31m")
    assert cleaner.pending_size() <= 2 * 1024
    cleaner.feed("X\n")
    line = cleaner.take_complete()
    assert line.endswith("\x1b[31mX\n") and len(line) <= 2 * 1024


def test_large_output_arrives_complete_in_few_entries(make_shell):
    h = make_shell()
    out_before = len(h.rec.outputs)
    code, output = h.run("seq 1 20000")
    assert code == 0
    assert output == "".join(f"{i}\n" for i in range(1, 20001))
    assert len(h.rec.outputs) - out_before < 200
