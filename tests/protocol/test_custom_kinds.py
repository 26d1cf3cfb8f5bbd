"""Kinds that admins define (MSG-1 自定义, MSG-2): a definition compiles to a schema and a fallback text, and a
bad definition or a bad body is refused with the path of the bad part — never anything but ProtocolError."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ErrorCode, ProtocolError
from protocol.kinds import FieldDef, KindDefinition, KindRegistry, compile_kind, default_registry

SURVEY: dict[str, Any] = {
    "name": "transfer_survey", "title": "移植满意度调查",
    "fields": [
        {"name": "score", "type": "choice", "label": "满意度", "choices": ["满意", "一般", "不满意"]},
        {"name": "day", "type": "date", "label": "移植日期"},
        {"name": "visits", "type": "int", "label": "就诊次数", "required": False},
        {"name": "weight", "type": "number", "label": "体重", "required": False},
        {"name": "again", "type": "bool", "label": "愿意推荐", "required": False},
        {"name": "sheet", "type": "attachment", "label": "附件", "required": False},
        {"name": "note", "type": "long_text", "label": "意见", "required": False},
    ],
    "fallback": "【满意度调查】{score}（{day}）{note}",
}
PDF = {"id": "att_pdf_98765432", "mime": "application/pdf", "size": 90000, "name": "说明.pdf"}


def defined(raw: dict[str, Any] = SURVEY) -> KindRegistry:
    registry = default_registry()
    registry.define(msgspec.convert(raw, KindDefinition))
    return registry


def test_a_defined_kind_validates_and_falls_back_like_a_built_in_one() -> None:
    registry = defined()
    assert "transfer_survey" in registry.names()
    body, text = registry.validate("transfer_survey", {"score": "满意", "day": "2026-12-01", "again": True,
                                                      "sheet": PDF, "colour": "red"})
    assert body == {"score": "满意", "day": "2026-12-01", "again": True, "sheet": PDF}  # unknown field dropped
    assert text == "【满意度调查】满意（2026-12-01）"
    for bad, field in (({"score": "好", "day": "2026-12-01"}, "body.score"),
                       ({"score": "满意", "day": "12/01"}, "body.day"),
                       ({"score": "满意", "day": "2026-12-01", "visits": "3"}, "body.visits"),
                       ({"score": "满意", "day": "2026-12-01", "sheet": {"id": "x"}}, "body.sheet.id"),
                       ({"day": "2026-12-01"}, "body.score")):
        with pytest.raises(ProtocolError) as info:
            registry.validate("transfer_survey", bad)
        assert info.value.code is ErrorCode.BAD_REQUEST and info.value.field == field


def test_redefining_replaces_a_custom_kind_but_never_a_built_in_one() -> None:
    registry = defined()
    registry.define(msgspec.convert(SURVEY | {"fallback": "【调查】{score}"}, KindDefinition))
    assert registry.validate("transfer_survey", {"score": "一般", "day": "2026-12-01"})[1] == "【调查】一般"
    for name in ("notice", "text", "lab_report"):
        with pytest.raises(ProtocolError) as info:
            registry.define(msgspec.convert(SURVEY | {"name": name}, KindDefinition))
        assert info.value.field == "name"
    assert registry.validate("notice", {"title": "t", "content": "c"})[1] == "【通知】t：c"


@pytest.mark.parametrize(("change", "field"), [
    ({"fields": [{"name": "a", "type": "text", "label": "A"}, {"name": "a", "type": "int", "label": "B"}]},
     "fields[1].name"),
    ({"fields": [{"name": "a", "type": "choice", "label": "A"}], "fallback": "{a}"}, "fields[0].choices"),
    ({"fields": [{"name": "a", "type": "text", "label": "A", "choices": ["x"]}], "fallback": "{a}"},
     "fields[0].choices"),
    ({"fallback": "【调查】{missing}"}, "fallback"),
    ({"fallback": "{score.__class__}"}, "fallback"),  # no attribute access into Python objects
    ({"fallback": "{score!r}"}, "fallback"),
    ({"fallback": "{score:>99999}"}, "fallback"),
    ({"fallback": "{score"}, "fallback"),
])
def test_a_bad_definition_is_refused_naming_the_part(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        compile_kind(msgspec.convert(SURVEY | change, KindDefinition))
    assert info.value.code is ErrorCode.BAD_REQUEST and info.value.field == field


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
fields = st.builds(FieldDef, name=names, type=st.sampled_from(
    ["text", "long_text", "int", "number", "bool", "date", "time", "url", "attachment", "choice"]),
    label=st.just("标签"), required=st.booleans(), choices=st.lists(st.text(min_size=1, max_size=5), max_size=3))
definitions = st.builds(KindDefinition, name=names, title=st.just("自定义"),
                        fields=st.lists(fields, min_size=1, max_size=5), fallback=st.text(min_size=1, max_size=30))
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                  max_size=3), max_leaves=8)


@given(definition=definitions, body=st.dictionaries(names, values, max_size=6))
def test_any_definition_and_body_fail_only_with_protocol_errors(definition: KindDefinition,
                                                                 body: dict[str, Any]) -> None:
    registry = default_registry()
    try:
        registry.define(definition)
    except ProtocolError as exc:
        assert exc.field is not None
        return
    try:
        _, text = registry.validate(definition.name, body)
    except ProtocolError as exc:
        assert exc.field is not None and exc.field.startswith("body")
    else:
        assert isinstance(text, str)
