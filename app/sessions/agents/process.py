"""One run of an agent CLI: spawned in its own process group, its output parsed and paced.

A single reader thread watches stdout, stderr and the process (oslayer's exit watch), so the
listener sees every event of a turn in order, from one thread. Streamed text pieces are joined and
emitted at most every FLUSH_INTERVAL seconds (like terminal output), not one per token.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Protocol

from ..oslayer import LAYER
from ..procs import child_setup
from .lines import LineSplitter
from .parsers import Event, JsonLinesParser, Output, TextParser

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05  # seconds streamed text may wait to be joined with what follows
EXIT_DRAIN = 0.5  # at most this long to read output left by the agent's children
CLOSE_GRACE = 1.0  # seconds between SIGTERM and SIGKILL when a turn is abandoned
READ_SIZE = 65536


class TurnListener(Protocol):
    def on_event(self, event: Event) -> None: ...
    def on_exit(self, exit_code: int) -> None: ...


class AgentProcess:
    """Run `argv` once; report parsed events, then the exit code (128+N for signal N)."""

    def __init__(self, argv: list[str], cwd: str, env: Mapping[str, str],
                 parser: TextParser | JsonLinesParser, listener: TurnListener,
                 interrupt_grace: float, talks: bool = False) -> None:
        """`talks`: the agent reads JSON lines on stdin (write_line), else stdin is empty."""
        self.argv = argv
        self.talks = talks
        self._stdin_lock = threading.Lock()
        self.cwd = cwd
        self.env = dict(env)
        self.parser = parser
        self.listener = listener
        self.grace = interrupt_grace
        self.proc: subprocess.Popen[bytes] | None = None
        self.closing = False  # abandoned (session deleted, tab closed, shutdown)
        self.sent_signal: str | None = None  # the last interrupt signal sent
        self._done = threading.Event()
        self._reader: threading.Thread | None = None
        self._pending: Output | None = None
        self._pending_since = 0.0

    def start(self) -> None:
        """Spawn the agent. :raise OSError, SubprocessError: it could not be started."""
        # Default signal handling (a background server may ignore SIGINT), a new session
        # (its own process group, no controlling terminal), the session's folder.
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env,
            stdin=subprocess.PIPE if self.talks else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=child_setup(self.cwd, self.env))
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"agent-{self.proc.pid}")
        self._reader.start()

    def write_line(self, message: dict) -> bool:
        """Send one JSON line on stdin; False when the agent no longer reads it."""
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
        with self._stdin_lock:
            stdin = self.proc.stdin if self.proc is not None else None
            if stdin is None or stdin.closed:
                return False
            try:
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError):
                return False
        return True

    def close_stdin(self) -> None:
        """No more input: an agent that reads its stdin (claude) then ends."""
        with self._stdin_lock:
            if self.proc is not None and self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()

    def wait(self, timeout: float) -> bool:
        """Whether the agent's turn has ended (its output read, its exit reported)."""
        return self._done.wait(timeout)

    def interrupt(self) -> str | None:
        """SIGINT to the agent's process group, then SIGTERM and SIGKILL, each after the
        grace period without the turn ending. Blocks until then; returns the name of the
        signal after which it ended (None: it had ended before any was sent)."""
        if self.proc is None:
            return None  # not spawned yet
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self._done.is_set():
                break
            self.sent_signal = sig.name
            self._signal(sig)
            if self._done.wait(self.grace):
                return sig.name
        return self.sent_signal

    def close(self) -> None:
        """End the agent and its process group without reporting the turn; waits for it."""
        self.closing = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self._signal(sig)
            if self._done.wait(CLOSE_GRACE):
                break
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(CLOSE_GRACE)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    # -- the reader thread ------------------------------------------------------------------

    def _read_loop(self) -> None:
        assert self.proc is not None and self.proc.stdout and self.proc.stderr
        exit_code = -1
        try:
            exit_code = self._pump(self.proc)
        except Exception:
            logger.exception("agent reader failed")
            self._signal(signal.SIGKILL)
            exit_code = self.proc.wait()
        finally:
            for stream in (self.proc.stdout, self.proc.stderr):
                stream.close()
            self.close_stdin()
            if not self.closing:
                try:
                    self.listener.on_exit(_exit_status(exit_code))
                except Exception:
                    logger.exception("agent turn end failed")
            self._done.set()

    def _pump(self, proc: subprocess.Popen[bytes]) -> int:
        """Read until both pipes close and the agent has exited (or, once it has exited,
        until EXIT_DRAIN has passed: a child it left behind may hold the pipes open)."""
        selector = selectors.DefaultSelector()
        decoders, lines = {}, {}
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert stream is not None
            os.set_blocking(stream.fileno(), False)
            selector.register(stream.fileno(), selectors.EVENT_READ, name)
            decoders[name] = codecs.getincrementaldecoder("utf-8")(errors="replace")
            lines[name] = LineSplitter()
        watch = LAYER.exit_watch(proc.pid, lambda: proc.poll() is not None)
        if watch.fd is not None:
            selector.register(watch.fd, selectors.EVENT_READ, "exit")
        open_streams, drain_until = {"stdout", "stderr"}, None
        try:
            while open_streams or drain_until is None:
                timeout = self._pending_timeout()
                if drain_until is None:
                    timeout = watch.cap(timeout)
                else:
                    left = drain_until - time.monotonic()
                    if left <= 0:
                        break
                    timeout = left if timeout is None else min(timeout, left)
                ready = selector.select(timeout)
                if drain_until is None and (ready or watch.poll_every) and watch.exited():
                    if watch.fd is not None:
                        selector.unregister(watch.fd)
                    drain_until = time.monotonic() + EXIT_DRAIN
                for key, _ in ready:
                    name = key.data
                    if name == "exit":
                        continue
                    data = _read(key.fd)
                    if data is None:
                        continue
                    complete = lines[name].feed(decoders[name].decode(data, final=not data))
                    if not data:
                        selector.unregister(key.fd)
                        open_streams.discard(name)
                    for line in complete:
                        self._line(name, line)
                if self._pending_timeout() == 0:
                    self._flush()
        finally:
            selector.close()
            watch.close()
        for name, splitter in lines.items():
            if rest := splitter.rest():  # a last line without "\n"
                self._line(name, rest)
        self._flush()
        # Nothing may outlive the turn unseen: what the agent left in its process group ends
        # (on Linux while the unreaped agent still holds the group id, so it cannot name
        # another group; elsewhere the group's remaining members hold it).
        self._signal(signal.SIGTERM)
        return proc.wait()

    def _line(self, stream: str, line: str) -> None:
        line = line.removesuffix("\r")
        events = self.parser.feed(line) if stream == "stdout" else (
            [Output("stderr", line + "\n", stream=True)] if line.strip() else [])
        for event in events:
            if isinstance(event, Output) and event.stream:
                pending = self._pending
                if pending is not None and pending.source == event.source:
                    self._pending = Output(event.source, pending.text + event.text, True)
                    continue
                self._flush()
                self._pending, self._pending_since = event, time.monotonic()
                continue
            self._flush()
            self.listener.on_event(event)

    def _pending_timeout(self) -> float | None:
        if self._pending is None:
            return None
        return max(0.0, self._pending_since + FLUSH_INTERVAL - time.monotonic())

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and pending.text:
            self.listener.on_event(pending)


def _read(fd: int) -> bytes | None:
    """Up to READ_SIZE bytes; b"" at the end of the stream, None when nothing is there."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _exit_status(returncode: int) -> int:
    """Shell convention: death by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode
