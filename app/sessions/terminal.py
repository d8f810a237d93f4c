"""One persistent bash in a pseudo-terminal, seen two ways: command by command (the log
view) and as a raw terminal (the terminal view).

The shell is a normal interactive bash (the user's prompt, echo, readline); its
PROMPT_COMMAND prints an OSC "sentinel" carrying a per-shell nonce, the last exit status,
the number of the command that just ended and $PWD, and PS0 prints a "begin" marker when
bash starts a command. One reader thread owns the master side: it hands the raw bytes to
the terminal view (coalesced) and to the screen model (lazily parsed), splits sentinels out
of the stream, cleans and coalesces each command's output for the log (prompts, echoed
command lines and full-screen redraws left out), notices when the foreground program waits
for terminal input or turned echo off, and makes every listener call, so listeners see
events in a consistent order.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import errno
import logging
import math
import os
import re
import secrets
import select
import shutil
import signal
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ptyprocess import PtyProcess

from .oslayer import LAYER, ExitWatch, Waker
from .procs import OWNER_VAR, Proc, child_setup, end_marked, end_processes
from .pty_stream import AlternateScreenWatch, PtyStream
from .screen import OutputCoalescer, strip_controls
from .screen_model import ScreenModel
from .shell_protocol import KEYS, KILL_LINE, SUBMIT_KEYS, Begin, Sentinel, SentinelParser, rc_script

logger = logging.getLogger(__name__)

CONNECTING, IDLE, BUSY, WAITING_INPUT, EXITED = (
    "connecting", "idle", "busy", "waiting_input", "exited")


_INPUT_CHECK_EVERY = 0.25  # seconds between "is it waiting for input?" checks
_PARTIAL_QUIET = 0.25  # an unfinished line is shown after this much silence
_CLOSE_GRACE = 1.0  # seconds between SIGHUP, SIGTERM and SIGKILL when closing
_WRITE_TIMEOUT = 5.0  # give up writing input the program does not read
_WRITE_POLL_S = 0.1  # a write waiting for room looks this often whether Stop dropped it
NOT_READING = "The running program is not reading its input"
DROPPED_BY_STOP = "Input dropped by Stop: the program it was typed for is being stopped"
_EXIT_DRAIN = 0.5  # at most this long to collect output after the shell died
_READ_MAX = 65536  # bytes read per wake-up before they are processed
_POLL_QUIET_CHECKS = 2  # checks without output before a program polling the tty waits
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM})
# Descriptors start() needs at once: ptyprocess's exec-error pipe and the pty pair while it
# forks (it leaks the pipe if the pty cannot be had), then the exit watch (a pidfd) and the
# waker (an eventfd, or a pipe's two ends).
_SPAWN_DESCRIPTORS = 6


def _descriptors_free(count: int) -> bool:
    """Whether `count` more descriptors could be opened right now."""
    opened: list[int] = []
    try:
        for _ in range(count):
            opened.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        return True
    except OSError:
        return False
    finally:
        for fd in opened:
            os.close(fd)




def _overwrite(path: str, data: bytes) -> None:
    """Replace a file's content in place. Not open(path, "w"): on ext4, a file truncated to
    zero, written and closed is forced to disk at the close (auto_da_alloc), which made
    every command sent wait 2-8 ms before bash could even read it."""
    with open(path, "r+b") as file:
        file.write(data)
        file.truncate()


def _earliest(*delays: float | None) -> float | None:
    """The shortest of the delays that are set (None: none is)."""
    return min((delay for delay in delays if delay is not None), default=None)


class ShellStartError(Exception):
    """The shell could not start; str(e) says why, for the user.

    E.g. 'Folder /x does not exist', 'Shell /bin/zsh2 not found'. `out_of_resources` is
    true when the machine or the server ran out of processes, descriptors or memory.
    """

    def __init__(self, message: str, *, cause: OSError | None = None) -> None:
        super().__init__(message)
        # pty.openpty() hides openpty's EMFILE behind "out of pty devices" (no errno).
        self.out_of_resources = cause is not None and (
            cause.errno in _RESOURCE_ERRNOS or "out of pty devices" in str(cause))


class ShellClosedError(RuntimeError):
    """The shell is not running (not started yet, or it has exited)."""


class TerminalListener(Protocol):
    def on_output(self, text: str) -> None: ...  # a coalesced, cleaned chunk
    def on_state(self, state: str) -> None: ...  # 'connecting' -> 'idle' | 'busy' | 'waiting_input'
    def on_command_done(self, exit_code: int, elapsed_ms: int, cwd: str) -> None: ...
    def on_shell_exit(self, exit_code: int | None) -> None: ...
    def on_pty(self, data: bytes, offset: int, reset: bool) -> None: ...  # raw, coalesced
    def on_notice(self, text: str) -> None: ...  # a note for the log ("vim is using ...")
    def on_echo(self, echo: bool) -> None: ...  # False: the program reads a secret
    def on_command_begin(self) -> None: ...  # a submitted command starts: its output follows


def _shown_echo(text: str) -> str:
    """What the terminal echoes for `text` + Enter typed into a program reading lines
    (printable text only; "" when the echo could not be predicted)."""
    if not text.isprintable():
        return ""
    return text + "\r\n"


class TerminalShell:
    """A bash process in a pseudo-terminal, with the state machine
    connecting -> idle <-> busy <-> waiting_input (and finally 'exited').

    All listener calls come from the reader thread, never while a lock of
    this class is held, so listeners may call back into the shell.
    """

    def __init__(self, *, name: str, shell: str, cwd: str, listener: TerminalListener,
                 rc_dir: str, env: dict[str, str] | None = None, interrupt_grace: float = 2.0,
                 flush_interval: float = 0.05, flush_bytes: int = 16384, cols: int = 120,
                 rows: int = 40) -> None:
        self.name = name
        self._shell = shell
        self._listener = listener
        self._rc_dir = rc_dir
        self._env = dict(env or {})
        self._grace = interrupt_grace
        self._dimensions = (rows, cols)
        self._nonce = secrets.token_hex(8)
        self._files: list[str] = []  # the rc file and the command file
        self._reader: threading.Thread | None = None
        # Reader-thread state.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._sentinels = SentinelParser(self._nonce)
        self._coalescer = OutputCoalescer(self._emit_output, flush_interval=flush_interval,
                                          flush_bytes=flush_bytes, partial_quiet=_PARTIAL_QUIET)
        self._announced: str | None = None  # the state the listener was last told
        self._tty_rdev = 0  # device number of the pty slave
        self._slave: str | None = None  # the pty slave's path, to empty its input on Stop
        self._pty = PtyStream(self._emit_pty)
        self._alternate = AlternateScreenWatch()
        self._log_alternate = False  # the log was told a full-screen program took over
        self._told_full_screen = False  # this command's notice is in the log (once per command)
        self._at_prompt = False  # between a sentinel and the next begin: prompt, typing
        self._announced_echo = True
        self._quiet_checks = 0  # consecutive checks without output while the program polls
        self._output_seen = False  # output since the last check
        self.screen = ScreenModel(cols, rows)

        # Guards _proc, _state, _seq, _begun_seq, _done_seq, _cwd, _started_at,
        # _reading_checks and _closing; _changed (same lock) is notified when a
        # command begins or ends, or the shell exits.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._proc: PtyProcess | None = None
        self._state = CONNECTING
        self._seq = 0  # number of the last command submitted
        self._begun_seq = 0  # number of the last command bash started
        self._done_seq = 0  # number of the last command that ended
        self._cwd = os.path.abspath(cwd)
        self._started_at = 0.0
        self._reading_checks = 0  # consecutive checks that saw a read on the terminal
        self._closing = False
        self._ready = False  # the first prompt came: bash reads commands with readline
        self._queued_keys = b""  # a command sent before that, typed once it is ready
        self._typed = False  # a command typed in the terminal view runs
        self._echo_expected = ""  # the echo of input sent by submit(), kept from the log

        # Guards writes to the master fd, and the master fd and wake fd being
        # open: the reader closes them under this lock when the shell ends. Held only
        # for a call that cannot block (Stop, resize and the reader take it too).
        self._io_lock = threading.Lock()
        self._fd = -1
        # One input written at a time (a paste is not interleaved with another); a writer
        # waits for room in the terminal holding this, never _io_lock.
        self._write_lock = threading.Lock()
        self._stops = 0  # Stops so far: input waiting for room when one comes is dropped
        self._input_stalled = False  # the last input timed out and nothing was taken since
        self._waker: Waker | None = None  # wakes the reader (see _wake_reader)

        # Guards signalling the shell's session against reaping the shell:
        # until it is reaped, its pid (the session id) cannot be reused.
        self._session_lock = threading.Lock()
        self._reaped = False

    # -- public surface -------------------------------------------------------------------

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def pid(self) -> int | None:
        """The shell's pid while it is running (or not yet reaped)."""
        with self._lock:
            return None if self._proc is None or self._reaped else self._proc.pid

    @property
    def cwd(self) -> str:
        """The shell's working directory as of its last prompt."""
        with self._lock:
            return self._cwd

    def start(self) -> None:
        """Spawn the shell. It is 'connecting' until its first prompt, then 'idle'.

        :raise ShellStartError: the folder or the shell is missing, or exec failed.
        """
        with self._lock:
            if self._proc is not None or self._files:
                raise RuntimeError("TerminalShell.start() called twice")
            cwd = self._cwd
        if not os.path.exists(cwd):
            raise ShellStartError(f"Folder {cwd} does not exist")
        if not os.path.isdir(cwd):
            raise ShellStartError(f"{cwd} is not a folder")
        shell = shutil.which(self._shell)
        if shell is None:
            raise ShellStartError(f"Shell {self._shell} not found")
        try:
            rc_path = self._write_rc_files()
        except OSError as exc:
            self._remove_files()
            raise ShellStartError(f"The shell's start-up file could not be written: {exc}",
                                  cause=exc) from exc
        if not _descriptors_free(_SPAWN_DESCRIPTORS):
            self._remove_files()
            raise ShellStartError("No file descriptors are left for another shell",
                                  cause=OSError(errno.EMFILE, os.strerror(errno.EMFILE)))
        env = {**os.environ, **self._env, "TERM": "xterm-256color", "PWD": cwd}
        argv = [shell, "--rcfile", rc_path, "-i"]
        try:
            # chdir in preexec_fn: ptyprocess reports its failure to us, while
            # a failing chdir via its cwd= would raise inside the forked child.
            proc = PtyProcess.spawn(argv, env=env, dimensions=self._dimensions,
                                    preexec_fn=child_setup(cwd, env))
        except OSError as exc:
            self._remove_files()
            raise ShellStartError(f"Shell {self._shell} could not start in {cwd}: {exc}",
                                  cause=exc) from exc
        proc.delayafterclose = proc.delayafterterminate = 0  # we reap it ourselves
        os.set_blocking(proc.fd, False)
        self._tty_rdev = LAYER.tty_device(proc.pid)  # 0 if the shell already died
        self._slave = _slave_path(proc.fd)
        watch: ExitWatch | None = None
        try:
            watch = LAYER.exit_watch(proc.pid, lambda: not proc.isalive())
            waker = LAYER.waker()
        except OSError as exc:  # out of descriptors: undo the spawn, leave nothing behind
            if watch is not None:
                watch.close()
            proc.kill(signal.SIGKILL)
            proc.wait()
            proc.close()
            self._remove_files()
            raise ShellStartError(f"Shell {self._shell} could not start: {exc}",
                                  cause=exc) from exc
        with self._io_lock:
            self._fd = proc.fd
            self._waker = waker
        with self._lock:
            self._proc = proc
        self._reader = threading.Thread(target=self._read_loop, args=(watch,),
                                        name=f"terminal-{self.name}-reader", daemon=True)
        self._reader.start()

    def submit(self, text: str) -> str:
        """Run `text` as a command when idle ("command"); otherwise type it, plus
        a newline, into the running program ("input"). A command sent while the shell
        starts runs once it is ready (its start-up files may take long).

        :raise ShellClosedError: the shell is not running.
        :raise TimeoutError: the program did not take the input within 5 s.
        """
        with self._lock:
            if self._proc is None or self._state == EXITED:
                raise ShellClosedError("The shell is not running")
            if self._state in (IDLE, CONNECTING):
                self._seq += 1
                _overwrite(self._files[1], f"{self._seq}\n{text}".encode())
                self._state = BUSY
                self._started_at = time.monotonic()
                if self._ready:
                    self._write(SUBMIT_KEYS)
                else:
                    self._queued_keys = SUBMIT_KEYS
                kind = "command"
            else:
                self._state = BUSY  # it is about to read what we type
                self._echo_expected = _shown_echo(text) if self._echoes_lines() else ""
                kind = "input"
            self._reading_checks = 0
        if kind == "input":
            self._write((text + "\n").encode())
        self._wake_reader()
        return kind

    def write_input(self, data: bytes) -> None:
        """Type `data` into the terminal as it is, whatever runs (the terminal view's keys).

        :raise ShellClosedError: the shell is not running.
        :raise TimeoutError: nothing took the input within 5 s.
        """
        with self._lock:
            if self._state == WAITING_INPUT:
                self._state = BUSY  # it is about to read what we type
            self._reading_checks = 0
        self._write(data)
        self._wake_reader()

    def resize(self, cols: int, rows: int) -> None:
        """Set the terminal's size (TIOCSWINSZ; the kernel sends SIGWINCH to the foreground
        program) and the screen model's.

        :raise ShellClosedError: the shell is not running.
        """
        with self._lock:
            proc = self._proc
        with self._io_lock:
            if self._fd < 0 or proc is None:
                raise ShellClosedError("The shell is not running")
            proc.setwinsize(rows, cols)
        self.screen.resize(cols, rows)

    def reads_secret(self) -> bool:
        """Whether the program reads a line with echo off (a password prompt: `read -s`,
        sudo, ssh). Full-screen programs turn echo off too, but read keys, not lines."""
        lflag = self._local_modes()
        return lflag is not None and bool(lflag & termios.ICANON) and not lflag & termios.ECHO

    def _echoes_lines(self) -> bool:
        lflag = self._local_modes()
        return lflag is not None and bool(lflag & termios.ICANON) and bool(lflag & termios.ECHO)

    def _local_modes(self) -> int | None:
        """The pty's local modes (c_lflag): on Linux, the master reports the slave's."""
        with self._io_lock:
            if self._fd < 0:
                return None
            try:
                return termios.tcgetattr(self._fd)[3]
            except termios.error:
                return None

    def send_keys(self, keys: list[str]) -> None:
        """Type named keys (see KEYS) into the terminal.

        At the prompt, C-c only clears the line: a SIGINT would make bash drop
        a command submitted right after it.

        :raise ValueError: a key name is unknown; nothing is typed then.
        """
        unknown = [key for key in keys if key not in KEYS]
        if unknown:
            raise ValueError(f"Unknown key '{unknown[0]}'; known keys: {', '.join(KEYS)}")
        data = b"".join(KEYS[key] for key in keys)
        if self.state == IDLE:
            data = data.replace(KEYS["C-c"], KILL_LINE)
        if data:
            self._write(data)

    def interrupt(self) -> str | None:
        """Stop the running command: SIGINT to the foreground process group,
        then SIGTERM and SIGKILL, each after `interrupt_grace` seconds without
        the command ending. Blocks until then.

        :return: the signal that stopped it ("SIGINT", "SIGTERM" or "SIGKILL"),
            or None when no command was running.
        """
        with self._changed:
            if self._state not in (BUSY, WAITING_INPUT):
                return None
            seq = self._seq
            # A SIGINT while bash still reads the command line would only make
            # it drop the line, so wait until it runs the command.
            self._changed.wait_for(
                lambda: self._begun_seq >= seq or self._state == EXITED, self._grace)
        self._drop_typeahead()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            self._signal_foreground(sig)
            with self._changed:
                if self._changed.wait_for(
                        lambda: self._done_seq >= seq or self._state == EXITED, self._grace):
                    return sig.name
        return signal.SIGKILL.name

    def close(self) -> None:
        """End the shell and every process of its session, and wait for the
        reader thread. Idempotent; on_shell_exit is not called for a close.
        """
        with self._lock:
            self._closing = True
            started = self._proc is not None
        if not started:
            return
        self._end_session()
        if self._reader is not threading.current_thread():
            self._reader.join()

    # -- writing --------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write all of `data`, waiting for room at most _WRITE_TIMEOUT (none at all while
        the program has left earlier input untaken).

        :raise ShellClosedError: the shell is not running.
        :raise TimeoutError: the program did not take it (NOT_READING), or a Stop came
            while it waited (DROPPED_BY_STOP); part of it may have been written.
        """
        with self._io_lock:
            stops = self._stops
        deadline = time.monotonic() + _WRITE_TIMEOUT
        if not self._write_lock.acquire(timeout=_WRITE_TIMEOUT):
            raise TimeoutError(NOT_READING)
        try:
            view = memoryview(data)
            while view:
                with self._io_lock:
                    view = view[self._write_some(view, stops):]
                if view:
                    self._wait_for_room(deadline, stops)
        finally:
            self._write_lock.release()

    def _write_some(self, view: memoryview, stops: int) -> int:
        """One non-blocking write (under _io_lock): the bytes the terminal took, maybe 0."""
        if self._fd < 0:
            raise ShellClosedError("The shell is not running")
        if self._stops != stops:
            raise TimeoutError(DROPPED_BY_STOP)
        try:
            written = os.write(self._fd, view)
        except BlockingIOError:
            return 0
        except OSError as exc:  # EIO: the terminal's other side is gone
            raise ShellClosedError("The shell is not running") from exc
        self._input_stalled = False
        return written

    def _wait_for_room(self, deadline: float, stops: int) -> None:
        """Wait until the terminal has room for input, in short steps (a Stop or the
        shell's end shows at the next write); not at all after an earlier time-out."""
        while True:
            with self._io_lock:
                if self._fd < 0 or self._stops != stops:
                    return  # the next write says why
                if self._input_stalled or time.monotonic() >= deadline:
                    self._input_stalled = True
                    raise TimeoutError(NOT_READING)
                poller = select.poll()
                poller.register(self._fd, select.POLLOUT)
            left = min(_WRITE_POLL_S, deadline - time.monotonic())
            if poller.poll(max(1, math.ceil(left * 1000))):
                return

    def _drop_typeahead(self) -> None:
        """Throw away input the program has not read, and any waiting for room, as ^C
        does in a terminal: the shell must not run it as commands after a Stop."""
        with self._io_lock:
            self._stops += 1
            self._input_stalled = False
            if self._fd < 0:
                return
            # On the master, TCOFLUSH drops what the slave's line discipline has not taken
            # in yet; what it has is dropped on the slave.
            with contextlib.suppress(termios.error):
                termios.tcflush(self._fd, termios.TCOFLUSH)
            self._flush_slave_input()

    def _flush_slave_input(self) -> None:
        """TCIFLUSH on the pty slave (under _io_lock, the master open: while it is, the
        slave's name is ours alone)."""
        if self._slave is None:
            return
        try:
            slave = os.open(self._slave, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            termios.tcflush(slave, termios.TCIFLUSH)
        except termios.error:
            pass
        finally:
            os.close(slave)

    def _wake_reader(self) -> None:
        with self._io_lock:
            if self._waker is not None:
                self._waker.wake()

    def _signal_foreground(self, sig: signal.Signals) -> None:
        with self._io_lock:
            if self._fd < 0:
                return
            try:
                group = os.tcgetpgrp(self._fd)
            except OSError:
                return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)

    # -- the reader thread ----------------------------------------------------------------

    def _read_loop(self, watch: ExitWatch) -> None:
        try:
            self._pump(watch)
        except Exception:  # the pty itself failed: end the shell cleanly rather than hang
            logger.exception("terminal %s: reader failed", self.name)
        finally:
            self._finish(watch)

    def _pump(self, watch: ExitWatch) -> None:
        """Run until the shell process exits."""
        fd, waker = self._fd, self._waker  # stable: only _finish() closes them
        assert waker is not None
        poller = select.poll()
        for watched in (fd, watch.fd, waker.fd):
            if watched is not None:
                poller.register(watched, select.POLLIN)
        next_check = 0.0
        while True:
            now = time.monotonic()
            timeout = watch.cap(_earliest(self._coalescer.due(now), self._pty.due(now)))
            if self.state in (BUSY, WAITING_INPUT):
                until_check = max(0.0, next_check - now)
                timeout = until_check if timeout is None else min(timeout, until_check)
            events = poller.poll(None if timeout is None else math.ceil(timeout * 1000))
            now = time.monotonic()
            if (events or watch.poll_every is not None) and watch.exited():
                return
            for ready, _ in events:
                if ready == waker.fd:
                    waker.drain()
                elif not self._read_master(now):
                    poller.unregister(fd)  # slave closed; wait for the process to end
            self._guarded(self._sync_state)
            self._guarded(self._coalescer.tick, now)
            self._guarded(self._pty.tick, now)
            if self.state in (BUSY, WAITING_INPUT) and now >= next_check:
                self._guarded(self._check_waiting_input)
                next_check = now + _INPUT_CHECK_EVERY

    def _guarded(self, step: Callable[..., None], *args: object) -> None:
        """Run one step of the reader; a bug in it is logged and the reader goes on.

        The reader is the shell's only way out: if it died, the running command's output
        and its end would be lost and the session would stay busy for good.
        """
        try:
            step(*args)
        except Exception:
            logger.exception("terminal %s: %s failed; reading on", self.name, step.__name__)

    def _read_master(self, now: float) -> bool:
        """Read and process what the terminal holds; False once the terminal is closed."""
        data, still_open = self._read_available()
        if data:
            self._process_output(data, now)
        return still_open

    def _read_available(self) -> tuple[bytes, bool]:
        """What the terminal holds, up to _READ_MAX bytes, and whether it is still open.

        A pty hands out at most 4 KiB per read, and refills while we read: reading on until
        it has nothing (EAGAIN) takes 20 KiB per wake-up on average during a flood, and
        _process_output() then runs once per batch instead of once per 4 KiB.
        """
        chunks: list[bytes] = []
        size = 0
        while size < _READ_MAX:
            try:
                chunk = os.read(self._fd, _READ_MAX - size)
            except BlockingIOError:
                break
            except OSError:  # EIO: no process has the slave open any more
                return b"".join(chunks), False
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), True

    def _process_output(self, data: bytes, now: float) -> None:
        """Hand bytes read to the terminal view, the screen model and the log."""
        self._output_seen = True
        self._pty.feed(data, now)
        self.screen.append(data)
        # Any command whose output is in `data` was submitted before this
        # read, so announcing now keeps 'busy' ahead of its output.
        self._sync_state()
        for chunk, alternate in self._alternate.split(data):
            if alternate != self._log_alternate:
                self._guarded(self._switch_screen, alternate)
            self._process(self._decoder.decode(chunk), now)

    def _switch_screen(self, alternate: bool) -> None:
        """A full-screen program took the alternate screen, or left it: its redraws stay
        out of the log, which says so once instead."""
        self._log_alternate = alternate
        if alternate:
            self._coalescer.flush_all()
            if self._told_full_screen:  # a program flipping screens fast: one line, not one a flip
                return
            self._told_full_screen = True
            program = self._foreground_name() or "A program"
            self._notify(self._listener.on_notice,
                         f"{program} is using the full screen; open the terminal view")

    def _foreground_name(self) -> str | None:
        try:
            return LAYER.program_name(os.tcgetpgrp(self._fd))
        except OSError:
            return None

    def _process(self, text: str, now: float) -> None:
        try:
            items = self._sentinels.feed(text)
        except Exception:
            logger.exception("terminal %s: sentinel parser failed; output dropped", self.name)
            self._sentinels = SentinelParser(self._nonce)
            return
        for item in items:
            if isinstance(item, str):
                if not self._at_prompt and not self._log_alternate:
                    self._feed_output(item, now)
            elif isinstance(item, Begin):
                self._at_prompt = False
                self._on_begin(item)
            else:
                self._at_prompt = True
                self._guarded(self._on_sentinel, item)

    def _on_begin(self, begin: Begin) -> None:
        """A command starts: one sent with submit() (its number), or one typed in the
        terminal view (0), which makes the shell busy until its prompt."""
        with self._lock:
            if begin.seq == 0 and self._state == IDLE:
                self._typed = True
                self._state = BUSY
                self._reading_checks = 0
            starts = begin.seq > self._begun_seq
            self._begun_seq = max(self._begun_seq, begin.seq)
            self._changed.notify_all()
        if starts:  # what came before (start-up files' output) is not the command's
            self._coalescer.end_escape()
            self._coalescer.flush_all()
            self._notify(self._listener.on_command_begin)

    def _feed_output(self, text: str, now: float) -> None:
        """Clean and coalesce output; if the cleaner fails, show the text raw instead."""
        text = self._without_echo(text)
        if not text:
            return
        try:
            self._coalescer.feed(text, now)
        except Exception:
            logger.exception("terminal %s: output cleaner failed; showing plain text", self.name)
            self._coalescer.reset()
            self._guarded(self._emit_output, strip_controls(text))

    def _without_echo(self, text: str) -> str:
        """`text` without the terminal's echo of what submit() typed: the log shows that
        as the user's entry already."""
        with self._lock:
            expected = self._echo_expected
            if not expected:
                return text
            common = len(os.path.commonprefix([expected, text]))  # noqa: RUF071 - text
            self._echo_expected = expected[common:] if common == len(text) else ""
        return text[common:] if common in (len(text), len(expected)) else text

    def _on_sentinel(self, sentinel: Sentinel) -> None:
        self._alternate.reset()  # whatever held the screen has ended
        self._coalescer.end_escape()  # so did any escape sequence it left unterminated
        self._log_alternate = False
        self._told_full_screen = False
        with self._lock:
            self._cwd = sentinel.cwd
            finished = (self._state in (BUSY, WAITING_INPUT) and not self._typed
                        and sentinel.seq == self._seq and sentinel.seq > 0)
            if self._state == CONNECTING or self._typed:
                self._state = IDLE  # the first prompt (ready), or a typed command ended
            self._typed = False
            self._ready = True
            queued, self._queued_keys = self._queued_keys, b""
            self._echo_expected = ""
            if queued:  # sent while the shell started: run it now
                self._write(queued)
        self._sync_echo()
        if not finished:  # ready, or a stray prompt (C-c at the prompt): flush, then 'idle'
            self._coalescer.flush_all()
            self._sync_state()
            return
        self._sync_state()  # 'busy' goes out before the command's last output
        self._coalescer.flush_all()
        with self._lock:
            self._state = IDLE
            self._done_seq = sentinel.seq
            elapsed_ms = round((time.monotonic() - self._started_at) * 1000)
            self._changed.notify_all()
        self._notify(self._listener.on_command_done, sentinel.status, elapsed_ms, sentinel.cwd)
        # Say 'idle' even if a new command is already running; the next
        # _sync_state() then reports 'busy' for it.
        self._announced = IDLE
        self._notify(self._listener.on_state, IDLE)

    def _check_waiting_input(self) -> None:
        """Flip busy <-> waiting_input, and tell whether echo is off. Two checks in a row
        must see a read: just after a submit, the kernel may not have handed bash (or the
        program) its input yet, and it still sits in read(2) for a moment. A program that
        waits in poll/select (a REPL, vim, less) counts once it has also been quiet for
        _POLL_QUIET_CHECKS checks: busy programs poll too, but they print or end."""
        self._sync_echo()
        reads, polls = self._foreground_waits_on_tty()
        self._quiet_checks = 0 if self._output_seen or not polls else self._quiet_checks + 1
        self._output_seen = False
        reading = ((reads or self._quiet_checks >= _POLL_QUIET_CHECKS)
                   and not self._master_readable())
        with self._lock:
            self._reading_checks = self._reading_checks + 1 if reading else 0
            if self._state == BUSY and self._reading_checks >= 2:
                self._state = WAITING_INPUT
            elif self._state == WAITING_INPUT and not reading:
                self._state = BUSY
            else:
                return
            waiting = self._state == WAITING_INPUT
        if waiting:
            self._coalescer.flush_all()  # the prompt it waits on goes out first
        self._sync_state()

    def _foreground_waits_on_tty(self) -> tuple[bool, bool]:
        """Whether a task of the foreground process group is blocked reading the terminal,
        and whether one is blocked polling it (poll, select, epoll)."""
        try:
            group = os.tcgetpgrp(self._fd)
        except OSError:
            return False, False
        return LAYER.group_waits_on_tty(group, self._tty_rdev, self.pid)

    def _sync_echo(self) -> None:
        """Tell the listener when a program starts or stops reading a secret."""
        echo = not self.reads_secret()
        if echo != self._announced_echo:
            self._announced_echo = echo
            self._notify(self._listener.on_echo, echo)

    def _master_readable(self) -> bool:
        """Output not read yet (maybe the next prompt) makes a read ambiguous."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        return bool(poller.poll(0))

    def _sync_state(self) -> None:
        with self._lock:
            state = self._state
        if state != self._announced and state != EXITED:
            self._announced = state
            self._notify(self._listener.on_state, state)

    def _emit_output(self, text: str) -> None:
        self._notify(self._listener.on_output, text)

    def _emit_pty(self, data: bytes, offset: int, reset: bool) -> None:
        self._notify(self._listener.on_pty, data, offset, reset)

    def _notify(self, callback: Callable[..., None], *args: object) -> None:
        """Call the listener; its failure must not kill the reader thread."""
        try:
            callback(*args)
        except Exception:
            logger.exception("terminal %s: listener %s failed", self.name, callback.__name__)

    def _finish(self, watch: ExitWatch) -> None:
        """The shell ended (or the reader failed): collect the last output, end
        what is left of its session, reap it, release everything, tell the listener."""
        try:
            self._drain()
            held = self._alternate.take_held()
            self._process(self._decoder.decode(held, final=True) + self._sentinels.flush(),
                          time.monotonic())
        except Exception:  # whatever happens, the shell must still be ended and reaped
            logger.exception("terminal %s: collecting the last output failed", self.name)
        self._end_session()
        with self._session_lock:
            code = self._proc.wait()
            self._reaped = True
        self._guarded(self._coalescer.flush_all)
        self._guarded(self._pty.flush)
        with self._lock:
            self._state = EXITED
            closing = self._closing
            self._changed.notify_all()
        with self._io_lock:
            self._proc.close()
            if self._waker is not None:
                self._waker.close()
            self._fd, self._waker = -1, None
        watch.close()
        self._remove_files()
        if not closing:
            self._notify(self._listener.on_shell_exit, code)

    def _drain(self) -> None:
        """Read output still in flight after the shell died, for a bounded time."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        deadline = time.monotonic() + _EXIT_DRAIN
        while (left := deadline - time.monotonic()) > 0:
            if not poller.poll(min(20, math.ceil(left * 1000))):
                return
            if not self._read_master(time.monotonic()):
                return

    # -- processes ------------------------------------------------------------------------

    def _end_session(self) -> None:
        """SIGHUP, then SIGTERM, then SIGKILL every live process of the shell's
        session (the shell and all it started, even what escaped with setsid when the
        shell's environment carries an OWNER_VAR mark), each after a grace period."""
        with self._session_lock:
            if self._reaped:
                return
            session = self._proc.pid  # the shell leads its own session
            owner = self._env.get(OWNER_VAR)

            def in_session(proc: Proc) -> bool:
                return proc.session == session

            if owner is None:
                end_processes(in_session, _CLOSE_GRACE)
            else:  # plus whatever left it (setsid, daemons) but kept our mark or cgroup
                end_marked(owner, _CLOSE_GRACE, also=in_session)

    # -- files ----------------------------------------------------------------------------

    def _write_rc_files(self) -> str:
        """Create the rc file and the command file (mode 0600); return the rc path."""
        os.makedirs(self._rc_dir, mode=0o700, exist_ok=True)
        prefix = "maestro-" + re.sub(r"[^A-Za-z0-9_.-]", "_", self.name) + "-"
        for suffix in (".rc", ".cmd"):
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=self._rc_dir)
            os.close(fd)
            self._files.append(path)
        with open(self._files[0], "w", encoding="utf-8") as rc_file:
            rc_file.write(rc_script(self._nonce, self._files[1]))
        return self._files[0]

    def _remove_files(self) -> None:
        for path in self._files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _slave_path(master_fd: int) -> str | None:
    """The path of a pty master's slave (libc's ptsname_r); None where it cannot be had."""
    try:
        ptsname_r = ctypes.CDLL(None, use_errno=True).ptsname_r
    except (OSError, AttributeError):
        return None
    name = ctypes.create_string_buffer(1024)
    if ptsname_r(master_fd, name, len(name)) != 0:
        return None
    return os.fsdecode(name.value)
