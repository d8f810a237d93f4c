"""A raw-socket WebSocket client with its own frame parser, to check the bytes the server writes.

websocket-client would resynchronise or raise deep inside; this one reads exactly what is on
the wire, so a test can say which frame broke and how.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import time

OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY = 0x0, 0x1, 0x2
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA
KNOWN_OPCODES = frozenset({OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY,
                           OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG})
MAX_CONTROL_PAYLOAD = 125


class MalformedFrame(AssertionError):
    """The server wrote something that is not a well-formed server frame."""


class RawWebSocket:
    """One client connection: handshake, then frames parsed byte by byte.

    `read_piece` and `read_pause_s` make it a slow reader: it takes at most `read_piece`
    bytes per recv() and sleeps `read_pause_s` after each.
    """

    def __init__(self, port: int, path: str, *, rcvbuf: int | None = None,
                 mss: int | None = None,
                 read_piece: int = 65536, read_pause_s: float = 0.0,
                 timeout: float = 30) -> None:
        self.read_piece = read_piece
        self.read_pause_s = read_pause_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect(): it sizes the TCP window offered
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss is not None:  # small segments keep the server's send buffer small too
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self._buffer = bytearray()
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        end = self._buffer.index(b"\r\n\r\n") + 4
        self.response_head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[:end]
        if not self.response_head.startswith("HTTP/1.1 101"):
            raise ConnectionError(self.response_head)

    def _fill(self) -> None:
        chunk = self.sock.recv(self.read_piece)
        if not chunk:
            raise EOFError("the server closed the connection")
        self._buffer += chunk
        if self.read_pause_s:
            time.sleep(self.read_pause_s)

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._fill()
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def next_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame; MalformedFrame when it is not a valid
        unmasked, unfragmented, extension-free server frame."""
        first, second = self._take(2)
        fin, rsv, opcode = first & 0x80, first & 0x70, first & 0x0F
        masked, length = second & 0x80, second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        problems = []
        if opcode not in KNOWN_OPCODES or opcode == OPCODE_CONTINUATION:
            problems.append(f"opcode {opcode:#x}")
        if not fin:
            problems.append("FIN not set")
        if rsv:
            problems.append(f"RSV bits {rsv:#x}")
        if masked:
            problems.append("masked")
        if opcode >= OPCODE_CLOSE and length > MAX_CONTROL_PAYLOAD:
            problems.append(f"control frame of {length} bytes")
        if length > 1 << 26:
            problems.append(f"implausible length {length}")
        if problems:
            raise MalformedFrame(f"header {first:#04x} {second:#04x}: " + ", ".join(problems))
        return opcode, self._take(length)

    def send_frame(self, opcode: int, payload: bytes = b"") -> None:
        """A masked client frame (FIN set), as RFC 6455 requires of clients."""
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        self.sock.close()
