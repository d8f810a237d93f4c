"""Web Push blueprint: the server's public key, and the browsers' subscriptions.

Under the token (or the pairing cookie) and the rate limits like every route; subscribing
and unsubscribing are changes, so a view-only token cannot.
"""

from __future__ import annotations

from flask import Blueprint

from ..errors import ApiError
from ..push.keys import application_server_key
from ..push.subscription import parse_subscription, public
from . import API_PREFIX, json_body, ok, services

bp = Blueprint("push", __name__, url_prefix=API_PREFIX)


@bp.get("/push/key")
def push_key():
    """The VAPID public key, for `pushManager.subscribe({applicationServerKey})`."""
    return ok({"publicKey": application_server_key(services().push.vapid)})


@bp.get("/push/subscriptions")
def push_subscriptions():
    """The kept subscriptions (a page checks that its browser's is still among them)."""
    kept = [public(item) for item in services().store.push_subscriptions()]
    return ok({"subscriptions": kept, "count": len(kept)})


@bp.post("/push/subscriptions")
def push_subscribe():
    svc = services()
    doc = parse_subscription(json_body(), svc.settings.push_allow_loopback_http)
    limit = svc.settings.push_max_subscriptions
    try:
        saved, created = svc.store.save_push_subscription(doc, limit)
    except OverflowError:
        raise ApiError(409, f"Too many push subscriptions (limit {limit}); unsubscribe "
                            "another browser first") from None
    return ok({"subscription": public(saved)}, 201 if created else 200)


@bp.delete("/push/subscriptions/<subscription_id>")
def push_unsubscribe(subscription_id: str):
    if not services().store.delete_push_subscription(subscription_id):
        raise ApiError(404, f"Push subscription '{subscription_id[:64]}' not found")
    return ok({"success": True, "id": subscription_id})
