"""The contract as JSON Schema, for clients in other languages to generate their types from (SPEC.md §10.1).

    python -m protocol.schema > protocol/schema.json

The document is generated from the structs of ``protocol.frames`` (and the
message bodies of ``protocol.kinds``), with their docstrings as descriptions,
and checked in; ``tests/protocol/test_schema.py`` fails when it is stale. Its
``$defs`` hold every struct; ``ops`` names, for each op, its request, its
answer and the pushes it may cause; ``pushes`` every push by op; ``error`` the
error frame; ``kinds`` the body of each built-in message kind.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec

from protocol.errors import ErrorCode
from protocol.frames import PROTOCOL_VERSIONS, PUSH_TYPES, REQUEST_TYPES, ErrorFrame, answer_type
from protocol.kinds import default_registry

REF = "#/$defs/{name}"


def _ref(cls: type) -> dict[str, str]:
    return {"$ref": REF.format(name=cls.__name__)}


def _op(cls: type[msgspec.Struct]) -> str:
    return str(cls.__struct_config__.tag)


def contract() -> dict[str, Any]:
    """The whole contract of the newest protocol version as one JSON Schema document."""
    bodies = default_registry().bodies()
    answers: list[type] = [answer_type(t) for t in REQUEST_TYPES]
    frames = [*REQUEST_TYPES, *dict.fromkeys(answers), *PUSH_TYPES, ErrorFrame]
    _, defs = msgspec.json.schema_components([*frames, *bodies.values(), ErrorCode], ref_template=REF)
    for request in REQUEST_TYPES:  # the struct lets a client library fill it in; the wire requires it (§3.1)
        found = defs[request.__name__]
        found["properties"]["rid"].pop("default")
        found["required"] = ["op", "rid", *(name for name in found["required"] if name != "op")]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Chat protocol, version {max(PROTOCOL_VERSIONS)}",
        "description": (
            "Every frame of the protocol, generated from protocol/frames.py (python -m protocol.schema); the prose is "
            "protocol/SPEC.md. Frames are msgpack maps on the wire (SPEC.md §2); bytes (\"contentEncoding\": "
            "\"base64\" here) are msgpack bin values. A property with a default is left out when it holds it. "
            "No string or map key of a request may hold U+0000, and no number in one may be NaN or infinite "
            "(SPEC.md §8): a rule for every field, not repeated at each."
        ),
        "version": max(PROTOCOL_VERSIONS),
        "ops": {
            _op(request): {
                "request": _ref(request),
                "answer": _ref(answer),
                "pushes": [_op(push) for push in request.pushes],
                "writes": request.writes,
            }
            for request, answer in zip(REQUEST_TYPES, answers, strict=True)
        },
        "pushes": {_op(push): _ref(push) for push in PUSH_TYPES},
        "error": _ref(ErrorFrame),
        "errorCodes": _ref(ErrorCode),
        "kinds": {name: _ref(body) for name, body in bodies.items()},
        "anyOf": [_ref(cls) for cls in frames],
        "$defs": _ecma_patterns(dict(sorted(defs.items()))),
    }


def _ecma_patterns(value: Any) -> Any:
    """Patterns as JSON Schema reads them (ECMA-262): Python's end of input ``\\Z`` is ``$`` there."""
    if isinstance(value, dict):
        return {k: v.replace(r"\Z", "$") if k == "pattern" else _ecma_patterns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ecma_patterns(v) for v in value]
    return value


def render() -> str:
    """The text of protocol/schema.json."""
    return json.dumps(contract(), ensure_ascii=False, indent=1) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
