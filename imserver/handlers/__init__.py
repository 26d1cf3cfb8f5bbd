"""Request handlers by topic, and the dispatch table that finds the one for a request (SPEC.md §4–§5)."""

from __future__ import annotations

from typing import Any

from imserver.connection import Connection
from imserver.handlers import groups, kinds, messaging, moderation, people, quickreplies, reading, session, uploads
from imserver.handlers.base import Handler
from imserver.services import Services
from protocol.frames import Ok, Request

ROUTES: dict[type[Request[Any]], Handler] = {
    **session.ROUTES, **messaging.ROUTES, **reading.ROUTES, **groups.ROUTES, **moderation.ROUTES,
    **people.ROUTES, **kinds.ROUTES, **uploads.ROUTES, **quickreplies.ROUTES,
}
"""Every request type's handler (tests/imserver/test_layers.py checks that none is missing)."""


async def handle(s: Services, client: Connection, request: Request[Any]) -> Ok | None:
    return await ROUTES[type(request)](s, client, request)
