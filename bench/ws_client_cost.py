"""Threads, file descriptors and memory that idle WebSocket clients cost a server.

    python3 -m bench.ws_client_cost [clients] [--fastify]

Starts run.py (werkzeug) and wsgi.py (waitress) on 127.0.0.1 with --max-clients at least
`clients`, reads the server process's threads, fds and RSS from /proc with one client and
with N idle clients, and prints the totals and the difference per client. --fastify adds
the bare Fastify + ws reference (bench/reference/server.js) for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Iterator

from bench import SERVERS, reference, temporary_server
from tests.wsclient import LiveClient

SETTLE_S = 1.0


def counts(pid: int) -> dict[str, int]:
    """The process's threads, open fds and resident memory (KiB)."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {"threads": int(fields["Threads"]), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "rss_kib": int(fields["VmRSS"].split()[0])}


def cost(pid: int, clients: int, connect: Callable[[], Callable[[], None]]) -> dict[str, float]:
    """Totals with one client and with `clients`, and the difference per added client."""
    closers = [connect()]
    try:
        time.sleep(SETTLE_S)
        one = counts(pid)
        closers += [connect() for _ in range(clients - 1)]
        time.sleep(SETTLE_S)
        many = counts(pid)
    finally:
        for close in closers:
            with contextlib.suppress(Exception):
                close()
    result: dict[str, float] = {"clients": clients}
    for key in one:
        result[f"{key}_at_1"] = one[key]
        result[f"{key}_at_{clients}"] = many[key]
        result[f"{key}_per_client"] = (many[key] - one[key]) / (clients - 1)
    return result


def measure(script: str, clients: int) -> dict[str, float]:
    with temporary_server(script, "--max-clients", str(max(clients, 100))) as (server, _):
        LiveClient(server).close()  # warm up

        def connect() -> Callable[[], None]:
            return LiveClient(server, timeout=60).close

        return cost(server.process.pid, clients, connect)


@contextlib.contextmanager
def _fastify() -> Iterator[reference.Reference]:
    with reference.bodies(b"{}", b"{}", ["{}"]) as files, reference.fastify(files) as bare:
        yield bare


def measure_fastify(clients: int) -> dict[str, float]:
    import websocket

    with _fastify() as bare:
        url = bare.url.replace("http", "ws", 1) + "/ws"

        def connect() -> Callable[[], None]:
            return websocket.create_connection(url, timeout=60).close

        return cost(bare.pid, clients, connect)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clients", type=int, nargs="?", default=50)
    parser.add_argument("--fastify", action="store_true")
    args = parser.parse_args()
    results = {script: measure(script, args.clients) for script in SERVERS}
    if args.fastify:
        missing = reference.node_unavailable()
        if missing is None:
            results["fastify+ws"] = measure_fastify(args.clients)
        else:
            print(f"fastify+ws: not measured ({missing})")
    n = args.clients
    print(f"{'server':11} {'threads':>13} {'fds':>13} {'RSS MiB':>15}  (1 → {n} idle clients; "
          "per added client)")
    for name, r in results.items():
        print(f"{name:11} {r['threads_at_1']:5} → {r[f'threads_at_{n}']:5} "
              f"{r['fds_at_1']:5} → {r[f'fds_at_{n}']:5} "
              f"{r['rss_kib_at_1'] / 1024:6.1f} → {r[f'rss_kib_at_{n}'] / 1024:6.1f}   "
              f"{r['threads_per_client']:.2f} threads, {r['fds_per_client']:.2f} fds, "
              f"{r['rss_kib_per_client']:.0f} KiB")


if __name__ == "__main__":
    main()
