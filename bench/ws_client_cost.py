"""Thread and file-descriptor cost of one connected WebSocket client, for both servers.

    python3 -m bench.ws_client_cost [clients]

Starts run.py (werkzeug) and wsgi.py (waitress) on 127.0.0.1, reads the server process's
thread and fd counts from /proc with no client and with N idle clients, and prints the
difference per client.
"""

from __future__ import annotations

import os
import sys
import time

from bench import SERVERS, temporary_server
from tests.wsclient import LiveClient


def counts(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as status:
        threads = int(next(line for line in status if line.startswith("Threads:")).split()[1])
    return threads, len(os.listdir(f"/proc/{pid}/fd"))


def measure(script: str, clients: int) -> tuple[float, float]:
    with temporary_server(script) as (server, _):
        LiveClient(server).close()  # warm up
        time.sleep(0.5)
        threads0, fds0 = counts(server.process.pid)
        sockets = [LiveClient(server) for _ in range(clients)]
        time.sleep(0.5)
        threads1, fds1 = counts(server.process.pid)
        for client in sockets:
            client.close()
    return (threads1 - threads0) / clients, (fds1 - fds0) / clients


def main() -> None:
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    print(f"{'server':10} {'threads/client':>15} {'fds/client':>11}  ({clients} idle clients)")
    for script in SERVERS:
        threads, fds = measure(script, clients)
        print(f"{script:10} {threads:15.2f} {fds:11.2f}")


if __name__ == "__main__":
    main()
