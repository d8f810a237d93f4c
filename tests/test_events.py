"""The event bus and client queues, driven directly with threads."""

from __future__ import annotations

import json
import threading

from app import services as services_module
from app.config import Settings
from app.events import SEQ_BLOCK, ClientQueue, EventBus
from app.services import Services


def test_seq_is_strictly_increasing_across_threads():
    bus = EventBus(replay_size=100_000, first_seq=1000)
    seen: list[int] = []
    bus.add_listener(lambda event: seen.append(event["seq"]))

    def publish_many() -> None:
        for n in range(500):
            bus.publish("session:output", n=n)

    threads = [threading.Thread(target=publish_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == list(range(1001, 1001 + 4000))
    assert bus.last_seq == 5000


def queued_events(queue: ClientQueue) -> list[dict]:
    """The events a queue holds, decoded from their WebSocket frames."""
    events = []
    for frame in queue.take(1 << 40):
        size = frame[1]
        events.append(json.loads(frame[2 if size < 126 else 4 if size == 126 else 10:]))
    return events


def test_events_carry_type_seq_and_timestamp():
    bus = EventBus()
    event = bus.publish("theme:change", theme={"id": "nord"})
    assert event["type"] == "theme:change" and event["seq"] == 1
    assert isinstance(event["timestamp"], int) and event["theme"] == {"id": "nord"}


def test_full_queue_is_closed_and_never_blocks_the_publisher():
    bus = EventBus()
    slow, fast = ClientQueue(maxsize=5), ClientQueue(maxsize=1000)
    bus.subscribe(slow)
    bus.subscribe(fast)
    for n in range(50):
        bus.publish("session:output", n=n)
    assert slow.overflowed and slow.closed
    assert len(fast) == 50
    bus.publish("session:output", n=50)
    assert len(fast) == 51


def test_queue_filter_skips_unwanted_events():
    bus = EventBus()
    queue = ClientQueue(maxsize=10)
    queue.accept = lambda event: event.get("sessionId") == "a"
    bus.subscribe(queue)
    bus.publish("session:output", sessionId="b")
    bus.publish("session:output", sessionId="a")
    assert [event["sessionId"] for event in queued_events(queue)] == ["a"]


def test_resume_replays_exactly_the_missed_events():
    bus = EventBus(replay_size=10)
    for n in range(5):
        bus.publish("e", n=n)
    subscription = bus.subscribe(ClientQueue(100), since=2)
    assert subscription.resumed and [e["seq"] for e in subscription.replay] == [3, 4, 5]
    assert subscription.seq == 5
    assert bus.subscribe(ClientQueue(100), since=5).replay == []


def test_resume_too_far_back_or_from_the_future_is_not_resumed():
    bus = EventBus(replay_size=3)
    for n in range(10):
        bus.publish("e", n=n)
    assert not bus.subscribe(ClientQueue(10), since=5).resumed   # 6 was dropped
    assert bus.subscribe(ClientQueue(10), since=7).resumed       # 8, 9, 10 kept
    assert not bus.subscribe(ClientQueue(10), since=11).resumed  # seq from another run


def test_snapshot_and_subscription_are_atomic_with_publishing():
    """Whatever a racing publisher does, snapshot + queued events = every event once."""
    bus = EventBus()
    state = {"count": 0}

    def publisher() -> None:
        for _ in range(3000):
            with bus.lock:
                state["count"] += 1
                bus.publish("tick", count=state["count"])

    thread = threading.Thread(target=publisher)
    thread.start()
    results = []
    for _ in range(50):
        queue = ClientQueue(100_000)
        subscription = bus.subscribe(queue, snapshot=lambda: state["count"])
        results.append((subscription, queue))
    thread.join()
    for subscription, queue in results:
        counts = [event["count"] for event in queued_events(queue)]
        assert counts == list(range(subscription.snapshot + 1, 3001))


def test_seqs_are_reserved_in_blocks_before_they_are_used():
    reserved: list[int] = []
    bus = EventBus(first_seq=500, reserve=reserved.append)
    seqs = [bus.publish("theme:change")["seq"] for _ in range(2 * SEQ_BLOCK + 1)]
    assert reserved == [500 + SEQ_BLOCK, 500 + 2 * SEQ_BLOCK, 500 + 3 * SEQ_BLOCK]
    assert seqs[-1] == 500 + 2 * SEQ_BLOCK + 1 <= reserved[-1]


def test_seq_never_goes_back_after_a_crash_with_the_clock_set_back(tmp_path, monkeypatch):
    settings = Settings.defaults(data_dir=str(tmp_path / "data"))
    first = Services.start(settings)
    highest = max(first.bus.publish("theme:change")["seq"] for _ in range(5))
    first._data_lock.close()  # a crash: nothing saved at shutdown, only the lock released
    monkeypatch.setattr(services_module, "now_ms", lambda: 0)  # the clock went back
    second = Services.start(settings)
    try:
        assert second.bus.publish("theme:change")["seq"] > highest
    finally:
        second.shutdown()
        first.store.close()


def test_the_replay_buffer_is_bounded_in_bytes_as_well_as_events():
    bus = EventBus(replay_size=1000, replay_bytes=50_000)
    first = bus.publish("session:output", data="x" * 10_000)["seq"]
    for _ in range(20):
        bus.publish("session:output", data="y" * 10_000)
    assert bus.subscribe(ClientQueue(10), since=first).replay is None  # dropped: too old
    kept = bus.subscribe(ClientQueue(10), since=bus.last_seq - 4).replay
    assert kept is not None and len(kept) == 4
    assert bus.subscribe(ClientQueue(10), since=bus.last_seq - 5).replay is None
