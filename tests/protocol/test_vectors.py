"""The test vectors of protocol/vectors/v1.json against this implementation (SPEC.md §10).

The vectors are the contract for clients in other languages; these tests prove
that the reference codec agrees with every one of them, byte for byte, and that
each server frame is exactly what its struct in ``protocol.frames`` describes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol.codec import decode_answer, decode_frame, decode_message, decode_push, decode_request, encode, mismatch
from protocol.errors import MESSAGES_ZH, ErrorCode, ProtocolError
from protocol.frames import ANSWER_TYPES, OPS, PUSH_OPS, REQUEST_TYPES, ErrorFrame, Request

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "v1.json"
DOC: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOC["vectors"]
CLIENT = [v for v in VECTORS if v["direction"] == "client"]
SERVER = [v for v in VECTORS if v["direction"] == "server"]
TYPE_BY_OP: dict[str, type[Request[Any]]] = {t.__struct_config__.tag: t for t in REQUEST_TYPES}  # type: ignore[misc]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def _value(frame: Any) -> Any:
    """The msgpack value a vector's ``frame`` stands for: ``{"$bin": hex}`` is a bin value (SPEC.md §10)."""
    if isinstance(frame, dict):
        if set(frame) == {"$bin"}:
            return bytes.fromhex(frame["$bin"])
        return {k: _value(v) for k, v in frame.items()}
    if isinstance(frame, list):
        return [_value(v) for v in frame]
    return frame


def _defaults(cls: type[Request[Any]]) -> dict[str, Any]:
    """The value each optional field of ``cls`` takes when a frame leaves it out, as builtins."""
    out: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        if field.default is not msgspec.NODEFAULT:
            out[field.encode_name] = msgspec.to_builtins(field.default)
        elif field.default_factory is not msgspec.NODEFAULT:
            out[field.encode_name] = msgspec.to_builtins(field.default_factory())
    return out


def test_file_shape() -> None:
    assert DOC["version"] == 1
    names = _ids(VECTORS)
    assert len(names) == len(set(names)), "vector names must be unique"
    for v in VECTORS:
        assert v["direction"] in ("client", "server"), v["name"]
        assert v["hex"] == v["hex"].lower(), v["name"]
        bytes.fromhex(v["hex"])
        if v["direction"] == "client":
            assert v["expect"] == "ok" or set(v["expect"]) <= {"error", "field", "rid"}, v["name"]
            assert "answers" not in v, v["name"]
        else:
            assert "expect" not in v and isinstance(v["frame"], dict), v["name"]
            assert ("answers" in v) == (v["frame"]["op"] == "ok"), v["name"]


def test_every_op_has_a_valid_vector() -> None:
    ops = {v["frame"]["op"] for v in CLIENT if v["expect"] == "ok"}
    assert ops == OPS


def test_every_answer_and_push_has_a_vector() -> None:
    """SPEC.md §10: an ``ok`` vector for every op, a vector for every push of §3.5, errors and a future push."""
    assert {v["answers"] for v in SERVER if "answers" in v} == OPS
    ops = {v["frame"]["op"] for v in SERVER}
    assert ops >= PUSH_OPS | {"ok", "error"}
    assert ops - PUSH_OPS - {"ok", "error"} == {"typing"}, "one push of a later version, which clients ignore"


@pytest.mark.parametrize("vector", CLIENT, ids=_ids(CLIENT))
def test_client_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    if "frame" in vector:
        assert msgspec.msgpack.decode(data) == _value(vector["frame"])
    expect = vector["expect"]
    if expect == "ok":
        request = decode_request(data)
        frame = _value(vector["frame"])
        cls = TYPE_BY_OP[frame["op"]]
        assert type(request) is cls
        fields = msgspec.structs.fields(cls)
        known = {f.encode_name for f in fields} | {"op"}
        expected = {**_defaults(cls), **{k: v for k, v in frame.items() if k in known}}
        decoded = {f.encode_name: msgspec.to_builtins(getattr(request, f.name), builtin_types=(bytes,)) for f in fields}
        assert {"op": frame["op"], **decoded} == expected
        return
    with pytest.raises(ProtocolError) as info:
        decode_request(data)
    error = info.value
    assert error.code == expect["error"]
    assert error.rid == expect.get("rid")
    if "field" in expect:
        assert error.field == expect["field"]
    assert not error.fatal
    assert decode_answer(encode(error.error_frame()), ErrorFrame) == error.error_frame()


@pytest.mark.parametrize("vector", SERVER, ids=_ids(SERVER))
def test_server_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    frame = _value(vector["frame"])
    assert decode_frame(data) == frame
    assert encode(frame) == data
    assert decode_frame(encode(frame)) == frame
    if frame["op"] == "msg":
        message = decode_message(encode(frame["msg"]))
        assert msgspec.to_builtins(message) == frame["msg"]
    if frame["op"] in ("error", "bye"):
        code = ErrorCode(frame["code"])
        assert frame["message"] == MESSAGES_ZH[code]
    described = decode_answer(data, ANSWER_TYPES[vector["answers"]]) if "answers" in vector else decode_push(data)
    if frame["op"] not in PUSH_OPS | {"ok", "error"}:
        assert described is None, "a push of a later version is ignored (SPEC.md §9)"
        return
    assert described is not None
    assert isinstance(described, ErrorFrame) == (frame["op"] == "error")
    assert mismatch(data, described) is None, "the struct describes the frame exactly"


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"op": "ping"}, "rid"),
        ({"op": "send", "rid": 34, "cid": "c-1", "text": "hi"}, "conv"),
    ],
    ids=["rid", "conv"],
)
def test_missing_field_is_named(frame: dict[str, Any], field: str) -> None:
    """SPEC.md §3: ``field`` is the path of the bad field; a missing field is a bad field."""
    with pytest.raises(ProtocolError) as info:
        decode_request(encode(frame))
    assert info.value.field == field
