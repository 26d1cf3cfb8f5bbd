"""Hostile input to the pure protocol: what no store can hold, numbers past every range, loose days and times
(issue 14 items 2, 9 and 10; SPEC.md §6.1, §8).

The requests are built from the structs themselves (``msgspec.inspect``), every optional field filled in, so
a field added to ``protocol/frames.py`` is covered here without editing this file.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from msgspec import inspect

from protocol.codec import decode_request, encode
from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import REQUEST_TYPES, FieldDef, KindDefinition, Request
from protocol.kinds import Form, check_form_reply, default_registry, parse_clock, parse_day

CANDIDATES = ["alice", "g:1", "u1", "text", "att_abcdefgh", "image/png", "0" * 64, "2026-03-01", "09:30",
              "https://example.org/", "x"]
"""Strings to fill a string field with: each field takes the first its constraints accept."""
FREE_FORM = {"title": "x", "number": 1.5, "list": ["x", 2.5, {"deep": "x"}], "map": {"key": "x"}}
"""What a free-form map (a message body, a kind definition) carries in these examples."""


def example(info: inspect.Type) -> Any:
    """A valid value of a msgspec type with every optional part present (not None), as a client would send it."""
    if isinstance(info, inspect.IntType):
        low = info.ge if info.ge is not None else 1 if info.gt is None else info.gt + 1
        return max(low, 1) if info.le is None or info.le >= 1 else low
    if isinstance(info, inspect.FloatType):
        return 1.5
    if isinstance(info, inspect.StrType):
        for text in CANDIDATES:
            fits = (info.min_length or 0) <= len(text) <= (info.max_length if info.max_length is not None else 10**6)
            if fits and (info.pattern is None or re.search(info.pattern, text)):
                return text
        raise AssertionError(f"no candidate string fits {info}: add one to CANDIDATES")
    if isinstance(info, inspect.BytesType):
        return b"x" * max(info.min_length or 0, 1)
    if isinstance(info, inspect.BoolType):
        return True
    if isinstance(info, inspect.LiteralType):
        return info.values[0]
    if isinstance(info, inspect.UnionType):
        return example(next(t for t in info.types if not isinstance(t, inspect.NoneType)))
    if isinstance(info, inspect.ListType):
        return [example(info.item_type)] * max(info.min_length or 0, 1)
    if isinstance(info, inspect.DictType):
        return {example(info.key_type): example(info.value_type)}
    if isinstance(info, inspect.AnyType):
        return copy.deepcopy(FREE_FORM)
    if isinstance(info, inspect.StructType):
        fields = {f.encode_name: example(f.type) for f in info.fields}
        return {"op": info.cls.__struct_config__.tag, **fields} if issubclass(info.cls, Request) else fields
    raise NotImplementedError(f"no example for {info!r}")


def full_request(cls: type[Request[Any]]) -> dict[str, Any]:
    frame: dict[str, Any] = example(inspect.type_info(cls))
    return frame


Spot = tuple[str, Any, Any, str]
"""Where a value sits in a frame: ``("value" | "key", container, key or index, field path)``."""


def spots(value: Any, path: str = "") -> Iterator[Spot]:
    """Every string, float and map key in a frame, with its field path (SPEC.md §3.3.1)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if path == "" and key == "op":
            continue
        where = f"{path}[{key}]" if isinstance(value, list) else f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            yield "key", value, key, path
        if isinstance(item, str | float):
            yield "value", value, key, where
        yield from spots(item, where)


def refusal(frame: dict[str, Any]) -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        decode_request(encode(frame))
    return refused.value


@pytest.mark.parametrize("cls", REQUEST_TYPES, ids=lambda t: t.__struct_config__.tag)
def test_every_string_and_key_of_every_request_with_u0000_is_bad_request_naming_it(cls: type[Request[Any]]) -> None:
    """Issue 14 item 2: Postgres cannot store U+0000, and a message holding one failed the whole batch it was written
    with. Every string and every map key of every request, however deep, is refused with ``bad_request`` naming
    where it is (a key: its map), before anything reaches a store (SPEC.md §8). (A field name the op does not
    have is ignored, so the frame's own keys are not tried.)"""
    frame = full_request(cls)
    decode_request(encode(frame))  # the example itself is valid
    for what, container, key, path in list(spots(frame)):
        if what == "value" and isinstance(container[key], str):
            original = container[key]
            container[key] = original[:-1] + "\x00" if original else "\x00"
            error = refusal(frame)
            container[key] = original
        elif what == "key" and path and isinstance(key, str):
            container["a\x00"] = container.pop(key)
            error = refusal(frame)
            container[key] = container.pop("a\x00")
        else:
            continue
        assert error.code is ErrorCode.BAD_REQUEST and error.rid == frame["rid"], (path, error)
        assert error.field == path, f"U+0000 in a {what} at {path}: refused naming {error.field!r}"


