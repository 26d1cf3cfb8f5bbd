"""Quick-reply templates: the variables the server fills and the prompts the sender fills (SPEC.md §5.19, MSG-3).

Pure: parsing and substitution only; where the values come from is the handler's business.

A template is a text, or a body whose every string may hold placeholders:

    {{patient}} {{me}} {{me.title}} {{group}} {{today}} {{fact.<key>}}    variables
    {{?体重}}                                                              a fill-in prompt

Anything else between double braces is refused when the template is saved, so a
typo never reaches a patient. A ``{{`` without its ``}}`` is plain text. Filling
in is one pass: a value that itself looks like a placeholder stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from protocol import ErrorCode, ProtocolError
from protocol.frames import FACT_PATTERN, FILL_PATTERN

PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
"""``{{`` and ``}}`` around anything without braces; what is inside is read by ``_read``.

One loop over what cannot hold the delimiters, so matching is linear. The pattern it
replaced let three loops (spaces before the name, the name, spaces after it) take the
same spaces: ``"{{"`` and 400 spaces took 10 s to fail, and the server served nobody meanwhile."""
VARIABLES = ("patient", "me", "me.title", "group", "today")
FACT = "fact."
PATIENT_VARIABLES = frozenset({"patient"})
"""Besides the facts: the variables that need to know which patient a reply is for."""
_FACT_KEY = re.compile(FACT_PATTERN)
_FILL_NAME = re.compile(FILL_PATTERN)


@dataclass(frozen=True)
class Needs:
    """What a template asks for, each name once, in the order of first use."""

    variables: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()

    def __or__(self, other: Needs) -> Needs:
        return Needs(_merged(self.variables, other.variables), _merged(self.prompts, other.prompts))

    @property
    def facts(self) -> tuple[str, ...]:
        return tuple(v[len(FACT):] for v in self.variables if v.startswith(FACT))

    @property
    def patient(self) -> bool:
        return any(v in PATIENT_VARIABLES or v.startswith(FACT) for v in self.variables)


def needs(template: Any, field: str) -> Needs:
    """The variables and prompts of a text or a body; ``field`` is where the template sits in the request.

    Error handling: ProtocolError(BAD_REQUEST) naming the first unknown placeholder and the field that holds it.
    """
    variables: list[str] = []
    prompts: list[str] = []
    for path, text in strings(template, field):
        for match in PLACEHOLDER.finditer(text):
            prompt, name = _read(match[1])
            if prompt and _FILL_NAME.match(name):
                prompts.append(name)
            elif not prompt and (name in VARIABLES or (name.startswith(FACT) and _FACT_KEY.match(name[len(FACT):]))):
                variables.append(name)
            else:
                known = ", ".join(f"{{{{{v}}}}}" for v in (*VARIABLES, "fact.<key>", "?<prompt>"))
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown placeholder {match[0]}; known: {known}",
                                    field=path)
    return Needs(_merged((), variables), _merged((), prompts))


def render(template: Any, values: Mapping[str, str], fills: Mapping[str, str]) -> Any:
    """The template with every variable from ``values`` and every prompt from ``fills``; both must be complete."""
    def fill(match: re.Match[str]) -> str:
        prompt, name = _read(match[1])
        return fills[name] if prompt else values[name]
    if isinstance(template, str):
        return PLACEHOLDER.sub(fill, template)
    if isinstance(template, dict):
        return {k: render(v, values, fills) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values, fills) for v in template]
    return template


def _read(inside: str) -> tuple[bool, str]:
    """Whether a placeholder is a prompt (``{{?体重}}``), and its name; spaces around either part do not count."""
    name = inside.strip()
    if name.startswith("?"):
        return True, name[1:].strip()
    return False, name


def strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a text or body, with its field path (``body.items[0].note``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def attachments(body: Any) -> list[str]:
    """The ids of the attachments a body carries (every map with an ``id`` and a ``mime``, SPEC.md §6.1)."""
    found: list[str] = []
    if isinstance(body, dict):
        if isinstance(body.get("id"), str) and "mime" in body:
            found.append(body["id"])
        for item in body.values():
            found += attachments(item)
    elif isinstance(body, list):
        for item in body:
            found += attachments(item)
    return list(_merged((), found))


def day_text(day: date) -> str:
    """``{{today}}`` as patients read it."""
    return f"{day.year}年{day.month}月{day.day}日"


def _merged(first: tuple[str, ...], more: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *more)))
