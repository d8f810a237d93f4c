"""Who a request comes from: the role the token guard (app/auth.py) gave it.

Apart from auth.py so that modules auth.py itself depends on (the rate limits) can ask too.
"""

from __future__ import annotations

from flask import request

ROLE_KEY = "maestro.role"
OWNER = "owner"
VIEWER = "viewer"


def caller_role() -> str | None:
    """The current request's role: OWNER, VIEWER, or None on an open path (`/health`)."""
    return request.environ.get(ROLE_KEY)
