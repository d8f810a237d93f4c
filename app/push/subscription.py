"""What a browser's PushSubscription must look like before we keep it and post to it.

The endpoint is a URL we will POST to from this machine, so it is held to https (a loopback
http stand-in only with --push-allow-loopback-http), a bounded length and no credentials; the
keys must be what RFC 8291 encryption needs: a P-256 public point and a 16-byte secret.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import ApiError, now_ms

CATEGORIES = ("needs_input", "finished", "failed")
ENDPOINT_MAX_CHARS = 2048
KEY_MAX_CHARS = 200  # base64url of a 65-byte point is 87 characters
P256_POINT_BYTES = 65
AUTH_SECRET_BYTES = 16
LOOPBACK_NAMES = ("localhost",)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def parse_subscription(body: dict[str, Any], allow_loopback_http: bool) -> dict[str, Any]:
    """The subscription to keep from a `POST push/subscriptions` body.

    :raise ApiError 400: naming the first field that is wrong.
    """
    subscription = body.get("subscription")
    if not isinstance(subscription, dict):
        raise ApiError(400, "'subscription' is required: the browser's PushSubscription "
                            "as JSON (subscription.toJSON())")
    endpoint = _endpoint(subscription.get("endpoint"), allow_loopback_http)
    keys = subscription.get("keys")
    if not isinstance(keys, dict):
        raise ApiError(400, "'subscription.keys' must be an object with 'p256dh' and 'auth'")
    p256dh = _base64url(keys, "p256dh", P256_POINT_BYTES)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _decode(p256dh))
    except ValueError:
        raise ApiError(400, "'subscription.keys.p256dh' is not a P-256 public key") from None
    auth = _base64url(keys, "auth", AUTH_SECRET_BYTES)
    return {"id": str(uuid.uuid4()), "endpoint": endpoint, "p256dh": p256dh, "auth": auth,
            "categories": _categories(body.get("categories", list(CATEGORIES))),
            "createdAt": now_ms()}


def public(subscription: dict[str, Any]) -> dict[str, Any]:
    """A subscription as the API shows it: never its keys, and of its endpoint only the
    push service's origin (the whole URL is a capability to reach the phone)."""
    parts = urlsplit(subscription["endpoint"])
    return {"id": subscription["id"], "categories": subscription["categories"],
            "pushService": f"{parts.scheme}://{parts.netloc}",
            "createdAt": subscription["createdAt"]}


def _endpoint(value: Any, allow_loopback_http: bool) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError(400, "'subscription.endpoint' must be the push service's URL")
    if len(value) > ENDPOINT_MAX_CHARS:
        raise ApiError(400, f"'subscription.endpoint' is longer than {ENDPOINT_MAX_CHARS} "
                            "characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ApiError(400, "'subscription.endpoint' is not a valid URL") from None
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise ApiError(400, "'subscription.endpoint' must be an https URL with a host and "
                            "no user name, password or fragment")
    if parts.scheme == "https":
        return value
    if parts.scheme == "http" and allow_loopback_http and _is_loopback(host):
        return value
    hint = (" (http only on a loopback address, with --push-allow-loopback-http)"
            if parts.scheme == "http" else "")
    raise ApiError(400, f"'subscription.endpoint' must be an https URL{hint}")


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base64url(keys: dict[str, Any], name: str, size: int) -> str:
    value = keys.get(name)
    field = f"'subscription.keys.{name}'"
    if not isinstance(value, str) or len(value) > KEY_MAX_CHARS or not _BASE64URL.fullmatch(value):
        raise ApiError(400, f"{field} must be base64url text")
    try:
        decoded = _decode(value)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{field} must be base64url text") from None
    if len(decoded) != size:
        raise ApiError(400, f"{field} must hold {size} bytes, not {len(decoded)}")
    return value.rstrip("=")


def _decode(text: str) -> bytes:
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _categories(value: Any) -> list[str]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(item, str) for item in value)):
        raise ApiError(400, f"'categories' must be a non-empty list of {', '.join(CATEGORIES)} "
                            "(to stop every notification, DELETE the subscription)")
    unknown = [item for item in value if item not in CATEGORIES]
    if unknown:
        raise ApiError(400, f"Unknown category {unknown[0][:40]!r}; the categories are "
                            f"{', '.join(CATEGORIES)}")
    return [item for item in CATEGORIES if item in value]
