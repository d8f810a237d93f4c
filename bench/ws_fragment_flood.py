"""Does one client flooding tiny WebSocket fragments slow the other clients?

    python3 -m bench.ws_fragment_flood [samples]

The loop thread (app/serving/ws_loop.py) parses every client's frames. A hostile client
sending a text message as endless 1-byte continuation frames (each a whole frame to parse)
must not hold up the others: for each launcher, prints a normal client's ping → pong
round trip (median and max, ms) alone and while such a client floods.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

from bench import SERVERS, temporary_server
from tests.conftest import ServerProcess
from tests.rawws import RawWebSocket
from tests.test_ws_hostile_clients import masked_frame
from tests.wsclient import LiveClient


def _flood(server: ServerProcess, stop: threading.Event) -> None:
    """Open a socket, start a message, send 1-byte fragments; again when it is closed."""
    fragments = masked_frame(0x00, b"a") * 10_000
    while not stop.is_set():
        client = RawWebSocket(server.port, f"/{server.token}/ws")
        client.next_frame()  # init
        try:
            client.sock.sendall(masked_frame(0x01, b"a"))
            for _ in range(90):  # under the 1 MiB message limit
                if stop.is_set():
                    break
                client.sock.sendall(fragments)
        except OSError:
            pass
        client.close()


def round_trips(server: ServerProcess, samples: int) -> list[float]:
    client = LiveClient(server)
    times = []
    for _ in range(samples):
        started = time.monotonic()
        client.request({"type": "ping"}, "pong", timeout=60)
        times.append((time.monotonic() - started) * 1000)
    client.close()
    return times


def measure(script: str, samples: int) -> dict[str, dict[str, float]]:
    with temporary_server(script) as (server, _project):
        alone = round_trips(server, samples)
        stop = threading.Event()
        flooder = threading.Thread(target=_flood, args=(server, stop), daemon=True)
        flooder.start()
        time.sleep(1)  # the flood is under way
        try:
            flooded = round_trips(server, samples)
        finally:
            stop.set()
            flooder.join(timeout=30)
    return {name: {"median_ms": round(statistics.median(times), 1),
                   "max_ms": round(max(times), 1)}
            for name, times in (("alone", alone), ("flooded", flooded))}


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print("ping -> pong round trip, ms      median      max")
    for script in SERVERS:
        for name, figures in measure(script, samples).items():
            print(f"{script:8} {name:18} {figures['median_ms']:10} {figures['max_ms']:8}")


if __name__ == "__main__":
    main()
