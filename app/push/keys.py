"""The server's VAPID key pair (RFC 8292): made once, kept in `<data-dir>/vapid.pem` (0600).

Browsers tie a subscription to the public key it was made with: a new key would silently
orphan every phone's subscription, so the key is never replaced while its file is readable.
"""

from __future__ import annotations

import logging
import os

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from py_vapid.utils import b64urlencode

from ..store import write_private_file

VAPID_FILE = "vapid.pem"

logger = logging.getLogger(__name__)


def load_vapid(data_dir: str) -> Vapid:
    """The kept key pair, or a new one written to the data dir (which exists by now)."""
    path = os.path.join(data_dir, VAPID_FILE)
    try:
        with open(path, "rb") as handle:
            return Vapid.from_pem(handle.read())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        # Not ours to overwrite: the user may restore it; push stays off meanwhile.
        raise OSError(f"the Web Push key {path} cannot be read ({exc}); move it away to "
                      "make a new one (every phone then subscribes again)") from None
    vapid = Vapid()
    vapid.generate_keys()
    write_private_file(path, vapid.private_pem().decode("ascii"))
    logger.info("made the Web Push (VAPID) key %s", path)
    return vapid


def application_server_key(vapid: Vapid) -> str:
    """The public key as browsers take it (`applicationServerKey`): the uncompressed P-256
    point, base64url without padding."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return b64urlencode(raw)
