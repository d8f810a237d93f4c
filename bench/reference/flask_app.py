"""Bare Flask + waitress: the REST reference (bench/reference.py), serving the given bytes.

    python3 bench/reference/flask_app.py PORT SESSIONS_FILE SESSION_FILE
"""

import sys
from pathlib import Path

import waitress
from flask import Flask, Response

port, sessions_file, session_file = sys.argv[1:4]
sessions, session = Path(sessions_file).read_bytes(), Path(session_file).read_bytes()
app = Flask(__name__)
app.add_url_rule("/sessions", "sessions", lambda: Response(sessions, mimetype="application/json"))
app.add_url_rule("/session", "session", lambda: Response(session, mimetype="application/json"))
server = waitress.create_server(app, host="127.0.0.1", port=int(port), threads=8)
print(f"listening {port}", flush=True)
server.run()
