"""Staff edit a pathway (EDU-1, EDU-2, EDU-3): each edit makes the next version, checked like a shipped one.

Pure: an edit takes a pathway and returns its next version, or raises EditError saying (in Chinese, for the
staff member who typed the command) what does not exist or is not allowed. Publishing is the store's work;
cycles keep the version they started with, so an edit never changes what a patient has received.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from bots.pathway import texts
from bots.pathway.definition import Item, Node, Pathway, PathwayError, check


class EditError(ValueError):
    """An edit that cannot be made; the message is for staff."""


@dataclass(frozen=True)
class Where:
    """``ivf.filing`` (a node) or ``ivf.filing.flow`` (an item of it)."""

    pathway: str
    node: str
    item: str = ""

    @classmethod
    def parse(cls, text: str, *, item: bool) -> Where:
        parts = text.split(".")
        if len(parts) != (3 if item else 2) or not all(parts):
            raise EditError(texts.WHERE_ITEM if item else texts.WHERE_NODE)
        return cls(*parts)


def set_text(pathway: Pathway, where: Where, text: str) -> Pathway:
    """The item's text replaced (a text's body, a link's summary, a consent's wording, a form's note)."""
    node = _node(pathway, where)
    _item(node, where)
    return _with_node(pathway, _map_items(node, where.item, lambda item: msgspec.structs.replace(item, text=text)))


def set_timing(pathway: Pathway, where: Where, before_days: int, at: str) -> Pathway:
    """When the node's content goes out: ``before_days`` before its date, at ``at`` (EDU-3)."""
    node = _node(pathway, where)
    return _with_node(pathway, msgspec.structs.replace(node, before_days=before_days, at=at))


def add_text(pathway: Pathway, where: Where, title: str, text: str) -> Pathway:
    """A text item added at the end of the node's content, keyed ``t1``, ``t2``… (the first free)."""
    node = _node(pathway, where)
    taken = {item.key for item in (*node.welcome, *node.content)}
    key = next(f"t{n}" for n in range(1, len(taken) + 2) if f"t{n}" not in taken)
    added = Item(key=key, kind="text", title=title, text=text)
    return _with_node(pathway, msgspec.structs.replace(node, content=[*node.content, added]))


def remove_item(pathway: Pathway, where: Where) -> Pathway:
    node = _node(pathway, where)
    _item(node, where)
    kept = {part: [item for item in getattr(node, part) if item.key != where.item] for part in ("welcome", "content")}
    return _with_node(pathway, msgspec.structs.replace(node, **kept))


def _node(pathway: Pathway, where: Where) -> Node:
    if where.pathway != pathway.key:
        raise EditError(texts.NO_PATHWAY.format(pathway=where.pathway))
    try:
        return pathway.node(where.node)
    except KeyError:
        raise EditError(texts.NO_NODE.format(pathway=pathway.name, node=where.node)) from None


def _item(node: Node, where: Where) -> Item:
    found = next((item for item in (*node.welcome, *node.content) if item.key == where.item), None)
    if found is None:
        raise EditError(texts.NO_ITEM.format(node=node.name, item=where.item))
    return found


def _map_items(node: Node, key: str, change: Callable[[Item], Item]) -> Node:
    return msgspec.structs.replace(node, **{
        part: [change(item) if item.key == key else item for item in getattr(node, part)]
        for part in ("welcome", "content")})


def _with_node(pathway: Pathway, node: Node) -> Pathway:
    """The next version with ``node`` in place, checked; an edit that breaks a rule is refused naming it."""
    nodes = [node if n.key == node.key else n for n in pathway.nodes]
    edited = msgspec.structs.replace(pathway, version=pathway.version + 1, nodes=nodes)
    try:
        return check(msgspec.convert(msgspec.to_builtins(edited), Pathway))
    except (PathwayError, msgspec.ValidationError) as exc:
        raise EditError(texts.EDIT_INVALID.format(problem=exc)) from None
