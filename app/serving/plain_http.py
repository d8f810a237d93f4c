"""Plain HTTP sent to the HTTPS port (a typed http://, an old bookmark) gets one readable line
instead of a connection that just closes, under both launchers.

OpenSSL recognises an HTTP request where a TLS handshake should be (SSL_R_HTTP_REQUEST). The
request is not read further: its path holds the token, so the answer names no URL and
redirects nowhere; it is written beneath TLS, in the clear, as the client expects.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

HINT = "This server speaks HTTPS only: open the same address with https:// instead of http://.\n"
RESPONSE = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: " + str(len(HINT)).encode() + b"\r\nConnection: close\r\n\r\n"
            + HINT.encode())


def is_plain_http(error: BaseException) -> bool:
    """Did the TLS handshake fail because the client spoke plain HTTP?"""
    return isinstance(error, ssl.SSLError) and error.reason == "HTTP_REQUEST"


def answer_plain_http(connection: ssl.SSLSocket) -> None:
    """Send the hint in the clear on a connection whose handshake failed; best effort (the
    reply is small enough for any socket buffer, so a non-blocking socket takes it whole)."""
    with contextlib.suppress(OSError):
        socket.socket.send(connection, RESPONSE)
