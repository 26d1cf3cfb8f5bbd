"""Quick-reply templates as tables (MSG-3, SPEC.md §5.19): which placeholders a template has, which it may not
have, how it is filled in, and which attachments a body carries. Pure: no server."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from imserver.templating import Needs, attachments, day_text, needs, render
from protocol import ErrorCode, ProtocolError

# template, variables, prompts
ACCEPTED: list[tuple[Any, tuple[str, ...], tuple[str, ...]]] = [
    ("您好", (), ()),
    ("{{patient}}您好，我是{{me}}{{me.title}}", ("patient", "me", "me.title"), ()),
    ("{{ patient }}，{{today}}，{{group}}，{{patient}}", ("patient", "today", "group"), ()),
    ("下次复诊：{{fact.next_visit}}", ("fact.next_visit",), ()),
    ("体重{{?体重}}，身高{{ ? 身高(cm) }}，体重{{?体重}}", (), ("体重", "身高(cm)")),
    ("{{ 不成对的括号", (), ()),
    ("{单括号} }}{{", (), ()),
    ({"title": "{{?标题}}", "items": [{"note": "{{fact.place}}"}, {"n": 3}]}, ("fact.place",), ("标题",)),
]

# template, the field the refusal names
REFUSED: list[tuple[Any, str]] = [
    ("{{patinet}}", "text"),
    ("{{}}", "text"),
    ("{{?}}", "text"),
    ("{{? 体 重}}", "text"),
    ("{{fact.}}", "text"),
    ("{{fact.Next}}", "text"),
    ("{{me.name}}", "text"),
    ("{{Patient}}", "text"),
    ({"title": "ok", "items": [{"note": "ok"}, {"note": "{{doctor}}"}]}, "text.items[1].note"),
]


@pytest.mark.parametrize(("template", "variables", "prompts"), ACCEPTED)
def test_placeholders_are_found_once_each_in_order(template: Any, variables: tuple[str, ...],
                                                   prompts: tuple[str, ...]) -> None:
    assert needs(template, "text") == Needs(variables, prompts)


@pytest.mark.parametrize(("template", "field"), REFUSED)
def test_unknown_placeholders_are_refused_naming_where(template: Any, field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        needs(template, "text")
    assert (info.value.code, info.value.field) == (ErrorCode.BAD_REQUEST, field)


def test_needs_merge_and_say_whether_a_patient_is_needed() -> None:
    merged = needs("{{me}}{{?a}}", "text") | needs("{{fact.x}}{{me}}{{?b}}{{?a}}", "text")
    assert merged == Needs(("me", "fact.x"), ("a", "b"))
    assert merged.facts == ("x",) and merged.patient
    assert needs("{{patient}}", "text").patient and not needs("{{me}}{{today}}", "text").patient


def test_filling_in_is_one_pass_and_keeps_the_shape() -> None:
    values = {"patient": "向日葵03", "me": "王建华", "fact.next_visit": "{{me}}"}
    template = {"title": "{{?标题}}", "items": [{"note": "{{ patient }}：{{fact.next_visit}}"}], "n": 3}
    assert render(template, values, {"标题": "{{patient}}"}) == {
        "title": "{{patient}}", "items": [{"note": "向日葵03：{{me}}"}], "n": 3,
    }
    assert render("{{ 不成对 {{me}}", values, {}) == "{{ 不成对 王建华"


def test_attachments_are_every_map_with_an_id_and_a_mime_once() -> None:
    pdf = {"id": "att_sheet0001", "mime": "application/pdf", "size": 1}
    body = {"title": "须知", "pdf": pdf, "images": [{"id": "att_img00001", "mime": "image/png", "size": 2}, pdf],
            "form": {"id": "not-an-attachment"}}
    assert attachments(body) == ["att_sheet0001", "att_img00001"]
    assert attachments(None) == []


def test_today_is_written_as_patients_read_dates() -> None:
    assert day_text(date(2026, 3, 7)) == "2026年3月7日"
