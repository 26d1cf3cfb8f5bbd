"""Properties of the codec (SPEC.md §2, §3, §6): round trips both ways and total decoding.

The strategies are derived from the frame structs themselves (``msgspec.inspect``),
so a field or constraint added to ``protocol/frames.py`` is exercised here
without editing this file. ``hypothesis.strategies.from_type`` is not used: it
does not see the ``msgspec.Meta`` constraints and would build invalid frames.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.codec import decode_answer, decode_frame, decode_message, decode_push, decode_request, encode
from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import ANSWER_TYPES, OPS, PUSH_TYPES, REQUEST_TYPES, ErrorFrame, Message, Request

#: Large enough that the size check never hides what the decoder does.
BIG = 1 << 22
#: Codes ``decode_request`` may raise; the rest belong to the server.
CODEC_CODES = {ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LARGE, ErrorCode.UNKNOWN_OP, ErrorCode.BAD_REQUEST}

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

I64_MIN, U64_MAX = -(2**63), 2**64 - 1

#: Any value msgpack can carry (no NaN, so that equality is meaningful).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(I64_MIN, U64_MAX)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
no_nul = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
#: What a valid request may carry in a free-form map: no U+0000, only finite floats (SPEC.md §8).
storable_values = st.recursive(
    st.none() | st.booleans() | st.integers(I64_MIN, U64_MAX) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(no_nul, max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(no_nul, max_size=8), inner, max_size=4),
    max_leaves=12,
)


def strategy(info: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """Valid values of a msgspec type, respecting its ``Meta`` constraints (and SPEC.md §8: no U+0000, no NaN)."""
    if isinstance(info, msgspec.inspect.IntType):
        low = info.ge if info.ge is not None else (info.gt + 1 if info.gt is not None else I64_MIN)
        high = info.le if info.le is not None else (info.lt - 1 if info.lt is not None else 2**63 - 1)
        return st.integers(low, high)
    if isinstance(info, msgspec.inspect.FloatType):
        return st.floats(info.ge, info.le, allow_nan=False, allow_infinity=False)
    if isinstance(info, msgspec.inspect.StrType):
        low = info.min_length or 0
        high = min(info.max_length if info.max_length is not None else 40, 80)
        if info.pattern is not None:
            return st.from_regex(info.pattern, fullmatch=True, alphabet=no_nul).filter(lambda s: low <= len(s) <= high)
        return st.text(no_nul, min_size=low, max_size=high)
    if isinstance(info, msgspec.inspect.BytesType):
        return st.binary(min_size=info.min_length or 0, max_size=min(info.max_length or 64, 64))
    if isinstance(info, msgspec.inspect.BoolType):
        return st.booleans()
    if isinstance(info, msgspec.inspect.NoneType):
        return st.none()
    if isinstance(info, msgspec.inspect.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, msgspec.inspect.UnionType):
        return st.one_of([strategy(t) for t in info.types])
    if isinstance(info, msgspec.inspect.TupleType):
        return st.tuples(*(strategy(t) for t in info.item_types))
    if isinstance(info, msgspec.inspect.ListType):
        high = min(info.max_length if info.max_length is not None else 5, 5)
        return st.lists(strategy(info.item_type), min_size=info.min_length or 0, max_size=high)
    if isinstance(info, msgspec.inspect.DictType):
        high = min(info.max_length if info.max_length is not None else 5, 5)
        return st.dictionaries(strategy(info.key_type), strategy(info.value_type), max_size=high)
    if isinstance(info, msgspec.inspect.AnyType):
        return storable_values
    if isinstance(info, msgspec.inspect.StructType):
        # A request's rid has a stand-in default for client libraries, but is required on the wire (SPEC.md §3.1).
        required = {f.name: strategy(f.type) for f in info.fields if f.required or f.name == "rid"}
        optional = {f.name: strategy(f.type) for f in info.fields if f.name not in required}
        return st.fixed_dictionaries(required, optional=optional).map(lambda kw: info.cls(**kw))
    raise NotImplementedError(f"no strategy for {info!r}")


def struct_strategy(cls: type) -> st.SearchStrategy[Any]:
    return strategy(msgspec.inspect.type_info(cls))


requests: st.SearchStrategy[Request[Any]] = st.one_of([struct_strategy(t) for t in REQUEST_TYPES])
messages: st.SearchStrategy[Message] = struct_strategy(Message)


def decode_or_refuse(data: bytes, max_frame: int = BIG) -> Request[Any] | ProtocolError:
    """What the server gets from ``data``; anything but a Request or a ProtocolError fails the test."""
    try:
        request = decode_request(data, max_frame)
    except ProtocolError as error:
        assert error.code in CODEC_CODES
        assert not error.fatal
        assert error.rid is None or (isinstance(error.rid, int) and 1 <= error.rid <= 2**53 - 1)
        frame = error.error_frame()
        assert decode_answer(encode(frame), ErrorFrame) == frame
        return error
    assert isinstance(request, Request)
    return request


@pytest.mark.parametrize("cls", REQUEST_TYPES, ids=lambda t: t.__struct_config__.tag)
@FAST
@given(data=st.data())
def test_request_round_trip(cls: type[Request[Any]], data: st.DataObject) -> None:
    request = data.draw(struct_strategy(cls))
    encoded = encode(request)
    assert decode_request(encoded, BIG) == request
    assert decode_frame(encoded)["op"] == cls.__struct_config__.tag


@FAST
@given(request=requests)
def test_request_round_trip_through_builtins(request: Request[Any]) -> None:
    """A frame built by hand as a map (what a client in another language does) decodes the same."""
    as_map = msgspec.to_builtins(request, builtin_types=(bytes,))  # bytes stay bytes, as msgpack carries them
    assert decode_request(encode(as_map), BIG) == request


SERVER_FRAMES: list[type[msgspec.Struct]] = sorted(
    {*ANSWER_TYPES.values(), *PUSH_TYPES, ErrorFrame}, key=lambda t: t.__name__
)
server_frames: st.SearchStrategy[msgspec.Struct] = st.one_of([struct_strategy(t) for t in SERVER_FRAMES])


@FUZZ
@given(frame=server_frames)
def test_answer_and_push_round_trip(frame: msgspec.Struct) -> None:
    """What a server sends decodes to what it built, in the client's own decoders (SPEC.md §3.2, §3.5)."""
    encoded = encode(frame)
    is_answer = frame.__struct_config__.tag == "ok"
    assert (decode_answer(encoded, type(frame)) if is_answer else decode_push(encoded)) == frame


