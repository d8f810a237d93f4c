"""The open approvals of every tab: opened by a turn, decided once, persisted and published.

An approval is decided once: by the user (REST or WebSocket), by the approval timeout, or by an
interrupt (also when its turn ends, its tab closes, the server stops, or a restart finds it still
open). Open approvals are held here (guarded by the bus lock) and in the store, decided ones only
in the store, so that a second decision is answered 409, not 404.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from ...errors import ApiError, now_ms
from ...events import EventBus
from ...store import Store
from .approvals import Approval, Decision

INTERRUPTED = Decision("deny", "The turn was interrupted")


@dataclasses.dataclass
class _Pending:
    approval: Approval
    answer: Callable[[Decision], None]  # passes the decision back to the agent
    timer: threading.Timer | None


class ApprovalDesk:
    def __init__(self, store: Store, bus: EventBus, timeout_s: float | None,
                 on_timeout: Callable[[Approval], None]) -> None:
        self.store = store
        self.bus = bus
        self.timeout_s = timeout_s or None
        self.on_timeout = on_timeout
        self._open: dict[str, _Pending] = {}

    def open(self, approval: Approval, answer: Callable[[Decision], None]) -> None:
        """Hold the approval until it is decided; `approval:requested` goes out."""
        timer = None
        if self.timeout_s is not None:
            timer = threading.Timer(self.timeout_s, self.on_timeout, (approval,))
            timer.daemon = True
        item = approval.public()
        self.store.save_approval(item, True)
        with self.bus.lock:
            self._open[approval.id] = _Pending(approval, answer, timer)
            self.bus.publish("approval:requested", sessionId=approval.session_id,
                             tabId=approval.tab_id, approval=item)
        if timer is not None:
            timer.start()

    def find(self, session_id: str, approval_id: str) -> Approval:
        """An open approval of the session.

        :raise ApiError 404: unknown (in this session); 409: already decided.
        """
        with self.bus.lock:
            pending = self._open.get(approval_id)
            if pending is not None and pending.approval.session_id == session_id:
                return pending.approval
        raise self._refusal(session_id, approval_id)

    def decide(self, session_id: str, approval_id: str, decision: Decision,
               by: str) -> tuple[Approval, Callable[[Decision], None]]:
        """Record the decision; returns the approval and the callback that passes the
        decision on to the agent (the caller calls it).

        :raise ApiError 404, 409: as find().
        """
        with self.bus.lock:
            pending = self._open.get(approval_id)
            if pending is None or pending.approval.session_id != session_id:
                pending = None
            else:
                del self._open[approval_id]
                approval = pending.approval
                approval.decision, approval.decided_by = decision, by
                approval.decided_at = now_ms()
        if pending is None:
            raise self._refusal(session_id, approval_id)
        self._closed(pending)
        return pending.approval, pending.answer

    def open_approvals(self, session_id: str, tab_id: str | None = None) -> list[Approval]:
        """The session's (or one tab's) open approvals, oldest first."""
        with self.bus.lock:
            return [p.approval for p in self._open.values()
                    if p.approval.session_id == session_id
                    and (tab_id is None or p.approval.tab_id == tab_id)]

    def withdraw(self, session_id: str, tab_id: str) -> list[Approval]:
        """Close the tab's open approvals as interrupted, without answering the agent (it
        is being interrupted or ended)."""
        closed = []
        for approval in self.open_approvals(session_id, tab_id):
            try:
                closed.append(self.decide(session_id, approval.id, INTERRUPTED, "interrupt")[0])
            except ApiError:
                continue  # decided meanwhile
        return closed

    def close_stale(self, session_id: str) -> None:
        """After a restart: what a stopped server left open is closed as interrupted."""
        for item in self.store.open_approvals(session_id):
            decided = {**item, "decision": INTERRUPTED.decision, "message": INTERRUPTED.message,
                       "answers": None, "by": "interrupt", "decidedAt": now_ms()}
            self.store.save_approval(decided, False)
            self._publish_resolved(decided)

    def _closed(self, pending: _Pending) -> None:
        if pending.timer is not None:
            pending.timer.cancel()
        item = pending.approval.public()
        self.store.save_approval(item, False)
        self._publish_resolved(item)

    def _publish_resolved(self, item: dict[str, Any]) -> None:
        self.bus.publish("approval:resolved", sessionId=item["sessionId"], tabId=item["tabId"],
                         approvalId=item["id"], decision=item["decision"], by=item["by"])

    def _refusal(self, session_id: str, approval_id: str) -> ApiError:
        """409 for an approval of the session decided before, else 404."""
        stored = self.store.approval(approval_id)
        if stored is not None and stored["sessionId"] == session_id:
            return ApiError(409, f"Approval '{approval_id}' was already decided "
                                 f"({stored.get('decision')} by {stored.get('by')})")
        return ApiError(404, f"Approval with id '{approval_id}' not found in session "
                             f"'{session_id}'")
