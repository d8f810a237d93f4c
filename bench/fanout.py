"""Server CPU per delivered WebSocket message when many clients watch the same output.

    python3 -m bench.fanout [clients] [--tree OTHER_CHECKOUT]

Starts wsgi.py (waitress) on 127.0.0.1, connects N live-update clients, runs `seq` in a
terminal session and waits until every client has seen the session's exit. Prints the
server's CPU seconds (from /proc) per 1,000 delivered messages and per delivered MB. With
`--tree`, the same run is made with another checkout's server (e.g. a `git worktree` of an
older commit), interleaved A, B, A, B, and the ratio printed: before/after an optimisation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
import websocket

from bench import temporary_server
from bench.reference import Reference

ROUNDS = 3
LINES = 20000
CLIENT_TIMEOUT_S = 120


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch(url: str, is_last: Callable[[str], bool], ready: threading.Barrier,
          totals: list[int], kept: list[str] | None = None) -> None:
    """One client: count messages and bytes until `is_last` says so (or the timeout)."""
    ws = websocket.create_connection(url, timeout=CLIENT_TIMEOUT_S)
    ws.recv()  # init
    ready.wait()
    messages = size = 0
    try:
        while True:
            data = ws.recv()
            messages += 1
            size += len(data)
            if kept is not None:
                kept.append(data)
            if is_last(data):
                break
    finally:
        ws.close()
        totals.append(messages)
        totals.append(size)


def watchers(url: str, clients: int, is_last: Callable[[str], bool],
             kept: list[str] | None = None) -> tuple[list[threading.Thread], list[int]]:
    """N client threads, started and connected; the caller's ready.wait() releases them."""
    ready = threading.Barrier(clients + 1)
    totals: list[int] = []
    threads = [threading.Thread(target=watch, args=(url, is_last, ready, totals,
                                                    kept if n == 0 else None))
               for n in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=CLIENT_TIMEOUT_S)
    return threads, totals


def summary(spent: float, seconds: float, clients: int, totals: list[int]) -> dict[str, float]:
    messages, size = sum(totals[0::2]), sum(totals[1::2])
    return {"cpu_s_per_1000_messages": spent / messages * 1000,
            "cpu_s_per_mb": spent / (size / 1e6),
            "messages_per_s_per_client": messages / clients / seconds,
            "messages_per_client": messages / clients}


def measure_run(script: str, clients: int, lines: int = LINES,
                kept: list[str] | None = None) -> dict[str, float]:
    """Per delivered message and MB: server CPU seconds; and messages/s per client.

    `kept` receives what the first client received (the reference replays it)."""
    with temporary_server(script) as (server, project):
        base = f"http://127.0.0.1:{server.port}/{server.token}/api"
        created = requests.post(f"{base}/sessions", json={
            "name": "bench", "cwd": str(project),
            "toolType": "terminal"}, timeout=30).json()
        session_id = created["session"]["id"]
        url = f"ws://127.0.0.1:{server.port}/{server.token}/ws"

        def is_exit(data: str) -> bool:
            event = json.loads(data)
            return event.get("type") == "session:exit" and event.get("sessionId") == session_id

        threads, totals = watchers(url, clients, is_exit, kept)
        before, started = cpu_seconds(server.process.pid), time.perf_counter()
        requests.post(f"{base}/session/{session_id}/send",
                      json={"command": f"seq 1 {lines}; exit"}, timeout=30)
        for thread in threads:
            thread.join(CLIENT_TIMEOUT_S)
        seconds = time.perf_counter() - started
        spent = cpu_seconds(server.process.pid) - before
    return summary(spent, seconds, clients, totals)


def measure(script: str, clients: int) -> tuple[float, float]:
    """CPU seconds per 1,000 messages and per MB delivered, for one server."""
    result = measure_run(script, clients)
    return result["cpu_s_per_1000_messages"], result["cpu_s_per_mb"]


def measure_reference(reference: Reference, clients: int, messages: list[str]) -> dict[str, float]:
    """The same as measure_run for the bare Fastify + ws server broadcasting `messages`."""
    last = messages[-1]
    url = reference.url.replace("http", "ws", 1) + "/ws"
    threads, totals = watchers(url, clients, lambda data: data == last)
    before, started = cpu_seconds(reference.pid), time.perf_counter()
    requests.post(f"{reference.url}/broadcast", timeout=CLIENT_TIMEOUT_S)
    for thread in threads:
        thread.join(CLIENT_TIMEOUT_S)
    seconds = time.perf_counter() - started
    return summary(cpu_seconds(reference.pid) - before, seconds, clients, totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clients", type=int, nargs="?", default=50)
    parser.add_argument("--tree", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    scripts = {"this": "wsgi.py"}
    if args.tree:
        scripts["other"] = str(args.tree.resolve() / "wsgi.py")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in scripts}
    for _ in range(ROUNDS):
        for name, script in scripts.items():
            results[name].append(measure(script, args.clients))
    medians = {name: (statistics.median(r[0] for r in runs),
                      statistics.median(r[1] for r in runs)) for name, runs in results.items()}
    for name, (per_k, per_mb) in medians.items():
        print(f"{name:6} {args.clients} clients: {per_k:.3f} CPU-s per 1,000 messages, "
              f"{per_mb:.3f} CPU-s per MB delivered")
    if "other" in medians:
        print(f"this/other CPU per message: {medians['this'][0] / medians['other'][0]:.2f}")


if __name__ == "__main__":
    main()
