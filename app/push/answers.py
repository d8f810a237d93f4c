"""A requests session that reads a push service's answer within a deadline and a size.

A push service answers a post with a status and at most a short error text. requests reads
the whole body before it returns, and its timeout bounds each read, not the answer: a
service that answers with gigabytes, or with a byte every few seconds, would grow the
worker's memory or hold it forever, and every later notification with it.
"""

from __future__ import annotations

import time
from typing import Any

import requests
import urllib3

ANSWER_MAX_BYTES = 64 * 1024  # what we keep of an answer: errors are a few hundred bytes
READ_BYTES = 16 * 1024


class BoundedAnswers(requests.Session):
    """Each answer is read for at most `deadline_s` seconds and `max_bytes` bytes, then the
    connection is closed; redirects are not followed (a push service does not send us
    elsewhere)."""

    def __init__(self, deadline_s: float, max_bytes: int = ANSWER_MAX_BYTES) -> None:
        super().__init__()
        self.max_redirects = 0
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        kwargs["stream"] = True
        response = super().request(method, url, *args, **kwargs)
        deadline = time.monotonic() + self.deadline_s
        body = bytearray()
        try:
            while len(body) < self.max_bytes:
                if time.monotonic() > deadline:
                    raise requests.Timeout(f"the answer took longer than {self.deadline_s} s")
                chunk = response.raw.read1(READ_BYTES)
                if not chunk:
                    break
                body += chunk
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(exc) from exc
        finally:
            response.close()  # the rest of an answer too long is never read
        response._content = bytes(body[:self.max_bytes])
        response._content_consumed = True
        return response
