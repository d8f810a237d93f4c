"""Local launch: `python run.py [flags]` serves the app (HTTP and WebSockets, or HTTPS and WSS
with --tls-cert/--tls-key or --tls self-signed) until Ctrl-C."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from werkzeug.serving import make_server

from app.launcher import on_stop_signals, prepare
from app.serving.fd_reserve import FdReserve
from app.serving.slow_clients import ConnectionGate
from app.serving.werkzeug_handler import keep_detached, request_handler, serve_tls


def main(argv: Sequence[str] | None = None) -> int:
    # The port is bound by prepare(), not by werkzeug, which answers a busy port with its
    # own text and exit 1.
    launch = prepare(sys.argv[1:] if argv is None else argv)
    settings = launch.settings
    handler = request_handler(ConnectionGate(settings.max_connections_per_address,
                                             settings.request_timeout_s),
                              settings.max_body_bytes)
    server = make_server(settings.host, settings.port, launch.app, threaded=True,
                         request_handler=handler, fd=launch.listener.fileno())
    keep_detached(server, handler)  # WebSockets outlive their request: the app's loop has them
    launch.listener.close()  # werkzeug serves a duplicate of it
    if launch.tls is not None:
        serve_tls(server, launch.tls)
    # Out of descriptors, a connection is refused with 503 instead of a busy accept loop.
    fd_reserve = FdReserve()
    server.get_request = fd_reserve.guard(server.get_request, server.socket, reraise=True)

    def stop() -> None:
        raise KeyboardInterrupt

    on_stop_signals(stop)
    launch.print_banner(server.socket.getsockname()[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        launch.shutdown()
        server.server_close()
        fd_reserve.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
