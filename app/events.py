"""The event bus: every change is published here once, with one strictly increasing seq.

Subscribers are bounded ClientQueues (one per WebSocket client) and plain listener
callables (for in-process observers). publish() never blocks on a subscriber: a queue that
is full is closed and dropped, and its client resumes later from the replay buffer.

The bus lock is also the model lock: the session manager mutates its sessions and publishes
under `bus.lock`, so a snapshot taken under the same lock is exactly the state at `last_seq`.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable
from typing import Any

from .errors import now_ms
from .ws_frames import text_frame


class Event(dict[str, Any]):
    """A published event: its fields, and its WebSocket frame (the JSON text, framed), made
    once under the bus lock and sent as is to every client (and measured for the replay
    buffer) instead of once each: a server's frames are the same bytes for every client."""

    __slots__ = ("frame",)

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.frame = text_frame(json.dumps(fields, separators=(",", ":")))


class ClientQueue:
    """A bounded FIFO of one client's outgoing frames (the bus's events and the client's
    own replies); overflowing closes it instead of blocking. The WebSocket writer loop
    drains it (app/serving/ws_loop.py)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        # Guards _items and the closed/overflowed flags.
        self._lock = threading.Lock()
        self._items: collections.deque[bytes] = collections.deque()
        self.closed = False
        self.overflowed = False
        # Which events this client wants (None: all); the bus skips the others.
        self.accept: Callable[[Event], bool] | None = None
        # Called once (under the bus lock, not the queue's) when the queue overflows: must
        # not block.
        self.on_overflow: Callable[[], None] | None = None
        # Called when a frame arrives in an empty queue (the writer's wake-up): must not
        # block either.
        self.on_ready: Callable[[], None] | None = None

    def put(self, frame: bytes) -> bool:
        """Queue a frame; return False (and close the queue) when it is full or closed."""
        with self._lock:
            if self.closed:
                return False
            overflowed = len(self._items) >= self.maxsize
            if overflowed:
                self.closed = True
                self.overflowed = True
                self._items.clear()
            else:
                self._items.append(frame)
            was_empty = len(self._items) == 1
        callback = self.on_overflow if overflowed else self.on_ready if was_empty else None
        if callback is not None:
            callback()
        return not overflowed

    def take(self, max_bytes: int) -> list[bytes]:
        """The oldest frames, up to `max_bytes` together (at least one); [] when empty."""
        with self._lock:
            frames: list[bytes] = []
            size = 0
            while self._items and (not frames or size + len(self._items[0]) <= max_bytes):
                frame = self._items.popleft()
                frames.append(frame)
                size += len(frame)
            return frames

    def close(self) -> None:
        with self._lock:
            self.closed = True

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class Subscription:
    """What subscribe() hands back: the snapshot, the events to replay, and the seq covered."""

    def __init__(self, snapshot: Any, seq: int, replay: list[Event] | None) -> None:
        self.snapshot = snapshot
        self.seq = seq
        self.replay = replay

    @property
    def resumed(self) -> bool:
        return self.replay is not None


SEQ_BLOCK = 10_000


class EventBus:
    """In-process publish/subscribe with a global seq and a replay buffer for resume.

    With `reserve`, seqs are handed out in blocks: before the first seq of a block is used,
    `reserve(end of block)` must have saved it, so a restart after a crash (or with the
    clock set back) starts from the saved value and seq never goes backwards. It costs one
    call per SEQ_BLOCK events.
    """

    def __init__(self, replay_size: int = 10_000, first_seq: int = 0,
                 reserve: Callable[[int], None] | None = None,
                 replay_bytes: int = 64 * 1024 * 1024) -> None:
        # Guards _seq, _replay, _replay_sizes, _replay_total, _queues, _listeners; also the
        # session model (see module doc).
        self.lock = threading.RLock()
        self._seq = first_seq
        self._reserve = reserve
        self._reserved = first_seq
        # The replay buffer is bounded in events and in bytes (each event's size as a frame).
        self._replay: collections.deque[Event] = collections.deque()
        self._replay_sizes: collections.deque[int] = collections.deque()
        self._replay_total = 0
        self._replay_max_events = replay_size
        self._replay_max_bytes = replay_bytes
        self._queues: set[ClientQueue] = set()
        self._listeners: list[Callable[[Event], None]] = []

    @property
    def last_seq(self) -> int:
        with self.lock:
            return self._seq

    def publish(self, event_type: str, **fields: Any) -> Event:
        """Stamp an event with the next seq and a timestamp, and hand it to every subscriber."""
        with self.lock:
            if self._reserve is not None and self._seq >= self._reserved:
                self._reserve(self._seq + SEQ_BLOCK)
                self._reserved = self._seq + SEQ_BLOCK
            self._seq += 1
            event = Event({"type": event_type, "seq": self._seq, "timestamp": now_ms(),
                           **fields})
            self._remember(event)
            for queue in list(self._queues):
                if queue.accept is not None and not queue.accept(event):
                    continue
                if not queue.put(event.frame):
                    self._queues.discard(queue)
            for listener in self._listeners:
                listener(event)
        return event

    def _remember(self, event: Event) -> None:
        """Keep the event for resume, dropping the oldest beyond either bound."""
        size = len(event.frame)
        self._replay.append(event)
        self._replay_sizes.append(size)
        self._replay_total += size
        while self._replay and (len(self._replay) > self._replay_max_events
                                or self._replay_total > self._replay_max_bytes):
            self._replay.popleft()
            self._replay_total -= self._replay_sizes.popleft()

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` for every event, under the bus lock: it must be quick."""
        with self.lock:
            self._listeners.append(listener)

    def subscribe(
        self,
        queue: ClientQueue,
        snapshot: Callable[[], Any] = lambda: None,
        since: int | None = None,
    ) -> Subscription:
        """Register a queue atomically with a snapshot, so nothing is lost or sent twice.

        With `since`, the subscription replays the events after it when the replay buffer
        still holds all of them (`resumed`); otherwise replay is None and the snapshot is
        the whole truth.
        """
        with self.lock:
            replay = self._events_after(since) if since is not None else None
            subscription = Subscription(snapshot(), self._seq, replay)
            self._queues.add(queue)
        return subscription

    def unsubscribe(self, queue: ClientQueue) -> None:
        with self.lock:
            self._queues.discard(queue)
        queue.close()

    def _events_after(self, since: int) -> list[Event] | None:
        if since > self._seq or since < 0:
            return None
        if since == self._seq:
            return []
        oldest = self._replay[0]["seq"] if self._replay else self._seq + 1
        if oldest > since + 1:
            return None
        return [event for event in self._replay if event["seq"] > since]
