"""Pathways as data (EDU-1, EDU-2, TRT-1): the nodes of a treatment, what each node sends, and when.

A pathway is a JSON document the department can read and sign off (``pathways/*.json``).
Each node is anchored on a procedure date the hospital system sends (trigger shot,
retrieval, transfer, insemination) or on the day the cycle starts, optionally some days
after it (pregnancy test: transfer + 14 days). Its content goes to the patient a set time
before that date; its treatment items (TRT-1) go out by the procedure date over several
channels. Pure data and checks: no I/O.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from protocol.errors import ProtocolError
from protocol.kinds import Clock, ClockOrNone, FieldDef, Form, form_schema

Key = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}\Z")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]

Step = Literal["enroll", "trigger", "retrieval", "transfer", "insemination"]
"""What a node's date is taken from: the cycle's start, or a procedure date. ``transfer`` is
either a fresh or a frozen transfer, whichever the hospital system sends."""

PROCEDURES: dict[str, Step] = {
    "trigger": "trigger", "retrieval": "retrieval", "fresh_transfer": "transfer",
    "frozen_transfer": "transfer", "insemination": "insemination",
}
"""Procedure names of the hospital system (and of ``imbot pathway date``) and the step each dates."""


class Item(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One piece of content, sent as one message (EDU-2)."""

    key: Key
    kind: Literal["text", "link", "image", "video", "form", "signature"]
    title: Name
    text: Annotated[str, Meta(max_length=4000)] = ""
    url: Annotated[str, Meta(max_length=2000)] = ""
    """``link``: the article's address."""
    file: Annotated[str, Meta(max_length=200)] = ""
    """``image``, ``video``: a file shipped beside the pathway, uploaded when the bot starts."""
    seconds: Annotated[int, Meta(ge=0, le=600)] = 0
    """``video``: its length."""
    fields: list[FieldDef] = []
    """``form``: what the patient fills in (checked as the ``form`` message kind checks it)."""


class TreatmentItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    name: Name
    time: ClockOrNone = ""
    day_offset: Annotated[int, Meta(ge=-7, le=7)] = 0
    """Days from the procedure date: -1 is the day before (fasting from the evening before retrieval)."""
    place: Annotated[str, Meta(max_length=200)] = ""
    note: Annotated[str, Meta(max_length=4000)] = ""


class Treatment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The structured items of a procedure (TRT-1), sent by its date over app, WeChat and SMS (TRT-2)."""

    title: Name
    items: Annotated[list[TreatmentItem], Meta(min_length=1, max_length=10)]


class Node(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    key: Key
    name: Name
    step: Step
    days_after: Annotated[int, Meta(ge=0, le=365)] = 0
    group: Name
    """The node's group: patients at this node (and their husbands, read-only) are members (IM-2)."""
    prepare: Annotated[str, Meta(max_length=1000)] = ""
    """What to prepare, for ``/progress`` (EDU-3)."""
    before_days: Annotated[int, Meta(ge=0, le=30)] = 1
    at: Clock = "09:00"
    """Content goes out ``before_days`` before the node's date at ``at`` (Asia/Shanghai)."""
    welcome: list[Item] = []
    content: list[Item] = []
    treatment: dict[str, Treatment] = {}
    """By procedure name (``trigger``, ``fresh_transfer``...): the items sent by that procedure's date."""


OrderCategory = Literal["diagnosis", "medication", "nursing"]


class OrderRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Education for a doctor's order (EDU-4): sent as soon as the hospital system reports an order
    of this category whose code is one of ``codes``."""

    key: Key
    category: OrderCategory
    codes: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(min_length=1)]
    items: Annotated[list[Item], Meta(min_length=1, max_length=10)]


class Pathway(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: Key
    name: Name
    version: Annotated[int, Meta(ge=1)]
    nodes: Annotated[list[Node], Meta(min_length=1, max_length=20)]
    orders: list[OrderRule] = []

    def matching(self, category: str, code: str) -> list[OrderRule]:
        return [rule for rule in self.orders if rule.category == category and code in rule.codes]

    def node(self, key: str) -> Node:
        for node in self.nodes:
            if node.key == key:
                return node
        raise KeyError(key)

    def item(self, node: str, key: str) -> Item | None:
        """A content item as deliveries name it: a node's item (``<item>@<procedure>`` when sent again for a
        later procedure of its step), or ``order:<rule>:<item>`` under node ``orders``."""
        if node == "orders":
            _, rule_key, item_key = [*key.split(":"), "", ""][:3]
            items = next((rule.items for rule in self.orders if rule.key == rule_key), [])
        else:
            found = next((n for n in self.nodes if n.key == node), None)
            items, item_key = ([*found.welcome, *found.content] if found else []), key.partition("@")[0]
        return next((item for item in items if item.key == item_key), None)


class PathwayError(ValueError):
    """A pathway document that cannot be used; the message names the part."""


def check(pathway: Pathway) -> Pathway:
    """Rules a schema cannot say. Error handling: raises PathwayError naming the bad part."""
    seen_nodes: set[str] = set()
    steps_seen: set[str] = set()
    for n, node in enumerate(pathway.nodes):
        where = f"nodes[{n}]"
        if node.key in seen_nodes:
            raise PathwayError(f"{where}.key: node {node.key!r} appears twice")
        seen_nodes.add(node.key)
        if n == 0 and (node.step != "enroll" or node.days_after):
            raise PathwayError(f"{where}.step: the first node starts with the cycle (step enroll, no days_after)")
        if node.step != "enroll" and node.days_after == 0 and node.step in steps_seen:
            raise PathwayError(f"{where}.step: two nodes on the same date ({node.step})")
        steps_seen.add(node.step)
        keys = [item.key for item in (*node.welcome, *node.content)]
        if len(keys) != len(set(keys)):
            raise PathwayError(f"{where}: content keys must be unique within a node")
        for part, items in (("welcome", node.welcome), ("content", node.content)):
            for i, item in enumerate(items):
                _check_item(item, f"{where}.{part}[{i}]")
        for procedure in node.treatment:
            if PROCEDURES.get(procedure) is None:
                raise PathwayError(f"{where}.treatment.{procedure}: not a procedure ({', '.join(PROCEDURES)})")
    rules = [rule.key for rule in pathway.orders]
    for r, rule in enumerate(pathway.orders):
        if rules.index(rule.key) != r:
            raise PathwayError(f"orders[{r}].key: rule {rule.key!r} appears twice")
        for i, item in enumerate(rule.items):
            _check_item(item, f"orders[{r}].items[{i}]")
    return pathway


def _check_item(item: Item, where: str) -> None:
    if item.kind == "video" and not item.seconds:
        raise PathwayError(f"{where}.seconds: a video item needs its length in seconds")
    needs = {"link": item.url, "image": item.file, "video": item.file, "form": item.fields}
    if item.kind in needs and not needs[item.kind]:
        field = {"link": "url", "form": "fields"}.get(item.kind, "file")
        raise PathwayError(f"{where}.{field}: a {item.kind} item needs {field}")
    if item.kind == "link" and not item.url.startswith(("https://", "http://", "app://", "mp://")):
        raise PathwayError(f"{where}.url: must start with https://, http://, app:// or mp://")
    if item.fields:
        try:
            form_schema(Form(title=item.title, fields=item.fields))
        except ProtocolError as exc:
            raise PathwayError(f"{where}.{exc.field}: {exc.detail}") from None


def shipped() -> list[Pathway]:
    """The pathways this install ships (``pathways/*.json``): published when the bot starts."""
    folder = resources.files("bots.pathway.pathways")
    return [load(entry.read_bytes()) for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".json")]


def load(data: bytes) -> Pathway:
    """A pathway from its JSON document. Error handling: raises PathwayError naming the bad part."""
    try:
        return check(msgspec.json.decode(data, type=Pathway))
    except msgspec.ValidationError as exc:
        raise PathwayError(str(exc)) from None
