"""What a request handler is: ``async (services, client, request) -> answer`` (SPEC.md §4–§5).

A handler returns its op's ``ok`` answer, the struct ``protocol.frames`` declares for it
(``HistoryAnswer`` for ``History``) with the request's ``rid``, or None when it answers on
its own (``send`` once its message is committed, ``logout`` before the connection closes).
It raises ``ProtocolError`` for anything the client did wrong; the dispatcher adds the
request's ``rid``. Handlers get conversations and people through ``imserver.access``,
make every change through ``imserver.actions``, and show what a viewer may see through
``imserver.views``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from imserver.connection import Connection
from imserver.services import Services
from protocol.frames import Ok, Request

Handler = Callable[[Services, Connection, Any], Awaitable[Ok | None]]
"""A handler, as the dispatch table holds it (``route`` checks its request and answer types)."""
R = TypeVar("R", bound=Request[Any], covariant=True)
A = TypeVar("A", bound=Ok)


class Route(Generic[R]):
    """Requests of one type, waiting for their handler (``route``)."""

    def __init__(self, request: type[R]) -> None:
        self.request = request

    def to(self: Route[Request[A]], handler: Callable[[Services, Connection, R], Awaitable[A | None]]
           ) -> tuple[type[Request[Any]], Handler]:
        """The row of the dispatch table. mypy checks that ``handler`` takes this request type and returns the
        answer the request declares: ``self`` binds ``A`` to that answer (``History(Request[HistoryAnswer])``)."""
        return self.request, handler


def route(request: type[R]) -> Route[R]:
    """``route(History).to(history)``: ``history`` answers requests of type ``History``."""
    return Route(request)
