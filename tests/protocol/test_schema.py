"""protocol/schema.json: the contract as JSON Schema, generated from the structs (SPEC.md §10.1).

A web or mobile client generates its types from this file, so it must be current,
complete, self-describing, and agree with the test vectors those clients test with.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from protocol import schema
from protocol.frames import OPS, PUSH_OPS, REQUEST_TYPES
from tests.protocol.test_vectors import CLIENT, SERVER

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "protocol" / "schema.json"
DOC: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def test_the_checked_in_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema.render(), (
        "the structs changed: run `python -m protocol.schema > protocol/schema.json`"
    )


def test_it_names_every_op_push_and_error() -> None:
    assert set(DOC["ops"]) == OPS
    assert set(DOC["pushes"]) == PUSH_OPS
    assert {name for name, op in DOC["ops"].items() if op["writes"]} == {
        t.__struct_config__.tag for t in REQUEST_TYPES if t.writes
    }
    assert all(set(op["pushes"]) <= PUSH_OPS for op in DOC["ops"].values())
    Draft202012Validator.check_schema(DOC)


def test_every_reference_resolves_and_every_type_says_what_it_is() -> None:
    refs: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            refs.extend([value["$ref"]] if "$ref" in value else [])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(DOC)
    assert {ref.removeprefix("#/$defs/") for ref in refs} <= set(DOC["$defs"])
    assert [name for name, found in DOC["$defs"].items() if not found.get("description")] == []


def test_a_request_needs_its_rid() -> None:
    """The structs let a client library assign ``rid``; the wire requires it (SPEC.md §3.1)."""
    for op in DOC["ops"].values():
        request = DOC["$defs"][op["request"]["$ref"].removeprefix("#/$defs/")]
        assert request["required"][:2] == ["op", "rid"] and "default" not in request["properties"]["rid"]


def _json(frame: Any) -> Any:
    """A vector's frame as JSON Schema sees it: bytes (``{"$bin": hex}``) in base64."""
    if isinstance(frame, dict):
        if set(frame) == {"$bin"}:
            return base64.b64encode(bytes.fromhex(frame["$bin"])).decode()
        return {k: _json(v) for k, v in frame.items()}
    if isinstance(frame, list):
        return [_json(v) for v in frame]
    return frame


def _validator(ref: dict[str, str]) -> Draft202012Validator:
    return Draft202012Validator({**ref, "$defs": DOC["$defs"]})


@pytest.mark.parametrize("vector", [v for v in CLIENT if v["expect"] == "ok"], ids=lambda v: v["name"])
def test_valid_requests_match_the_schema(vector: dict[str, Any]) -> None:
    _validator(DOC["ops"][vector["frame"]["op"]]["request"]).validate(_json(vector["frame"]))


@pytest.mark.parametrize("vector", [v for v in SERVER if v["frame"]["op"] != "typing"], ids=lambda v: v["name"])
def test_server_frames_match_the_schema(vector: dict[str, Any]) -> None:
    op = vector["frame"]["op"]
    if op == "ok":
        ref = DOC["ops"][vector["answers"]]["answer"]
    else:
        ref = DOC["error"] if op == "error" else DOC["pushes"][op]
    _validator(ref).validate(_json(vector["frame"]))


MSGPACK_ONLY = {
    "rid_float": "JSON Schema takes 1.0 for an integer; msgpack tells a float from an integer",
    "upload_part_data_as_str": "bytes are strings in JSON; msgpack tells str from bin",
}
"""Refusals that rest on a type msgpack has and JSON has not."""
ONE_RULE_FOR_ALL = {
    "send_text_with_u0000": "no string of a request holds U+0000: one rule for every string (SPEC.md §8)",
    "send_body_key_with_u0000": "no map key of a request holds U+0000: one rule for every key (SPEC.md §8)",
}
"""Refusals by a rule the schema states once, in its description, rather than at each field."""
REFUSED = [
    v for v in CLIENT
    if v["expect"] != "ok" and v["expect"]["error"] == "bad_request" and isinstance(v.get("frame"), dict)
    and v["frame"].get("op") in OPS and v["name"] not in MSGPACK_ONLY | ONE_RULE_FOR_ALL.keys()
]


@pytest.mark.parametrize("vector", REFUSED, ids=lambda v: v["name"])
def test_malformed_requests_are_refused_by_the_schema_too(vector: dict[str, Any]) -> None:
    assert list(_validator(DOC["ops"][vector["frame"]["op"]]["request"]).iter_errors(_json(vector["frame"])))
