"""Following the hospital system's event feed (EDU-4, DESIGN rule 8): every event is stored before it is acted
on, and the cursor moves only after the whole page is stored, so a crash re-reads a page whose events are then
duplicates and change nothing. An outage is waited out; nothing is lost.

An event that keeps failing to apply (a bug, a row the database refuses) does not hold up everyone else's: after
EVENT_ATTEMPTS tries the feed moves past it, and it stays stored (``received``, with its error) to be tried again
RETRY_EVERY after its last try and at each start. Her later events wait behind it, stored, and apply after it in
the order they came (bots.pathway.intake)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import trio

from bots.pathway.intake import ActFailed, Outcome, resume, take
from bots.pathway.store import PathwayStore
from integrations.his.client import HisClient
from integrations.http import OutsideError

log = logging.getLogger(__name__)
SOURCE = "his"
EVENT_ATTEMPTS = 5
"""How often the feed reads an event that fails to apply again before it moves past it."""
RETRY_EVERY = timedelta(minutes=15)
"""How long after its last try an event the feed moved past (or one waiting behind it) is tried again."""


async def poll_once(store: PathwayStore, his: HisClient, now: datetime, *, limit: int = 100) -> list[Outcome]:
    """Store and act on one page of new events; their outcomes (empty when there was nothing new).

    Error handling: the adapter's OutsideError propagates (the caller waits and tries again), and so does
    ActFailed for an event tried fewer than EVENT_ATTEMPTS times (the page is read again).
    """
    page = await his.events(await store.cursor(SOURCE), limit=limit)
    outcomes = []
    for body in page.events:
        try:
            outcomes.append(await take(store, SOURCE, body, now))
        except ActFailed as exc:
            if exc.attempts < EVENT_ATTEMPTS:
                raise
            log.exception("HIS event keeps failing; the feed moves past it, it is tried again later",
                          extra={"event": exc.event})
            outcomes.append(exc.outcome())
    await store.set_cursor(SOURCE, page.next)
    for outcome in outcomes:
        if outcome.status in ("rejected", "waiting"):
            log.warning(f"HIS event {outcome.status}", extra={"event": outcome.event, "error": outcome.error})
    return outcomes


async def follow(
    store: PathwayStore, his: HisClient, clock: Callable[[], datetime], *, idle_s: float = 5.0,
) -> None:
    """Poll until cancelled: at once while pages come full, every ``idle_s`` when caught up or the HIS is away;
    each time, the events it moved past that were last tried RETRY_EVERY ago are tried again."""
    while True:
        try:
            now = clock()
            await resume(store, now, tried_before=now - RETRY_EVERY)
            done = await poll_once(store, his, now)
        except OutsideError as exc:
            log.warning("HIS feed unavailable; waiting", extra={"error": str(exc)})
            done = []
        except Exception:  # our database away, an event that failed to apply: the page is read again later, and
            # its events stored but not acted on are acted on then (PathwayStore.receive); the bot keeps running
            log.exception("HIS feed: a page failed; reading it again later")
            done = []
        if not done:
            await trio.sleep(idle_s)
