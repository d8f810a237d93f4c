"""Local launch: `python run.py [flags]` serves the app (HTTP and WebSockets) until Ctrl-C."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from werkzeug.serving import WSGIRequestHandler, make_server

from app.launcher import SERVER_NAME, on_stop_signals, prepare, print_banner


class QuietRequestHandler(WSGIRequestHandler):
    """The token guard writes the (redacted) access log; werkzeug's own would leak the token.
    The Server header names no framework or Python version."""

    server_version = SERVER_NAME
    sys_version = ""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def version_string(self) -> str:
        return SERVER_NAME


def main(argv: Sequence[str] | None = None) -> int:
    # The port is bound by prepare(), not by werkzeug, which answers a busy port with its
    # own text and exit 1.
    settings, app, services, listener = prepare(sys.argv[1:] if argv is None else argv)
    server = make_server(settings.host, settings.port, app, threaded=True,
                         request_handler=QuietRequestHandler, fd=listener.fileno())
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
