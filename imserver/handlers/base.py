"""What a request handler is: ``async (services, client, request) -> answer`` (SPEC.md §4–§5).

A handler returns the fields of its ``ok`` answer, or None when it answers on its own
(``send`` once its message is committed, ``logout`` before the connection closes). It
raises ``ProtocolError`` for anything the client did wrong; the dispatcher adds the
request's ``rid``. Handlers get conversations and people through ``imserver.access``,
make every change through ``imserver.actions``, and show what a viewer may see through
``imserver.views``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from imserver.connection import Connection
from imserver.services import Services
from protocol.frames import Request

Reply = dict[str, Any] | None
R = TypeVar("R", bound=Request)
Handler = Callable[[Services, Connection, Any], Awaitable[Reply]]
"""A handler, as the dispatch table holds it (``route`` checks that it takes its request type)."""


def route(
    request: type[R], handler: Callable[[Services, Connection, R], Awaitable[Reply]]
) -> tuple[type[Request], Handler]:
    """A row of the dispatch table: ``handler`` answers requests of type ``request``."""
    return request, handler
