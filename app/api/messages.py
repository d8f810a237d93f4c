"""Client messages on the WebSocket: parse, rate-limit actions, run them, reply.

Actions go through the same SessionManager methods as the REST API, and draw on the same
pooled POST quota of the client's IP (reads on its GET quota; keys, resizes and interrupts
on its key budget), so the socket is no way around the limits. A view-only token's actions
are refused (`forbidden`); every action that is not rate limited, refused or not, goes to
the audit log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..auth import READ_ONLY_MESSAGE
from ..errors import ApiError, now_ms
from ..ratelimit import GET_SCOPE, POST_SCOPE, STOP_ACTION, KeyBudget, key_hit, quota_hit
from ..roles import OWNER, caller_role
from . import reject_invalid_unicode

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from ..services import Services
    from .ws import WsClient

logger = logging.getLogger(__name__)

# Message types that act on a session (refused for a viewer, audited), with the fields each
# takes besides `type` and `requestId`: as a REST body, an unknown field is refused (a typo
# must not be dropped silently). docs/ws-schema.json says the same (tests/test_ws_schema.py).
ACTION_FIELDS: dict[str, frozenset[str]] = {
    "send_command": frozenset({"sessionId", "command", "tabId", "inputMode"}),
    "interrupt": frozenset({"sessionId", "tabId"}),
    "switch_mode": frozenset({"sessionId", "mode"}),
    "select_tab": frozenset({"sessionId", "tabId"}),
    "new_tab": frozenset({"sessionId", "name"}),
    "close_tab": frozenset({"sessionId", "tabId"}),
    "rename_tab": frozenset({"sessionId", "tabId", "name"}),
    "input": frozenset({"sessionId", "data", "reply"}),
    "resize": frozenset({"sessionId", "cols", "rows"}),
    "keys": frozenset({"sessionId", "keys"}),
    "approve": frozenset({"sessionId", "approvalId", "decision", "message", "answers"}),
}
ACTIONS = frozenset(ACTION_FIELDS)
MESSAGE_FIELDS = frozenset({"type", "requestId"})
# Actions that cost one unit of the key budget; the others cost one of the POST quota.
KEY_ACTIONS = frozenset({"input", "resize", "keys", "interrupt"})
# Message types that read what GET endpoints serve, and so cost one unit of the GET quota.
READS = frozenset({"get_sessions", "subscribe"})


class MessageHandler:
    """Answers one client's messages (on the WebSocket message pool, one at a time)."""

    def __init__(self, client: WsClient, services: Services, limiter: Limiter,
                 key_budget: KeyBudget, remote_addr: str, limit_key: str) -> None:
        self.client = client
        self.services = services
        self.limiter = limiter
        self.key_budget = key_budget
        self.remote_addr = remote_addr  # for the audit log
        self.limit_key = limit_key  # whose quotas the socket's messages spend (client_key())
        # Built while the handshake's request is current: the socket keeps its token's role.
        self.role = caller_role()
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ping": lambda message: {"type": "pong"},
            "presence": self._presence,
            "subscribe": self._subscribe,
            "get_sessions": lambda message: {
                "type": "sessions_list", "sessions": self.services.manager.list_public()},
            "send_command": self._send_command,
            "interrupt": self._interrupt,
            "switch_mode": self._switch_mode,
            "select_tab": self._select_tab,
            "new_tab": self._new_tab,
            "close_tab": self._close_tab,
            "rename_tab": self._rename_tab,
            "input": self._input,
            "resize": self._resize,
            "keys": self._keys,
            "approve": self._approve,
        }

    def answer(self, data: str | bytes) -> None:
        """Queue the reply to one of the client's messages."""
        self.client.send({**self.handle(data), "timestamp": now_ms()})

    def handle(self, data: str | bytes) -> dict[str, Any]:
        """The reply to one raw message; never raises for bad input."""
        try:
            message = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {"type": "error", "message": "Invalid message format"}
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return {"type": "error", "message": "Invalid message format"}
        kind = message["type"]
        handler = self._handlers.get(kind)
        if handler is None:
            return {"type": "error", "message": f"Unknown message type: {kind}"}
        reply_type = _reply_type(kind)
        retry_after = self._charge(kind)
        if retry_after is not None:
            return {"type": "error", "code": "rate_limited", "retryAfter": retry_after,
                    "message": "Rate limit exceeded. Try again later.",
                    "requestType": kind, **_request_id(message)}
        if kind in ACTIONS and self.role != OWNER:
            self._audit(kind, message, 403, {})
            return {"type": "error", "code": "forbidden", "message": READ_ONLY_MESSAGE,
                    "requestType": kind, **_request_id(message)}
        try:
            reject_invalid_unicode(message)
            _refuse_unknown_fields(kind, message)
            reply = handler(message)
        except ApiError as exc:
            reply = {"type": reply_type, "success": False, "error": exc.description,
                     "statusCode": exc.code, "sessionId": message.get("sessionId")}
        except Exception:
            logger.exception("WebSocket message %s failed", kind)
            reply = {"type": reply_type, "success": False, "statusCode": 500,
                     "error": "The server hit an unexpected error",
                     "sessionId": message.get("sessionId")}
        if kind in ACTIONS:
            self._audit(kind, message, reply.get("statusCode", 200), reply)
        return {**reply, **_request_id(message)}

    def _charge(self, kind: str) -> int | None:
        """Spend what the message costs; None when allowed, else the seconds to wait."""
        settings = self.services.settings
        if kind in KEY_ACTIONS:
            return key_hit(self.key_budget, settings, self.limit_key, kind == STOP_ACTION)
        scope = POST_SCOPE if kind in ACTIONS else GET_SCOPE if kind in READS else None
        if scope is None:
            return None
        return quota_hit(self.limiter, settings, self.limit_key, scope)

    def _audit(self, kind: str, message: dict[str, Any], status: int,
               reply: dict[str, Any]) -> None:
        self.services.audit.record_action(channel="ws", action=kind, address=self.remote_addr,
                                          role=self.role, status=status, sent=message,
                                          reply=reply)

    # -- handlers -------------------------------------------------------------------------

    def _subscribe(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = message.get("sessionId")
        if session_id is not None:
            self.services.manager.get(_text(message, "sessionId"))
        self.client.set_scope(session_id, message.get("pty") is True)
        return {"type": "subscribed", "sessionId": session_id, "pty": self.client.pty}

    def _presence(self, message: dict[str, Any]) -> dict[str, Any]:
        """The page says which session it shows (null: the dashboard) and whether it is in
        the foreground: no push about a session an owner's page shows in the foreground."""
        session_id = _optional_text(message, "sessionId")
        visible = message.get("visible")
        if not isinstance(visible, bool):
            raise ApiError(400, "'visible' is required and must be true or false")
        if session_id is not None:
            self.services.manager.get(session_id)
        # A viewer watching holds back no push: the owner is not the one looking.
        self.client.presence = (session_id, visible) if self.role == OWNER else (None, False)
        return {"type": "presence_result", "success": True, "sessionId": session_id,
                "visible": visible}

    def _input(self, message: dict[str, Any]) -> dict[str, Any]:
        """Keys; or, with `reply`, the page's terminal answering a query of the program,
        passed on only from the socket whose size is in force (`ignored` otherwise)."""
        session_id = _text(message, "sessionId")
        reply = message.get("reply", False)
        if not isinstance(reply, bool):
            raise ApiError(400, "'reply' must be true or false")
        written = self.services.manager.write_input(
            session_id, message.get("data"), answer_from=self.client.id if reply else None)
        return {"type": "input_result", "success": True, "sessionId": session_id,
                **({} if written else {"ignored": True})}

    def _resize(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        cols, rows = self.services.manager.resize(session_id, message.get("cols"),
                                                  message.get("rows"), resizer=self.client.id)
        return {"type": "resize_result", "success": True, "sessionId": session_id,
                "cols": cols, "rows": rows}

    def _keys(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        names = message.get("keys")
        if not isinstance(names, list) or not names or not all(isinstance(k, str)
                                                               for k in names):
            raise ApiError(400, "'keys' must be a non-empty list of key names such as \"C-c\"")
        self.services.manager.send_keys(session_id, names)
        return {"type": "keys_result", "success": True, "sessionId": session_id, "keys": names}

    def _send_command(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        result = self.services.manager.send(
            session_id, message.get("command"), tab_id=_optional_text(message, "tabId"),
            input_mode=_optional_text(message, "inputMode"))
        return {"type": "command_result", "success": True, "sessionId": session_id, **result}

    def _interrupt(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        stopped_by = self.services.manager.interrupt(session_id,
                                                     _optional_text(message, "tabId"))
        return {"type": "interrupt_result", "success": True, "sessionId": session_id,
                "wasRunning": stopped_by is not None, "stoppedBy": stopped_by}

    def _switch_mode(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        session = self.services.manager.switch_mode(session_id, _text(message, "mode"))
        return {"type": "mode_switch_result", "success": True, "sessionId": session_id,
                "mode": session.input_mode}

    def _select_tab(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        tab = self.services.manager.select_tab(session_id, _text(message, "tabId"))
        return {"type": "select_tab_result", "success": True, "sessionId": session_id,
                "tabId": tab.id}

    def _new_tab(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        tab = self.services.manager.new_tab(session_id, _optional_text(message, "name"))
        return {"type": "new_tab_result", "success": True, "sessionId": session_id,
                "tab": tab.public()}

    def _close_tab(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        tab_id = _text(message, "tabId")
        self.services.manager.close_tab(session_id, tab_id)
        return {"type": "close_tab_result", "success": True, "sessionId": session_id,
                "tabId": tab_id}

    def _rename_tab(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        tab = self.services.manager.update_tab(
            session_id, _text(message, "tabId"), {"name": _optional_text(message, "name")})
        return {"type": "rename_tab_result", "success": True, "sessionId": session_id,
                "tab": tab.public()}


    def _approve(self, message: dict[str, Any]) -> dict[str, Any]:
        session_id = _text(message, "sessionId")
        approval = self.services.manager.decide_approval(
            session_id, _text(message, "approvalId"),
            {key: message.get(key) for key in ("decision", "message", "answers")})
        return {"type": "approve_result", "success": True, "sessionId": session_id,
                "approval": approval}


def _refuse_unknown_fields(kind: str, message: dict[str, Any]) -> None:
    """:raise ApiError 400: an action's message has a field the action does not take."""
    fields = ACTION_FIELDS.get(kind)
    unknown = sorted(set(message) - fields - MESSAGE_FIELDS) if fields is not None else []
    if unknown:
        takes = ", ".join(sorted(fields))
        raise ApiError(400, f"Unknown field '{unknown[0]}'; {kind} takes {takes}")


def _reply_type(kind: str) -> str:
    return {"send_command": "command_result", "interrupt": "interrupt_result",
            "switch_mode": "mode_switch_result", "subscribe": "subscribed",
            "get_sessions": "sessions_list", "ping": "pong"}.get(kind, f"{kind}_result")


def _request_id(message: dict[str, Any]) -> dict[str, Any]:
    return {"requestId": message["requestId"]} if "requestId" in message else {}


def _text(message: dict[str, Any], field: str) -> str:
    value = message.get(field)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"'{field}' is required and must be a string")
    return value


def _optional_text(message: dict[str, Any], field: str) -> str | None:
    return None if message.get(field) is None else _text(message, field)
