"""Bytes <-> frames for protocol v1 (SPEC.md §2). Pure: no I/O.

Any byte string given to :func:`decode_request` either yields a request or
raises :class:`~protocol.errors.ProtocolError`; nothing else escapes.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import OPS, AnyRequest, Message, Request

DEFAULT_MAX_FRAME = 64 * 1024

_request_decoder: msgspec.msgpack.Decoder[Request] = msgspec.msgpack.Decoder(AnyRequest)
_any_decoder = msgspec.msgpack.Decoder()
_encoder = msgspec.msgpack.Encoder()
_message_decoder = msgspec.msgpack.Decoder(Message)


def encode(frame: Any) -> bytes:
    """Encode one frame (a dict or a frame struct) as one msgpack value."""
    return _encoder.encode(frame)


def decode_frame(data: bytes) -> dict[str, Any]:
    """Decode any frame to a plain map; used by clients for server frames.

    Error handling: raises ProtocolError(BAD_FRAME) if ``data`` is not one
    msgpack map with string keys.
    """
    try:
        value = _any_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ProtocolError(ErrorCode.BAD_FRAME, "frame must be a map with string keys")
    return value


def decode_request(data: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> Request:
    """Decode and validate one client request.

    Error handling: raises ProtocolError with FRAME_TOO_LARGE, BAD_FRAME,
    UNKNOWN_OP or BAD_REQUEST; ``rid`` is filled in whenever the frame had a
    usable one, so the client can pair the error with its request.
    """
    if len(data) > max_frame:
        raise ProtocolError(ErrorCode.FRAME_TOO_LARGE, f"frame of {len(data)} bytes exceeds {max_frame}")
    try:
        request: Request = _request_decoder.decode(data)
        return request
    except msgspec.ValidationError as exc:
        raise _explain(data, str(exc)) from None
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None


def decode_message(data: bytes) -> Message:
    """Decode a message object (as found in ``msg`` pushes and history pages).

    Error handling: raises ProtocolError(BAD_FRAME) for anything that is not one.
    """
    try:
        return _message_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None


def _explain(data: bytes, detail: str) -> ProtocolError:
    """Turn a validation failure into the most useful error for the client."""
    frame = decode_frame(data)  # raises BAD_FRAME for a value that is not a map
    rid = frame.get("rid")
    rid = rid if isinstance(rid, int) and not isinstance(rid, bool) and 1 <= rid < 2**53 else None
    op = frame.get("op")
    if not isinstance(op, str):
        return ProtocolError(ErrorCode.BAD_REQUEST, "missing op", rid=rid, field="op")
    if op not in OPS:
        return ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown op {op[:64]!r}", rid=rid, field="op")
    return ProtocolError(ErrorCode.BAD_REQUEST, detail, rid=rid, field=field_path(detail))


def field_path(detail: str) -> str | None:
    """The path of the bad field in a msgspec message, e.g. ``conv`` or ``action.target``."""
    where = _LOCATION.search(detail)
    parts = [where[1]] if where and where[1] else []
    missing = _MISSING.search(detail)
    if missing:
        parts.append(missing[1])
    return ".".join(parts) or None


_LOCATION = re.compile(r"(?:at|in) `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")
