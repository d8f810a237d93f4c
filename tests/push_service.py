"""A stand-in push service on 127.0.0.1, and a browser's side of a subscription.

The stand-in keeps every request it receives (what a real push service would forward to the
phone) and answers with the status a test chooses. A `Browser` holds what a real browser
makes when it subscribes: a P-256 key pair and a 16-byte auth secret; it decrypts what the
push service received with them (RFC 8291, `http_ece`), as the phone would.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

RECEIVE_TIMEOUT_S = 30


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    """One request the push service got."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class PushService:
    """A threaded HTTP server: POST /push/<anything> is recorded and answered `status`;
    while `answering` is clear, each request waits for it (a push service that hangs)."""

    def __init__(self) -> None:
        self.status = 201
        self.received: queue.Queue[Received] = queue.Queue()
        self.answering = threading.Event()
        self.answering.set()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                service.received.put(Received(self.path, headers, body))
                service.answering.wait(RECEIVE_TIMEOUT_S)
                self.send_response(service.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def next(self) -> Received:
        """The next request, in the order they came; fails after RECEIVE_TIMEOUT_S."""
        return self.received.get(timeout=RECEIVE_TIMEOUT_S)

    def close(self) -> None:
        self.answering.set()
        self._server.shutdown()
        self._server.server_close()


class Browser:
    """The keys of one push subscription, as a browser makes them."""

    def __init__(self, service: PushService) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = f"{service.origin}/push/{b64url(os.urandom(12))}"

    def subscription(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}

    def decrypt(self, received: Received) -> dict[str, Any]:
        """The notification's JSON, decrypted with this browser's keys."""
        assert received.headers["content-encoding"] == "aes128gcm"
        clear = http_ece.decrypt(received.body, private_key=self.private_key,
                                 auth_secret=self.auth, version="aes128gcm")
        return json.loads(clear)


def vapid_claims(authorization: str, public_key: str) -> dict[str, Any]:
    """The claims of a `vapid t=<JWT>,k=<key>` header, once its ES256 signature checks out
    against `public_key` (the server's, from GET push/key) and `k` is that key."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in params.split(","))
    assert fields["k"] == public_key
    head, claims, signature = fields["t"].split(".")
    assert json.loads(unb64url(head)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64url(signature)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public_key))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    return json.loads(unb64url(claims))
