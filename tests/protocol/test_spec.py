"""SPEC.md, the prose, against the structs, the contract's code (SPEC.md §3.5, §4.4, §10).

Every op and push the prose names has a struct (and, by test_vectors, a vector);
every struct's op is named in the prose, and every field of every frame is
spelled there: a field the structs declare and the prose never mentions is a
gap in the document clients are written from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from protocol.frames import ANSWER_TYPES, OPS, PUSH_OPS, PUSH_TYPES, REQUEST_TYPES, ErrorFrame

SPEC = (Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    """The text of one section, from its heading to the next heading of any level."""
    start = SPEC.index(f"\n{heading}")
    return SPEC[start:SPEC.index("\n#", start + 1)]


def _named(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


def test_the_ops_of_the_prose_are_the_ops_of_the_structs() -> None:
    """§4.4 lists every op, those that write first."""
    read_only = _section("### 4.4")
    writes, _, others = read_only.partition("All other operations work as usual")
    writes = writes.partition("(not fatal):")[2]
    others = others.partition("(In the reference")[0]
    assert _named(writes) | _named(others) == OPS
    assert _named(writes) == {t.__struct_config__.tag for t in REQUEST_TYPES if t.writes}


def test_the_pushes_of_the_prose_are_the_pushes_of_the_structs() -> None:
    table = _section("### 3.5")
    assert set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M)) == PUSH_OPS


def _structs(cls: type[msgspec.Struct], found: dict[str, type[msgspec.Struct]]) -> None:
    """``cls`` and every struct its fields hold, by name."""
    if cls.__name__ in found:
        return
    found[cls.__name__] = cls

    def visit(info: Any) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            _structs(info.cls, found)
        for name in ("item_type", "key_type", "value_type"):
            if hasattr(info, name):
                visit(getattr(info, name))
        for inner in getattr(info, "types", ()) or getattr(info, "item_types", ()):
            visit(inner)
    for field in msgspec.inspect.type_info(cls).fields:  # type: ignore[attr-defined]
        visit(field.type)


def test_every_field_of_every_frame_is_in_the_prose() -> None:
    found: dict[str, type[msgspec.Struct]] = {}
    frames: list[type[msgspec.Struct]] = [*REQUEST_TYPES, *ANSWER_TYPES.values(), *PUSH_TYPES, ErrorFrame]
    for cls in frames:
        _structs(cls, found)
    missing = [
        f"{name}.{field.encode_name}"
        for name, cls in sorted(found.items()) for field in msgspec.structs.fields(cls)
        if f"`{field.encode_name}`" not in SPEC and f'"{field.encode_name}"' not in SPEC
    ]
    assert missing == []
