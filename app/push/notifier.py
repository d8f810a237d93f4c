"""The notifier: turns bus events into Web Push messages, sent off the bus's thread.

The bus calls `on_event` under its lock for every event, so it only picks the few that
matter and queues a Notice (a bounded queue: when the push services are slow, newer
notices are dropped and counted, never waited for); an event about a session that some page
shows in the foreground at that moment calls for none. One worker thread takes the notices in
order and posts an encrypted message (RFC 8291, VAPID RFC 8292, via pywebpush) to each
subscription that wants the category, each post bounded by --push-timeout-s. A push service
that answers 404 or 410 has forgotten the subscription: we forget it too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from pywebpush import WebPushException, webpush

from ..config import Settings
from ..events import Event
from ..store import Store

logger = logging.getLogger(__name__)

GONE = (404, 410)  # the push service no longer knows the subscription
TTL_S = 6 * 3600  # how long a push service keeps a message for a phone that is off
REASON_MAX_CHARS = 200  # per line: a push message holds about 4 KB
WAITING_REASON = "Waiting for your input"


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something a user may want to hear about: which session, why, and the category."""

    category: str
    session_id: str
    reason: str


def notice_for(event: Event, shell_state: Callable[[str], str]) -> Notice | None:
    """The notice an event calls for, if any (called under the bus lock: no I/O)."""
    kind, session_id = event["type"], event.get("sessionId")
    if kind == "approval:requested":
        approval = event.get("approval") or {}
        reason = approval.get("title") or approval.get("tool") or "An agent asks for approval"
        return Notice("needs_input", session_id, first_line(str(reason)))
    if (kind == "session:state" and event.get("state") == "waiting_input"
            and event.get("previousState") != "waiting_input"
            and shell_state(session_id) == "waiting_input"):
        # An agent's approval also makes the session wait: that one says more, above.
        return Notice("needs_input", session_id, WAITING_REASON)
    if kind == "history:added":
        entry = event.get("entry") or {}
        session_id = entry.get("sessionId")
        summary = first_line(str(entry.get("summary") or ""))
        if entry.get("success"):
            return Notice("finished", session_id, f"Finished: {summary}")
        code = entry.get("exitCode")
        how = f"Failed (exit {code})" if isinstance(code, int) and code else "Failed"
        return Notice("failed", session_id, f"{how}: {summary}")
    return None


def first_line(text: str) -> str:
    """The first non-blank line, cut to REASON_MAX_CHARS."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= REASON_MAX_CHARS else line[:REASON_MAX_CHARS - 1] + "…"


class PushNotifier:
    """Queues notices from the bus and pushes them from its own worker thread."""

    def __init__(self, store: Store, vapid: Any, settings: Settings,
                 shell_state: Callable[[str], str], session_name: Callable[[str], str | None],
                 in_view: Callable[[str], bool]) -> None:
        self.store = store
        self.vapid = vapid
        self.settings = settings
        self._shell_state = shell_state
        self._session_name = session_name  # None: the session is gone
        self._in_view = in_view  # some page shows the session in the foreground
        self._queue: queue.Queue[Notice | None] = queue.Queue(settings.push_queue_size)
        self.dropped = 0  # notices lost to a full queue
        self._http = requests.Session()
        self._http.max_redirects = 0  # a push service answers; it does not send us elsewhere
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._run, name="push-notifier", daemon=True)
        self._worker.start()

    def on_event(self, event: Event) -> None:
        """The bus's listener: queue the event's notice, never block."""
        notice = notice_for(event, self._shell_state)
        if notice is None or not notice.session_id or self._in_view(notice.session_id):
            return  # in view: the user saw it happen, whenever the push would go out
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            self.dropped += 1
            logger.warning("push: %d notification(s) dropped, the push services are slow",
                           self.dropped)

    def stop(self, timeout: float) -> None:
        """End the worker: what it is sending may finish within `timeout`; notices still
        queued are dropped (the store closes next)."""
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # wakes a worker waiting for a notice
        self._worker.join(timeout)

    def _run(self) -> None:
        while (notice := self._queue.get()) is not None and not self._stopping.is_set():
            try:
                self._deliver(notice)
            except Exception:
                logger.exception("push: delivering a notification failed")

    def _deliver(self, notice: Notice) -> None:
        name = self._session_name(notice.session_id)
        if name is None:
            return
        payload = json.dumps({
            "title": first_line(name), "body": notice.reason, "category": notice.category,
            "sessionId": notice.session_id, "url": f"session/{notice.session_id}",
        }, separators=(",", ":"))
        for subscription in self.store.push_subscriptions(notice.category):
            self._send(subscription, payload, notice.category)

    def _send(self, subscription: dict[str, Any], payload: str, category: str) -> None:
        endpoint = subscription["endpoint"]
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        try:
            webpush({"endpoint": endpoint, "keys": {"p256dh": subscription["p256dh"],
                                                    "auth": subscription["auth"]}},
                    data=payload, vapid_private_key=self.vapid,
                    vapid_claims={"sub": self.settings.push_contact, "aud": origin},
                    timeout=self.settings.push_timeout_s, ttl=TTL_S,
                    headers={"Urgency": "high" if category == "needs_input" else "normal"},
                    requests_session=self._http)
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in GONE:
                self.store.delete_push_subscription(subscription["id"])
                logger.info("push: %s forgot subscription %s (%s); removed it", origin,
                            subscription["id"], status)
            else:
                logger.warning("push: %s refused a notification (%s)", origin, status)
        except requests.RequestException as exc:
            logger.warning("push: %s could not be reached (%s)", origin, type(exc).__name__)