@FAST
@given(message=messages)
def test_message_round_trip(message: Message) -> None:
    encoded = encode(message)
    assert decode_message(encoded) == message
    as_map = decode_frame(encoded)
    assert ("body" in as_map) == (message.body is not None), "absent fields are omitted (SPEC.md §6)"
    assert ("cid" in as_map) == (message.cid is not None)
    push = decode_frame(encode({"op": "msg", "msg": message}))
    assert decode_message(encode(push["msg"])) == message


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes(data: bytes) -> None:
    decode_or_refuse(data)


@FUZZ
@given(data=st.binary(max_size=200), max_frame=st.integers(0, 200))
def test_any_bytes_any_limit(data: bytes, max_frame: int) -> None:
    result = decode_or_refuse(data, max_frame)
    if len(data) > max_frame:
        assert isinstance(result, ProtocolError) and result.code is ErrorCode.FRAME_TOO_LARGE


keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(sorted({f for t in REQUEST_TYPES for f in t.__struct_fields__} | {"op"})),
)
wrong_maps = st.one_of(
    st.dictionaries(keys, values, max_size=8),
    st.tuples(st.sampled_from(sorted(OPS)), st.integers(-5, 2**53 + 5), st.dictionaries(keys, values)).map(
        lambda t: {**t[2], "op": t[0], "rid": t[1]}
    ),
    st.dictionaries(st.integers(I64_MIN, U64_MAX) | st.text(max_size=3) | st.booleans(), values, max_size=4),
)


