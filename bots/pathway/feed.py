"""Following the hospital system's event feed (EDU-4, DESIGN rule 8): every event is stored before it is acted
on, and the cursor moves only after the whole page is stored, so a crash re-reads a page whose events are then
duplicates and change nothing. An outage is waited out; nothing is lost."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import trio

from bots.pathway.intake import Outcome, take
from bots.pathway.store import PathwayStore
from integrations.his.client import HisClient
from integrations.http import OutsideError

log = logging.getLogger(__name__)
SOURCE = "his"


async def poll_once(store: PathwayStore, his: HisClient, now: datetime, *, limit: int = 100) -> list[Outcome]:
    """Store and act on one page of new events; their outcomes (empty when there was nothing new).

    Error handling: the adapter's OutsideError propagates (the caller waits and tries again).
    """
    page = await his.events(await store.cursor(SOURCE), limit=limit)
    outcomes = [await take(store, SOURCE, body, now) for body in page.events]
    await store.set_cursor(SOURCE, page.next)
    for outcome in outcomes:
        if outcome.status == "rejected":
            log.warning("HIS event rejected", extra={"event": outcome.event, "error": outcome.error})
    return outcomes


async def follow(
    store: PathwayStore, his: HisClient, clock: Callable[[], datetime], *, idle_s: float = 5.0,
) -> None:
    """Poll until cancelled: at once while pages come full, every ``idle_s`` when caught up or the HIS is away."""
    while True:
        try:
            done = await poll_once(store, his, clock())
        except OutsideError as exc:
            log.warning("HIS feed unavailable; waiting", extra={"error": str(exc)})
            done = []
        except Exception:  # our database away, an event that failed to apply: the page is read again later, and
            # its events stored but not acted on are acted on then (PathwayStore.receive); the bot keeps running
            log.exception("HIS feed: a page failed; reading it again later")
            done = []
        if not done:
            await trio.sleep(idle_s)
