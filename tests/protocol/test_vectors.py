"""The test vectors of protocol/vectors/v1.json against this implementation (SPEC.md §10).

The vectors are the contract for clients in other languages; these tests prove
that the reference codec agrees with every one of them, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from protocol.codec import decode_frame, decode_message, decode_request, encode
from protocol.errors import MESSAGES_ZH, ErrorCode, ProtocolError
from protocol.frames import OPS, REQUEST_TYPES, Request

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "v1.json"
DOC: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = DOC["vectors"]
CLIENT = [v for v in VECTORS if v["direction"] == "client"]
SERVER = [v for v in VECTORS if v["direction"] == "server"]
TYPE_BY_OP: dict[str, type[Request]] = {t.__struct_config__.tag: t for t in REQUEST_TYPES}  # type: ignore[misc]


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


def _defaults(cls: type[Request]) -> dict[str, Any]:
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
        else:
            assert "expect" not in v and isinstance(v["frame"], dict), v["name"]


def test_every_op_has_a_valid_vector() -> None:
    ops = {v["frame"]["op"] for v in CLIENT if v["expect"] == "ok"}
    assert ops == OPS


def test_every_push_and_answer_has_a_vector() -> None:
    assert {v["frame"]["op"] for v in SERVER} >= {"ok", "error", "msg", "read", "conv", "bye"}


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
        known = {f.encode_name for f in msgspec.structs.fields(cls)} | {"op"}
        expected = {**_defaults(cls), **{k: v for k, v in frame.items() if k in known}}
        assert msgspec.to_builtins(request, builtin_types=(bytes,)) == expected
        return
    with pytest.raises(ProtocolError) as info:
        decode_request(data)
    error = info.value
    assert error.code == expect["error"]
    assert error.rid == expect.get("rid")
    if "field" in expect:
        assert error.field == expect["field"]
    assert not error.fatal
    assert decode_frame(encode(error.frame())) == error.frame()


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
