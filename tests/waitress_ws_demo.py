"""Tiny Flask + flask-sock app served through app.serving.waitress_ws (test helper).

Usage: python tests/waitress_ws_demo.py [--max-clients N] [--ping-interval S]
                                         [--inline-shutdown]
Prints ``PORT <n>`` as its first stdout line, then serves on 127.0.0.1 until
SIGTERM, which closes every WebSocket with 1001 and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading

from flask import Flask, jsonify, request
from flask_sock import ConnectionClosed, Sock

# The repository root goes on the path, so this runs as `python tests/waitress_ws_demo.py`;
# importing app.serving runs app/__init__.py, which defines the factory but starts nothing.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from app.serving import waitress_ws


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-clients", type=int, default=20)
    parser.add_argument("--ping-interval", type=float, default=1.0)
    parser.add_argument("--inline-shutdown", action="store_true",
                        help="call shutdown() in the signal handler itself")
    args = parser.parse_args()

    app = Flask(__name__)
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": args.ping_interval}
    sock = Sock(app)
    tracked: set = set()  # WebSockets the shutdown hook closes itself
    tracked_lock = threading.Lock()  # guards tracked (handler threads + hook)

    @app.get("/health")
    def health():
        return jsonify(ok=True)

    @app.get("/stats")
    def stats():
        return jsonify(threads=threading.active_count(),
                       fds=len(os.listdir("/proc/self/fd")),
                       active_websockets=server.active_websockets)

    @sock.route("/ws/echo")
    def echo(ws):
        with tracked_lock:
            tracked.add(ws)
        try:
            while True:
                ws.send(ws.receive())
        finally:
            with tracked_lock:
                tracked.discard(ws)

    @sock.route("/ws/untracked")
    def untracked(ws):  # left to the adapter's own 1001 fallback on shutdown
        while True:
            ws.send(ws.receive())

    @sock.route("/ws/push")
    def push(ws):
        for i in range(int(request.args.get("n", "10"))):
            ws.send(f"msg {i}")

    server = waitress_ws.create_ws_server(app, host="127.0.0.1", port=0,
                              max_clients=args.max_clients)

    def close_tracked() -> None:
        with tracked_lock:
            sockets = list(tracked)
        for ws in sockets:
            with contextlib.suppress(ConnectionClosed):  # the client was already gone
                ws.close(reason=1001, message="Server shutting down")

    server.add_shutdown_hook(close_tracked)
    stopper: list[threading.Thread] = []

    def on_sigterm(signum, frame) -> None:
        # Python runs signal handlers on the main thread, i.e. inside run()'s
        # loop; shutdown() supports both that and being called from a thread.
        if args.inline_shutdown:
            server.shutdown()
        elif not stopper:
            stopper.append(threading.Thread(target=server.shutdown))
            stopper[0].start()

    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"PORT {server.port}", flush=True)
    server.run()
    for t in stopper:
        t.join(10)
    print("STOPPED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
