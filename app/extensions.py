"""Unbound Flask extensions; create_app() binds them (the limiter is built per app there)."""

from flask_cors import CORS
from flask_sock import Sock

sock = Sock()
cors = CORS()
