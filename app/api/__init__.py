"""The HTTP and WebSocket API: one blueprint per resource, and the helpers they share."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import current_app, request

from ..errors import ApiError, now_ms
from ..services import Services
from ..sessions.manager import is_utf8
from . import openapi

API_PREFIX = "/api"


def services() -> Services:
    return current_app.extensions["maestro"]


def ok(body: dict[str, Any], status: int = 200) -> tuple[dict[str, Any], int]:
    """A JSON body with the contract's timestamp."""
    return {**body, "timestamp": now_ms()}, status


def json_body() -> dict[str, Any]:
    """The request's JSON object ({} when there is no body).

    :raise ApiError 415: the body is not declared as JSON.
    :raise ApiError 400: the body is not valid JSON or not an object.
    """
    data = request.get_data(cache=True)
    if not data:
        return {}
    _refuse_cut_chunked_body(len(data))
    if not request.is_json:
        raise ApiError(415, "Request body must be JSON (Content-Type: application/json)")
    try:
        body = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    reject_invalid_unicode(body)
    _refuse_unknown_fields(body)
    return body


def _refuse_unknown_fields(body: dict[str, Any]) -> None:
    """Hold the body to its route's OpenAPI schema (additionalProperties: false): a field
    the route does not take is a mistake (a typo, a wrong endpoint), never silently dropped.

    :raise ApiError 400: naming the first unknown field and the fields the route takes.
    """
    allowed = openapi.body_fields(request.url_rule.rule, request.method)
    unknown = sorted(set(body) - allowed) if allowed is not None else []
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no fields"
        raise ApiError(400, f"Unknown field '{unknown[0]}'; this endpoint takes {takes}")


def _refuse_cut_chunked_body(received: int) -> None:
    """A chunked body (no Content-Length) is read up to the body limit and no further: if
    more follows, the body was too large, not malformed.

    :raise ApiError 413: the body goes on past --max-body-bytes.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    cut = (request.content_length is None and limit is not None and received >= limit
           and request.environ["wsgi.input"].read(1))
    if cut:
        raise ApiError(413, f"Request body is larger than {limit} bytes")


def reject_invalid_unicode(message: dict[str, Any]) -> None:
    """Refuse a JSON object holding a lone surrogate (e.g. "\\ud800") anywhere.

    JSON may spell one, but no path, pty or SQLite text can hold it: refused at the
    door, it can never become a 500 or a stored name that breaks every later read.

    :raise ApiError 400: naming the first field that holds one.
    """
    pending: list[tuple[str, Any]] = [("", message)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((f"{path}.{key}" if path else key, item) for key, item in value.items())
            keys = value.keys()
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
            keys = ()
        else:
            keys = (value,) if isinstance(value, str) else ()
        for text in keys:
            if not is_utf8(text):
                raise ApiError(400, f"'{path or 'body'}' holds invalid Unicode (a lone surrogate)")


def text_field(body: dict[str, Any], name: str, *, required: bool = False,
               max_length: int = 1000, allow_empty: bool = False) -> str | None:
    """A string field of a body; ApiError 400 when missing (if required), not a string or empty."""
    if name not in body or body[name] is None:
        if required:
            raise ApiError(400, f"'{name}' is required and must be a string")
        return None
    value = body[name]
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ApiError(400, f"'{name}' must be a non-empty string")
    if len(value) > max_length:
        raise ApiError(400, f"'{name}' is longer than {max_length} characters")
    return value


SQLITE_INT_MAX = 2**63 - 1
INTEGER = re.compile(r"-?[0-9]+")  # what int() takes, less spaces, underscores and other digits


def query_arg(name: str) -> str | None:
    """A query argument given at most once (None when absent).

    :raise ApiError 400: the argument is given more than once.
    """
    values = request.args.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"Query parameter '{name}' is given more than once")
    return values[0] if values else None


def int_arg(name: str, *, default: int | None = None, low: int = 0,
            high: int = SQLITE_INT_MAX) -> int | None:
    """An integer query argument (decimal digits); ApiError 400 when it is not one (an empty
    value included) or out of range."""
    raw = query_arg(name)
    if raw is None:
        return default
    if not INTEGER.fullmatch(raw):
        raise ApiError(400, f"Query parameter '{name}' must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, f"Query parameter '{name}' must be between {low} and {high}")
    return value
