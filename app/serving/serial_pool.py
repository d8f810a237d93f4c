"""A few shared threads run many clients' work, each client's in order, one at a time.

The WebSocket loop hands every client's messages to its Lane; a lane runs on the pool only
while it has work, so idle clients cost no thread, and one client's slow message holds up
that client only (and one of the pool's threads).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class SerialPool:
    """Threads started as work comes, at most `threads`, kept for the next work."""

    def __init__(self, threads: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    def lane(self) -> Lane:
        return Lane(self._executor)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Lane:
    """One client's work, in order; submit() never blocks."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        # Guards _pending and _running.
        self._lock = threading.Lock()
        self._pending: collections.deque[Callable[[], None]] = collections.deque()
        self._running = False

    def __len__(self) -> int:
        """Work waiting to run (the piece running not counted)."""
        with self._lock:
            return len(self._pending)

    def submit(self, work: Callable[[], None]) -> None:
        with self._lock:
            self._pending.append(work)
            if self._running:
                return
            self._running = True
        self._schedule()

    def _schedule(self) -> None:
        try:
            self._executor.submit(self._run)
        except RuntimeError:  # the pool was shut down (the server stops): nothing runs
            with self._lock:
                self._running = False

    def _run(self) -> None:
        """One piece of work, then back in line behind the other lanes."""
        with self._lock:
            work = self._pending.popleft()
        try:
            work()
        except Exception:
            log.exception("work of a lane failed")
        with self._lock:
            self._running = bool(self._pending)
            if not self._running:
                return
        self._schedule()
