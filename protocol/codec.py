"""Bytes <-> frames for protocol v1 (SPEC.md §2). Pure: no I/O.

Any byte string given to :func:`decode_request` either yields a request or
raises :class:`~protocol.errors.ProtocolError`; nothing else escapes. Clients
decode what the server sends with :func:`peek` (to pair an answer with its
request), :func:`decode_answer` and :func:`decode_push`, which hold the server
to the contract: a frame its struct does not describe is a ``bad_frame``.
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar

import msgspec

from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import OPS, PUSH_OPS, AnyPush, AnyRequest, ErrorFrame, Message, Push, Request

DEFAULT_MAX_FRAME = 64 * 1024

_request_decoder: msgspec.msgpack.Decoder[Request[Any]] = msgspec.msgpack.Decoder(AnyRequest)
_any_decoder = msgspec.msgpack.Decoder()
_encoder = msgspec.msgpack.Encoder()
_message_decoder = msgspec.msgpack.Decoder(Message)
_push_decoder: msgspec.msgpack.Decoder[Push | ErrorFrame] = msgspec.msgpack.Decoder(AnyPush | ErrorFrame)
A = TypeVar("A")


class _Head(msgspec.Struct):
    op: str
    rid: int | None = None


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


def decode_request(data: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> Request[Any]:
    """Decode and validate one client request.

    Error handling: raises ProtocolError with FRAME_TOO_LARGE, BAD_FRAME,
    UNKNOWN_OP or BAD_REQUEST; ``rid`` is filled in whenever the frame had a
    usable one, so the client can pair the error with its request.
    """
    if len(data) > max_frame:
        raise ProtocolError(ErrorCode.FRAME_TOO_LARGE, f"frame of {len(data)} bytes exceeds {max_frame}")
    try:
        request: Request[Any] = _request_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _explain(data, str(exc)) from None
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None
    if request.rid == 0:  # the struct's stand-in for "not given": rid is required on the wire (SPEC.md §3.1)
        raise ProtocolError(ErrorCode.BAD_REQUEST, "Object missing required field `rid`", field="rid")
    if b"\x00" in data or b"\xca" in data or b"\xcb" in data:  # else no string holds U+0000 and no float is there
        unstorable = _unstorable(request)
        if unstorable is not None:
            where, what = unstorable
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in reversed(where)).lstrip(".")
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{what} at `$.{path}`", rid=request.rid, field=path or None)
    return request


def _unstorable(value: Any) -> tuple[list[str | int], str] | None:
    """The first value anywhere in a request that no store can hold, or None: its path (innermost first) and what.

    U+0000 in a string or a map key (Postgres text and jsonb cannot hold it) and a float that is NaN or
    infinite (JSON has no such number) are refused here, once for every op and field (SPEC.md §8), so none
    reaches the database, where one failed the whole batch it was written with. (A lone surrogate cannot
    get this far: msgpack strings are UTF-8, and one that is not is a ``bad_frame``.)
    """
    kind = type(value)
    if kind is str:
        return ([], "U+0000 in a string") if "\x00" in value else None
    if kind is float:
        return None if math.isfinite(value) else ([], f"{value} is not a finite number")
    if kind is dict:
        for key, item in value.items():
            if type(key) is str and "\x00" in key:
                return [], "U+0000 in a key"
            found = _unstorable(item)
            if found is not None:
                found[0].append(key)
                return found
    elif kind is list or kind is tuple:
        for index, item in enumerate(value):
            found = _unstorable(item)
            if found is not None:
                found[0].append(index)
                return found
    elif isinstance(value, msgspec.Struct):
        for name, key in zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True):
            found = _unstorable(getattr(value, name))
            if found is not None:
                found[0].append(key)
                return found
    return None


def decode_message(data: bytes) -> Message:
    """Decode a message object (as found in ``msg`` pushes and history pages).

    Error handling: raises ProtocolError(BAD_FRAME) for anything that is not one.
    """
    try:
        return _message_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None


def peek(data: bytes) -> tuple[str, int | None]:
    """The ``op`` and ``rid`` of a frame from the server, to pair an answer with its request.

    Error handling: raises ProtocolError(BAD_FRAME) for anything that is not a frame with a string ``op``.
    """
    try:
        head = msgspec.msgpack.decode(data, type=_Head)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None
    return head.op, head.rid


def decode_answer(data: bytes, answer: type[A]) -> A | ErrorFrame:
    """The answer to a request whose ``ok`` answer is ``answer`` (``frames.answer_type``), or its ``error``.

    Error handling: raises ProtocolError(BAD_FRAME) when the frame is neither, with the path of what
    the contract does not describe in ``detail``.
    """
    op, _ = peek(data)
    try:
        return msgspec.msgpack.decode(data, type=ErrorFrame if op == "error" else answer)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None


def decode_push(data: bytes) -> Push | ErrorFrame | None:
    """A frame that answers no pending request: a push, or an ``error`` without a usable ``rid`` (SPEC.md §3.4).

    None for an ``op`` this version does not know: clients ignore it (SPEC.md §9).
    Error handling: raises ProtocolError(BAD_FRAME) for a known ``op`` whose frame the contract does not describe.
    """
    try:
        return _push_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, ValueError) as exc:
        op, _ = peek(data)
        if op not in PUSH_OPS and op != "error":
            return None
        raise ProtocolError(ErrorCode.BAD_FRAME, str(exc)) from None


def mismatch(data: bytes, frame: msgspec.Struct) -> str | None:
    """Where the frame ``data`` differs from ``frame``, its decoded struct, encoded again; None if nowhere.

    A struct ignores what it does not declare and fills in what is left out, so
    a frame can decode without being described exactly: a field the contract
    lacks, a default sent explicitly, nil for an absent field. Used to hold a
    server, or a test vector, to the contract exactly.
    """
    return _difference(decode_frame(data), decode_frame(encode(frame)), "$")


def _difference(sent: Any, described: Any, path: str) -> str | None:
    if isinstance(sent, dict) and isinstance(described, dict):
        if sent.keys() != described.keys():
            return f"{path}: sent {sorted(sent)}, described {sorted(described)}"
        found = (_difference(sent[k], described[k], f"{path}.{k}") for k in sent)
        return next((d for d in found if d is not None), None)
    if isinstance(sent, list) and isinstance(described, list) and len(sent) == len(described):
        found = (_difference(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(sent, described, strict=True)))
        return next((d for d in found if d is not None), None)
    if sent == described and isinstance(sent, bool) == isinstance(described, bool):
        return None  # an int where a float is declared is the same value (SPEC.md §1.3)
    return f"{path}: sent {sent!r}, described {described!r}"


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
