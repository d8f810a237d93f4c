"""The sessions' public list as JSON, serialized once per change instead of once per request.

`GET sessions` is what every open dashboard polls; building twenty sessions' public views and
encoding them was most of what the request cost us. The list only changes when something a
client could see changes, and every such change publishes an event on the bus (state, renames,
groups, mode, tabs, usage, unread marks, queued prompts, output, live/offline, added/removed:
tests/test_session_list_cache.py checks each kind), so the bytes are kept until the bus's seq
moves on. As a safety net against a future change that forgets to publish, they are rebuilt
at least every MAX_AGE_S as well.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ..events import EventBus

MAX_AGE_S = 1.0


class SerializedList:
    """The JSON array of `build()` and its length, rebuilt when the bus has published since."""

    def __init__(self, bus: EventBus, build: Callable[[], list[dict[str, Any]]],
                 max_age_s: float = MAX_AGE_S) -> None:
        self._bus = bus
        self._build = build
        self._max_age_s = max_age_s
        self._seq = -1
        self._built_at = 0.0
        self._body = b"[]"
        self._count = 0

    def get(self) -> tuple[bytes, int]:
        """The list as JSON bytes (Flask's encoding: compact, ASCII) and how many items.

        Built and encoded under the bus lock: the views share dicts with the live sessions
        (usage figures, queued prompts), which must not change while they are encoded."""
        with self._bus.lock:
            seq = self._bus.last_seq
            now = time.monotonic()
            if seq != self._seq or now - self._built_at >= self._max_age_s:
                items = self._build()
                self._body = json.dumps(items, separators=(",", ":")).encode("ascii")
                self._count = len(items)
                self._seq, self._built_at = seq, now
            return self._body, self._count
