"""Failed-token throttling: an address that keeps presenting wrong tokens is locked out.

Guessing a UUID v4 is hopeless anyway; the lockout makes trying expensive and visible (one
log line per lockout). Only wrong-token requests are counted and refused: a request with a
right token is never affected, even from a locked-out address.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_TRACKED_ADDRESSES = 10_000


class _Record:
    __slots__ = ("failures", "locked_until")

    def __init__(self, limit: int) -> None:
        self.failures: deque[float] = deque(maxlen=limit)
        self.locked_until = 0.0


class FailedTokenThrottle:
    """Counts wrong-token requests per address; `limit` within `window_s` locks it out.

    Memory is bounded: at most `max_addresses` are tracked, the least recently seen are
    forgotten first. Thread-safe.
    """

    def __init__(self, limit: int, window_s: float, lockout_s: float,
                 max_addresses: int = MAX_TRACKED_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._max_addresses = max_addresses
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until a locked-out address may try again (at least 1), else None."""
        with self._lock:
            record = self._records.get(address)
            if record is None:
                return None
            left = record.locked_until - self._clock()
        return max(1, math.ceil(left)) if left > 0 else None

    def count_failure(self, address: str) -> bool:
        """Count one wrong-token request; True when it starts a lockout (once per lockout)."""
        now = self._clock()
        with self._lock:
            record = self._records.pop(address, None) or _Record(self.limit)
            self._records[address] = record  # now the most recently seen
            while len(self._records) > self._max_addresses:
                self._records.popitem(last=False)
            if record.locked_until > now:
                return False
            failures = record.failures
            while failures and failures[0] <= now - self.window_s:
                failures.popleft()
            failures.append(now)
            if len(failures) < self.limit:
                return False
            failures.clear()
            record.locked_until = now + self.lockout_s
            return True
