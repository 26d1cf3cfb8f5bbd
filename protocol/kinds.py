"""Message kinds: a schema and a text fallback for each (SPEC.md §6.1, MSG-2).

A client that does not know a kind shows the message's ``text``, which the
server fills from the kind's fallback, so new kinds never break old clients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from protocol.codec import field_path
from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import NO_NUL

Short = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Long = Annotated[str, Meta(max_length=4000, pattern=NO_NUL)]
Url = Annotated[str, Meta(max_length=2000, pattern=r"^(https?://|app://|mp://)[^\x00]*\Z")]


class Action(msgspec.Struct, frozen=True, omit_defaults=True):
    """An entry the client opens: an app page, a mini-program page or a web page."""

    label: Short
    target: Url


class Notice(msgspec.Struct, frozen=True, omit_defaults=True):
    """A system notice, optionally with an action entry."""

    title: Short
    content: Long
    action: Action | None = None


class Location(msgspec.Struct, frozen=True, omit_defaults=True):
    """A place on a map."""

    name: Short
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    address: Long = ""


class Article(msgspec.Struct, frozen=True, omit_defaults=True):
    """A link to an article with its title and summary."""

    title: Short
    url: Url
    summary: Long = ""


@dataclass(frozen=True)
class KindSpec:
    """How one kind is validated and shown to clients that do not know it."""

    schema: type[msgspec.Struct]
    fallback: Callable[[Any], str]


class KindRegistry:
    """The kinds a server accepts. Bots and admins register more (MSG-1)."""

    def __init__(self) -> None:
        self._kinds: dict[str, KindSpec] = {}

    def register(self, name: str, schema: type[msgspec.Struct], fallback: Callable[[Any], str]) -> None:
        self._kinds[name] = KindSpec(schema, fallback)

    def names(self) -> list[str]:
        return ["text", *sorted(self._kinds)]

    def validate(self, kind: str, body: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
        """Check ``body`` against the kind's schema; return the normalised body and its fallback text.

        Error handling: raises ProtocolError(BAD_REQUEST) naming the bad field.
        """
        spec = self._kinds.get(kind)
        if spec is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"unknown kind {kind!r}", field="kind")
        if body is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"kind {kind!r} needs a body", field="body")
        try:
            value = msgspec.convert(body, spec.schema)
        except msgspec.ValidationError as exc:
            inner = field_path(str(exc))
            field = f"body.{inner}" if inner else "body"
            raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc), field=field) from None
        return msgspec.to_builtins(value), spec.fallback(value)


def default_registry() -> KindRegistry:
    """The kinds every server knows. Fallback texts are Chinese: patients read them."""
    registry = KindRegistry()
    registry.register("notice", Notice, lambda n: f"【通知】{n.title}：{n.content}")
    registry.register("location", Location, lambda loc: f"【位置】{loc.name} {loc.address}".rstrip())
    registry.register("article", Article, lambda a: f"【文章】{a.title} {a.url}")
    return registry
