"""Serving: waitress with WebSocket support (wsgi.py), werkzeug's handler (run.py), guards."""

SERVER_NAME = "maestro-web"  # the Server header of both launchers: no framework or version
# The WSGI environ key of a WebSocket request under which both launchers put a callable:
# the app calls it to keep the connection open after its request returns (the app's
# WebSocket loop then owns the socket and closes it), freeing the request's thread.
DETACH_KEY = "maestro.websocket.detach"
