"""Pathways as data (EDU-1, EDU-2, TRT-1): the shipped pathways have the department's nodes and items, and a
document with a mistake is refused naming the part, before any patient gets it."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from bots.pathway.definition import PathwayError, load


def document(key: str) -> dict[str, Any]:
    return json.loads(resources.files("bots.pathway.pathways").joinpath(f"{key}.json").read_bytes())


def test_ivf_has_six_nodes_and_iui_four_in_the_departments_order() -> None:
    """EDU-1."""
    assert [n.name for n in load(json.dumps(document("ivf")).encode()).nodes] == [
        "建档", "夜针", "取卵", "移植", "妊娠", "B超"]
    assert [n.name for n in load(json.dumps(document("iui")).encode()).nodes] == ["建档", "人授", "妊娠", "B超"]


def test_treatment_items_per_procedure() -> None:
    """TRT-1: trigger shot and retrieval 4 items together, fresh transfer 1, frozen transfer 1, IUI 1."""
    items = {procedure: len(t.items) for key in ("ivf", "iui")
             for node in load(json.dumps(document(key)).encode()).nodes for procedure, t in node.treatment.items()}
    assert items["trigger"] + items["retrieval"] == 4
    assert (items["fresh_transfer"], items["frozen_transfer"], items["insemination"]) == (1, 1, 1)


def test_every_content_kind_is_used() -> None:
    """EDU-2: text, link, image, short video, form and e-signature."""
    ivf = load(json.dumps(document("ivf")).encode())
    assert {item.kind for node in ivf.nodes for item in (*node.welcome, *node.content)} == {
        "text", "link", "image", "video", "form", "signature"}


def change(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    *parents, last = path.split(".")
    target = doc
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return doc


@pytest.mark.parametrize(("path", "value", "named"), [
    ("nodes.1.key", "filing", "nodes[1].key"),
    ("nodes.0.step", "trigger", "nodes[0].step"),
    ("nodes.2.step", "trigger", "nodes[2].step"),
    ("nodes.1.content.1.file", "", "nodes[1].content[1].file"),
    ("nodes.0.content.1.url", "javascript:alert(1)", "nodes[0].content[1].url"),
    ("nodes.0.content.3.fields.3.choices", [], "nodes[0].content[3].fields[3].choices"),
    ("nodes.1.treatment", {"surgery": {"title": "x", "items": [{"name": "y"}]}}, "treatment.surgery"),
    ("nodes.0.content.0.key", "intro", "nodes[0]"),
    ("nodes.0.at", "9:00", "at"),
    ("nodes.0.colour", "red", "colour"),
    ("nodes", [], "nodes"),
])
def test_a_bad_pathway_is_refused_naming_the_part(path: str, value: Any, named: str) -> None:
    with pytest.raises(PathwayError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load(json.dumps(change(document("ivf"), path, value)).encode())