@pytest.mark.parametrize("cls", [t for t in REQUEST_TYPES if "body" in t.__struct_fields__
                                 or "definition" in t.__struct_fields__], ids=lambda t: t.__struct_config__.tag)
@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
def test_every_number_in_a_free_form_map_must_be_finite(cls: type[Request[Any]], number: float) -> None:
    """Issue 14 item 2: NaN in a form value was acknowledged, then stored as null, so history differed from the live
    push. JSON has no NaN nor infinity: refused wherever a request can carry a float (SPEC.md §8)."""
    frame = full_request(cls)
    floats = [(container, key, path) for what, container, key, path in spots(frame)
              if what == "value" and isinstance(container[key], float)]
    assert floats
    for container, key, path in floats:
        original, container[key] = container[key], number
        error = refusal(frame)
        container[key] = original
        assert (error.code, error.field) == (ErrorCode.BAD_REQUEST, path), error


def test_a_lone_surrogate_is_not_utf_8_and_the_frame_is_refused() -> None:
    """SPEC.md §2.2: msgpack strings are UTF-8; a lone surrogate is not, so it never reaches a field."""
    head = encode({"op": "send", "rid": 1, "conv": "g:1", "cid": "c", "text": "ab"})
    frame = head.replace(b"\xa2ab", b"\xa3" + "\ud800".encode("utf-8", "surrogatepass"))
    assert frame != head
    assert refusal_bytes(frame).code is ErrorCode.BAD_FRAME


