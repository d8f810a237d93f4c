"""Local launch: `python run.py [flags]` serves the app (HTTP and WebSockets) until Ctrl-C."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from werkzeug.serving import WSGIRequestHandler, make_server

from app.launcher import on_stop_signals, prepare, print_banner


class QuietRequestHandler(WSGIRequestHandler):
    """The token guard writes the (redacted) access log; werkzeug's own would leak the token."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    settings, app, services = prepare(sys.argv[1:] if argv is None else argv)
    server = make_server(settings.host, settings.port, app, threaded=True,
                         request_handler=QuietRequestHandler)

    def stop() -> None:
        raise KeyboardInterrupt

    on_stop_signals(stop)
    print_banner(settings.host, server.server_port, services.token)
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