@FUZZ
@given(frame=wrong_maps)
def test_structured_but_wrong(frame: dict[Any, Any]) -> None:
    result = decode_or_refuse(encode(frame))
    if isinstance(result, ProtocolError) and result.rid is not None:
        assert result.rid == frame["rid"]


@FUZZ
@given(value=values)
def test_any_msgpack_value(value: Any) -> None:
    result = decode_or_refuse(encode(value))
    if not isinstance(value, dict):
        assert isinstance(result, ProtocolError) and result.code is ErrorCode.BAD_FRAME


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid encoded request with a few bytes flipped, inserted or deleted."""
    data = bytearray(encode(draw(requests)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        elif action == "delete" and data:
            del data[at]
        elif action == "set" and data:
            data[at] = draw(st.sampled_from([0xC0, 0xC1, 0xC2, 0xC3, 0xDC, 0xDD, 0xDE, 0xDF, 0xFF, 0x00, 0x7F]))
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_mutated_frames(data: bytes) -> None:
    decode_or_refuse(data)


@FAST
@given(request=requests, cut=st.integers(1, 1000))
def test_truncated_frames(request: Request, cut: int) -> None:
    data = encode(request)
    error = decode_or_refuse(data[: max(0, len(data) - cut)])
    assert isinstance(error, ProtocolError) and error.code is ErrorCode.BAD_FRAME


DEPTH = 100_000


def with_raw_field(frame: dict[str, Any], key: str, raw: bytes) -> bytes:
    """``frame`` encoded with one more field whose value is the raw msgpack ``raw``."""
    data = encode(frame)
    assert 0x80 <= data[0] < 0x8F, "a fixmap with room for one more field"
    return bytes([data[0] + 1]) + data[1:] + encode(key) + raw


NESTED = b"\x91" * DEPTH + b"\x00"


@pytest.mark.parametrize(
    "data",
    [
        NESTED,
        b"\x81\xa1a" * DEPTH + b"\x00",
        with_raw_field({"op": "send", "rid": 1, "conv": "g:1", "cid": "c", "kind": "x"}, "body", b"\x81\xa1a" + NESTED),
        with_raw_field({"op": "ping", "rid": 1}, "x", NESTED),
        with_raw_field({"op": "ping", "rid": 0}, "x", NESTED),
    ],
    ids=["arrays", "maps", "in_send_body", "in_unknown_field", "in_invalid_frame"],
)
def test_deep_nesting(data: bytes) -> None:
    error = decode_or_refuse(data)
    assert isinstance(error, ProtocolError)
    assert error.code is ErrorCode.BAD_FRAME
    with pytest.raises(ProtocolError):
        decode_frame(data)


def test_moderate_nesting_in_body_is_fine() -> None:
    """SPEC.md §8: bodies nested up to 32 levels are always accepted."""
    body: Any = "leaf"
    for _ in range(32):
        body = {"k": [body]}
    frame = {"op": "send", "rid": 1, "conv": "g:1", "cid": "c", "kind": "x", "body": body}
    result = decode_or_refuse(encode(frame))
    assert isinstance(result, Request)


@pytest.mark.parametrize(
    "frame",
    [
        {"op": "read", "rid": 1, "conv": "g:1\n", "seq": 1},
        {"op": "group_add", "rid": 1, "conv": "g:1", "user": "wang.fang\n"},
        {"op": "send", "rid": 1, "conv": "g:1", "cid": "c", "kind": "text\n", "text": "x"},
    ],
    ids=["conv", "username", "kind"],
)
def test_trailing_newline_refused(frame: dict[str, Any]) -> None:
    result = decode_or_refuse(encode(frame))
    assert isinstance(result, ProtocolError) and result.code is ErrorCode.BAD_REQUEST