def refusal_bytes(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        decode_request(data)
    return refused.value


# -- numbers (issue 14 item 10) -------------------------------------------------------------------


def ints(info: inspect.Type, path: str, seen: set[type]) -> Iterator[tuple[str, inspect.IntType]]:
    if isinstance(info, inspect.IntType):
        yield path, info
    elif isinstance(info, inspect.StructType) and info.cls not in seen:
        seen.add(info.cls)
        for f in info.fields:
            yield from ints(f.type, f"{info.cls.__name__}.{f.name}", seen)
    elif isinstance(info, inspect.ListType):
        yield from ints(info.item_type, f"{path}[]", seen)
    elif isinstance(info, inspect.DictType):
        yield from ints(info.key_type, f"{path}{{key}}", seen)
        yield from ints(info.value_type, f"{path}{{value}}", seen)
    elif isinstance(info, inspect.UnionType | inspect.TupleType):
        for t in info.types if isinstance(info, inspect.UnionType) else info.item_types:
            yield from ints(t, path, seen)


def test_every_integer_a_client_sends_is_bounded_on_both_sides() -> None:
    """An unbounded integer reaches Postgres (bigint) or a datetime and fails there as ``internal``: ``audit`` with
    ``since`` 2^62 did. Every integer of every request and every message body has both bounds, within 64 bits."""
    found = []
    seen: set[type] = set()
    for cls in [*REQUEST_TYPES, *default_registry().bodies().values()]:
        found += list(ints(inspect.type_info(cls), cls.__name__, seen))
    loose = [path for path, info in found
             if (info.ge if info.ge is not None else info.gt) is None or (info.le if info.le is not None else info.lt)
             is None or (info.le or info.lt or 0) > 2**63 - 1 or (info.ge or info.gt or 0) < -(2**63)]
    assert len(found) > 20 and not loose, loose


def test_audit_since_past_the_year_9999_is_bad_request() -> None:
    frame = {"op": "audit", "rid": 1, "since": 2**62}
    assert (refusal(frame).code, refusal(frame).field) == (ErrorCode.BAD_REQUEST, "since")
    decode_request(encode({**frame, "since": 253_402_300_799_999}))


# -- days and times (issue 14 item 9) ---------------------------------------------------------------

BAD_DAYS = ["2026-01-01\n", "２０２６-０１-０１", "٢٠٢٦-٠١-٠١", "2026-99-99", "2026-02-30", "2025-02-29", "2026-13-01",
            "0000-01-01", "20260101", "2026-W01-1", "2026-1-1", " 2026-01-01", "2026-01-01T00:00", "2026/01/01"]
GOOD_DAYS = ["2026-01-01", "2024-02-29", "9999-12-31"]
BAD_CLOCKS = ["09:30\n", "０９:３０", "24:00", "9:30", "09:60", "09:30:00", "0930", " 09:30", "09:3０"]
GOOD_CLOCKS = ["00:00", "09:30", "23:59"]


def test_days_and_clocks_are_ascii_and_real() -> None:
    """``\\d`` takes full-width and Arabic-Indic digits, ``$`` a final newline, and a pattern cannot know February."""
    assert [parse_day(d) for d in BAD_DAYS] == [None] * len(BAD_DAYS)
    assert [str(parse_day(d)) for d in GOOD_DAYS] == GOOD_DAYS
    assert [parse_clock(c) for c in BAD_CLOCKS] == [None] * len(BAD_CLOCKS)
    assert [parse_clock(c).strftime("%H:%M") for c in GOOD_CLOCKS] == GOOD_CLOCKS  # type: ignore[union-attr]


def _bodies_with(day: str, clock: str) -> dict[str, dict[str, Any]]:
    """Every place a message body holds a day or a time: built-in kinds and a custom one."""
    return {
        "lab_report": {"title": "t", "collected": day, "values": [{"name": "E2", "value": "1"}]},
        "treatment_items": {"title": "t", "day": day, "items": [{"name": "取卵", "time": clock}]},
        "followup": {"title": "t", "content": "c", "due": day},
        "visit": {"on": day, "at": clock},
    }


def _registry() -> Any:
    registry = default_registry()
    registry.define(KindDefinition(name="visit", title="复诊", fallback="{on} {at}", fields=[
        FieldDef(name="on", type="date", label="日期"), FieldDef(name="at", type="time", label="时间")]))
    return registry


@pytest.mark.parametrize("day", BAD_DAYS)
def test_a_body_with_a_day_that_is_not_one_is_refused(day: str) -> None:
    registry = _registry()
    for kind, body in _bodies_with(day, "09:30").items():
        with pytest.raises(ProtocolError) as refused:
            registry.validate(kind, body)
        assert refused.value.code is ErrorCode.BAD_REQUEST and (refused.value.field or "").startswith("body"), kind
    form = Form(title="f", fields=[FieldDef(name="on", type="date", label="日期")])
    with pytest.raises(ProtocolError):
        check_form_reply(form, {"on": day})


@pytest.mark.parametrize("clock", BAD_CLOCKS)
def test_a_body_with_a_time_that_is_not_one_is_refused(clock: str) -> None:
    registry = _registry()
    for kind in ("treatment_items", "visit"):
        with pytest.raises(ProtocolError) as refused:
            registry.validate(kind, _bodies_with("2026-03-01", clock)[kind])
        assert refused.value.code is ErrorCode.BAD_REQUEST and (refused.value.field or "").startswith("body"), kind


def test_real_days_and_times_and_none_where_optional_are_accepted() -> None:
    registry = _registry()
    for day, clock in zip(GOOD_DAYS, GOOD_CLOCKS, strict=True):
        for kind, body in _bodies_with(day, clock).items():
            assert registry.validate(kind, body)[0] == body
    assert registry.validate("followup", {"title": "t", "content": "c", "due": ""})[0] == {"title": "t", "content": "c"}
    items = {"title": "t", "day": "2026-03-01", "items": [{"name": "取卵", "time": ""}]}
    assert registry.validate("treatment_items", items)[0]["items"] == [{"name": "取卵"}]


def test_struct_validation_errors_name_the_field() -> None:
    """msgspec reports a struct's own check at the struct: the enclosing map, which SPEC.md §3.3.1 allows."""
    with pytest.raises(ProtocolError) as refused:
        _registry().validate("treatment_items", _bodies_with("2026-02-30", "09:30")["treatment_items"])
    assert refused.value.field == "body" and "day" in (refused.value.detail or "")
    assert msgspec.json.encode(refused.value.error_frame())
