"""Refuse a connection, rather than spin or die, when the process is out of descriptors.

Out of descriptors, accept() fails with EMFILE while the connection stays in the backlog:
the listening socket stays readable and the server's loop retries it at once, forever (one
core busy, the client hanging). One descriptor kept in reserve lets us accept that
connection, answer 503 and close it. Used by both launchers.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from .slow_clients import refusal

log = logging.getLogger(__name__)

OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})


class FdReserve:
    """One spare descriptor, spent to refuse a connection accept() could not take.

    Out of descriptors, accept() fails with EMFILE while the connection stays in the
    backlog: the listening socket stays readable and the loop retries it forever, and
    the client hangs. Closing the spare lets us accept it, answer 503 and close it.
    """

    def __init__(self) -> None:
        self._spare: int | None = self._open_spare()

    @staticmethod
    def _open_spare() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def guard(self, accept: Callable[[], Any], listener: socket.socket, *,
              reraise: bool = False) -> Callable[[], Any]:
        """`accept`, refusing one connection on EMFILE/ENFILE; then None (a wasyncore
        dispatcher's "nothing accepted") or, with `reraise`, the error (socketserver's
        get_request, whose caller skips a failed accept)."""

        def guarded_accept() -> Any:
            try:
                return accept()
            except OSError as exc:
                if exc.errno not in OUT_OF_DESCRIPTORS:
                    raise
                self.refuse_one(listener)
                if reraise:
                    raise
                return None

        return guarded_accept

    def refuse_one(self, listener: socket.socket) -> None:
        log.warning("out of file descriptors: refusing a connection with 503")
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.setblocking(False)
                with contextlib.suppress(OSError):
                    conn.send(refusal("503 Service Unavailable",
                                      "Server is out of file descriptors; try again later"))
                    conn.shutdown(socket.SHUT_WR)
        # Another thread may have taken the freed number: then the next refusal only
        # closes (or, without any descriptor, the loop retries as before).
        self._spare = self._open_spare()

    def close(self) -> None:
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None
