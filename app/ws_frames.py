"""WebSocket frames as a server writes them (RFC 6455 section 5.2).

A server's frames are never masked, so one message's frame is the same bytes for every
client: the bus frames each event once (events.Event.frame) and the writer loop sends those
bytes to every client that wants the event.
"""

from __future__ import annotations

import struct

OPCODE_TEXT = 0x1
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA
FIN = 0x80
MAX_CLOSE_REASON_BYTES = 123  # a control frame's payload is at most 125 bytes


def frame(opcode: int, payload: bytes) -> bytes:
    """One whole, final, unmasked frame."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", FIN | opcode, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", FIN | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", FIN | opcode, 127, size)
    return header + payload


def text_frame(text: str) -> bytes:
    return frame(OPCODE_TEXT, text.encode())


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason is cut (on a character boundary) to fit a control frame."""
    data = reason.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore").encode()
    return frame(OPCODE_CLOSE, code.to_bytes(2, "big") + data)


PING_FRAME = frame(OPCODE_PING, b"")
