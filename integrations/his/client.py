"""Client of the hospital system's event feed (docs/integrations/his.md): ``GET /his/events?after=&limit=`` with
the API key in ``X-Api-Key`` answers the events after a cursor, oldest first, and the cursor to ask from next.

The client carries events, it does not interpret them: each comes back as its JSON document in bytes, which the
consumer (bots/pathway) stores before it acts on it, so a malformed event is kept as sent, with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from integrations.http import Refused, Service, text_field

SYSTEM = "his"
MAX_PAGE = 500


@dataclass(frozen=True)
class Page:
    events: list[bytes]
    """Each event's JSON document, in the feed's order."""
    next: str
    """The cursor to ask from next (the same as asked when there was nothing new)."""


def connect(url: str, api_key: str, **options: Any) -> Service:
    """The feed's endpoint with its key; ``options`` are Service's (timeout, retry, breaker)."""
    return Service(SYSTEM, url, headers={"X-Api-Key": api_key}, **options)


class HisClient:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def events(self, after: str = "", limit: int = 100) -> Page:
        """The events after cursor ``after`` ("" for the feed's start).

        Error handling: Refused (a wrong key, or an answer that breaks the contract), Unavailable.
        """
        params = {"after": after, "limit": str(min(max(limit, 1), MAX_PAGE))}
        answer = await self.service.call("GET", "/his/events", params=params)
        events = answer.get("events") if isinstance(answer, dict) else None
        if not isinstance(events, list):
            raise Refused(SYSTEM, f"answer without an 'events' list: {answer!r:.200}")
        return Page([json.dumps(e, ensure_ascii=False).encode() for e in events], text_field(SYSTEM, answer, "next"))
