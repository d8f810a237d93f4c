"""Serving: waitress with WebSocket support (wsgi.py), werkzeug's handler (run.py), guards."""

SERVER_NAME = "maestro-web"  # the Server header of both launchers: no framework or version
