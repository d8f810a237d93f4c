"""JSON errors: every HTTP error, anywhere in the app, answers in the contract's shape."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError, TooManyRequests

from .ratelimit import retry_after_seconds

logger = logging.getLogger(__name__)


def now_ms() -> int:
    """Milliseconds since the epoch, the timestamp of every response and event."""
    return int(time.time() * 1000)


class ApiError(HTTPException):
    """An error a view raises: `raise ApiError(404, "Session with id 'x' not found")`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(description=message)
        self.code = code


def error_response(error: HTTPException) -> Response:
    """Turn an HTTPException into `{"error", "message", "timestamp"}`, keeping its headers."""
    response = error.get_response()
    body = {"error": error.name, "message": error.description, "timestamp": now_ms()}
    if isinstance(error, TooManyRequests):
        body = _rate_limited_body()
    json_response = jsonify(body)
    json_response.status_code = error.code or 500
    for header, value in response.headers.items():
        if header.lower() not in ("content-type", "content-length"):
            json_response.headers[header] = value
    return json_response


def _rate_limited_body() -> dict:
    retry_after = retry_after_seconds()
    g.maestro_retry_after = retry_after
    return {
        "statusCode": 429,
        "error": "Too Many Requests",
        "message": "Rate limit exceeded. Try again later.",
        "retryAfter": retry_after,
        "timestamp": now_ms(),
    }


def register_error_handlers(app: Flask) -> None:
    """Send every HTTP error and every unexpected exception through error_response."""

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response:
        return error_response(error)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(InternalServerError("The server hit an unexpected error."))
