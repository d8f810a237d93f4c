"""Local launch: `python run.py [flags]` serves the app (HTTP and WebSockets) until Ctrl-C."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from werkzeug.serving import make_server

from app.launcher import on_stop_signals, prepare, print_banner
from app.serving.slow_heads import HeadGate
from app.serving.werkzeug_handler import request_handler


def main(argv: Sequence[str] | None = None) -> int:
    # The port is bound by prepare(), not by werkzeug, which answers a busy port with its
    # own text and exit 1.
    settings, app, services, listener = prepare(sys.argv[1:] if argv is None else argv)
    handler = request_handler(HeadGate(settings.max_heads_per_address, settings.head_timeout_s))
    server = make_server(settings.host, settings.port, app, threaded=True,
                         request_handler=handler, fd=listener.fileno())
    listener.close()  # werkzeug serves a duplicate of it

    def stop() -> None:
        raise KeyboardInterrupt

    on_stop_signals(stop)
    print_banner(settings.host, server.socket.getsockname()[1], services.token,
                 viewer_token=services.viewer_token)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        services.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
