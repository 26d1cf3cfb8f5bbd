"""WebSocket frames (RFC 6455 §5), sans I/O: building them and parsing a byte stream into messages.

Why not wsproto for this part: a chat connection is mostly data frames going one
way, and a fan-out sends the same frame to thousands of connections. Building a
server frame once and writing the same bytes everywhere, and parsing a whole
read's worth of frames in one loop, costs a fraction of a general state machine
per frame. The opening handshake, which is HTTP, is left to the I/O layers.

No extensions are negotiated, so the reserved bits must be zero; messages may
be fragmented; control frames may come between fragments.
"""

from __future__ import annotations

import struct
from typing import Final

CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA
_DATA = (TEXT, BINARY)
_CONTROL = (CLOSE, PING, PONG)

_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


class FrameError(ValueError):
    """The peer broke the framing rules; close the connection with ``code`` (1002, 1007 or 1009)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def frame(payload: bytes, opcode: int = BINARY, *, mask: bytes | None = None) -> bytes:
    """One final frame. Servers send unmasked frames (the same bytes suit every peer); clients must mask (§5.3)."""
    size = len(payload)
    first = 0x80 | opcode
    bit = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = _HEAD16.pack(first, bit | 126, size)
    else:
        head = _HEAD64.pack(first, bit | 127, size)
    if mask is None:
        return head + payload
    return head + mask + apply_mask(payload, mask)


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-byte key, as one big-integer operation (fast in CPython)."""
    size = len(data)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:123]


def parse_close(payload: bytes) -> tuple[int, str]:
    """(code, reason) of a close frame; 1005 when it carries none (§7.1.5)."""
    if len(payload) < 2:
        return 1005, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


class FrameReader:
    """Turns the bytes read from a connection into whole messages and control frames.

    ``feed`` returns ``(opcode, payload)`` pairs in arrival order: a data
    message (TEXT or BINARY, fragments joined) once complete, and each control
    frame as it comes. ``masked`` says what the peer must do: a server expects
    masked frames from clients, a client unmasked ones from the server.

    Error handling: FrameError with the close code to send.
    """

    def __init__(self, *, masked: bool, max_message: int) -> None:
        self._masked = masked
        self._max = max_message
        self._buffer = bytearray()
        self._parts: list[bytes] = []
        self._opcode = 0
        self._size = 0

    def feed(self, data: bytes | bytearray) -> list[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        out: list[tuple[int, bytes]] = []
        at = 0
        end = len(buffer)
        while end - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            size = second & 0x7F
            start = at + 2
            if size == 126:
                if end - start < 2:
                    break
                size = int.from_bytes(buffer[start:start + 2], "big")
                start += 2
            elif size == 127:
                if end - start < 8:
                    break
                size = int.from_bytes(buffer[start:start + 8], "big")
                start += 8
            is_masked = bool(second & 0x80)
            if is_masked != self._masked:
                raise FrameError(1002, "frame masking is wrong for this direction")
            if first & 0x70:
                raise FrameError(1002, "reserved bits set without an extension")
            opcode, fin = first & 0x0F, bool(first & 0x80)
            if opcode in _CONTROL:
                if size > 125 or not fin:
                    raise FrameError(1002, "control frames are final and at most 125 bytes")
            elif opcode not in _DATA and opcode != CONTINUATION:
                raise FrameError(1002, f"unknown opcode {opcode}")
            elif self._size + size > self._max:
                raise FrameError(1009, f"message larger than {self._max} bytes")
            key_end = start + 4 if is_masked else start
            if end - key_end < size:
                break
            payload = bytes(buffer[key_end:key_end + size])
            if is_masked:
                payload = apply_mask(payload, bytes(buffer[start:key_end]))
            at = key_end + size
            if opcode in _CONTROL:
                out.append((opcode, payload))
                continue
            if (opcode == CONTINUATION) != bool(self._parts or self._opcode):
                raise FrameError(1002, "continuation frame out of place")
            if opcode != CONTINUATION:
                self._opcode = opcode
            if fin and not self._parts:
                out.append((self._opcode, payload))
            else:
                self._parts.append(payload)
                self._size += size
                if fin:
                    out.append((self._opcode, b"".join(self._parts)))
                    self._parts, self._size = [], 0
            if fin:
                self._opcode = 0
        del buffer[:at]
        return out
