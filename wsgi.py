"""Production entry point.

- `app` is the WSGI application for any WSGI server (settings from MAESTRO_* and the config
  file), e.g. `waitress-serve wsgi:app` (HTTP only: WebSockets need the adapter below).
- `python wsgi.py [flags]` serves it with waitress through our WebSocket adapter, HTTP and
  WebSockets on one port (HTTPS and WSS with --tls-cert/--tls-key or --tls self-signed),
  with the same flags as run.py.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

HANDSHAKE_HEADROOM = 8


def main(argv: Sequence[str] | None = None) -> int:
    from app.launcher import on_stop_signals, prepare
    from app.serving import SERVER_NAME
    from app.serving.slow_clients import ConnectionGate
    from app.serving.waitress_ws import create_ws_server

    launch = prepare(sys.argv[1:] if argv is None else argv)
    settings = launch.settings
    # The app refuses sockets beyond --max-clients itself, after the token check; the
    # adapter's own limit is a little higher. The app detaches every WebSocket (its loop
    # serves them all), so no worker thread is kept per socket.
    # waitress refuses a body of max_request_body_size bytes or more (413) before reading
    # it, token or not; the app's own limit (MAX_CONTENT_LENGTH) allows exactly N bytes.
    server = create_ws_server(launch.app, host=settings.host, port=settings.port,
                              max_clients=settings.max_clients + HANDSHAKE_HEADROOM,
                              detached_websockets=True,
                              max_request_body_size=settings.max_body_bytes + 1,
                              ident=SERVER_NAME, sockets=[launch.listener], tls=launch.tls,
                              gate=ConnectionGate(settings.max_connections_per_address,
                                                 settings.request_timeout_s))
    server.add_shutdown_hook(launch.shutdown)
    on_stop_signals(lambda: threading.Thread(target=server.shutdown, name="shutdown").start())
    launch.print_banner(server.port)
    try:
        server.run()
    except KeyboardInterrupt:
        server.shutdown()
    finally:
        launch.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:
    from app import create_app
    from app.config import load_settings

    app = create_app(load_settings([]))
