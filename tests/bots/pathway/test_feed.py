"""Following the hospital system's feed (EDU-4, DESIGN rule 8): through the real HIS adapter and its
simulator, every event is stored and acted on once, a malformed one recorded as rejected, a page re-read after a
crash changes nothing, and an outage loses nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import trio

from bots.pathway.feed import EVENT_ATTEMPTS, RETRY_EVERY, poll_once
from bots.pathway.intake import ActFailed, resume
from bots.pathway.store import PathwayStore
from integrations.his.client import HisClient, connect
from integrations.his.simulator import DEMO_KEY
from integrations.http import Backoff, Retry, Unavailable
from tests.bots.pathway.test_api import sql
from tests.bots.pathway.test_intake import CHEN, NOW, jobs
from tests.simulators import faults, start_simulator

QUICK = Retry(2, Backoff(first=0.01, cap=0.02))
STARTED = {"type": "cycle_started", "id": "his-1", "patient": CHEN, "pathway": "ivf", "day": "2026-12-01"}
DATED = {"type": "procedure_dated", "id": "his-2", "patient": CHEN, "procedure": "trigger", "day": "2026-12-14"}
WANG_STARTED = {"type": "cycle_started", "id": "wang-1", "patient": {"username": "wang_li"}, "pathway": "ivf",
                "day": "2026-12-01"}
WANG_DATED = {"type": "procedure_dated", "id": "wang-2", "patient": {"username": "wang_li"}, "procedure": "trigger",
              "day": "2026-12-14"}
BAD = {"type": "procedure_dated", "id": "his-3", "patient": CHEN, "procedure": "surgery", "day": "2026-12-14"}


async def publish(url: str, *events: object) -> None:
    async with httpx.AsyncClient() as http:
        (await http.post(f"{url}/_sim/events", json=list(events))).raise_for_status()


async def test_events_are_stored_and_acted_on_once_even_when_a_page_is_read_again(
    store: PathwayStore, nursery: trio.Nursery,
) -> None:
    url = await start_simulator(nursery, "his")
    await publish(url, STARTED, DATED, BAD, DATED)  # the HIS sent his-2 twice
    async with connect(url, DEMO_KEY, retry=QUICK) as service:
        his = HisClient(service)
        outcomes = await poll_once(store, his, NOW)
        assert [(o.event, o.status) for o in outcomes] == [
            ("his-1", "applied"), ("his-2", "applied"), ("his-3", "rejected"), ("his-2", "duplicate")]
        assert "$.procedure" in (outcomes[2].error or "")
        assert await poll_once(store, his, NOW) == []  # caught up
        scheduled = await jobs(store)

        await store.set_cursor("his", "")  # as if the bot died before it moved the cursor
        assert {o.status for o in await poll_once(store, his, NOW)} == {"duplicate"}
        assert await jobs(store) == scheduled

        await faults(url, fail=10, status=503)
        try:
            await poll_once(store, his, NOW)
        except Unavailable:
            pass
        else:
            raise AssertionError("the outage was not reported")
        await faults(url, fail=0)
        await publish(url, {**DATED, "id": "his-4", "procedure": "retrieval", "day": "2026-12-16"})
        assert [(o.event, o.status) for o in await poll_once(store, his, NOW)] == [("his-4", "applied")]
        cycle = await store.open_cycle("chen_hong")
        assert cycle is not None and set(cycle.dates) == {"trigger", "retrieval"}


async def test_an_event_that_keeps_failing_does_not_hold_up_the_others(
    store: PathwayStore, nursery: trio.Nursery,
) -> None:
    """DESIGN rule 8: one patient's event that the database keeps refusing (here a trigger stands in for a bug) is
    read again a few times, then the feed moves past it to the next patient's; it stays stored with its error, her
    later event waits behind it, and both apply in their order once they can, when tried again."""
    await sql(store, "create function bot_pathway.refuse() returns trigger language plpgsql as $$ begin"
                     " if new.patient = 'wang_li' then raise exception 'refused for the test'; end if;"
                     " return new; end $$")
    await sql(store, "create trigger refuse before insert on bot_pathway.cycles for each row"
                     " execute function bot_pathway.refuse()")
    url = await start_simulator(nursery, "his")
    await publish(url, WANG_STARTED, STARTED, WANG_DATED)
    async with connect(url, DEMO_KEY, retry=QUICK) as service:
        his = HisClient(service)
        for _ in range(EVENT_ATTEMPTS - 1):
            with pytest.raises(ActFailed):
                await poll_once(store, his, NOW)
        assert await store.open_cycle("chen_hong") is None  # she waits behind it, for now
        assert [(o.event, o.status) for o in await poll_once(store, his, NOW)] == [
            ("wang-1", "failed"), ("his-1", "applied"), ("wang-2", "waiting")]
        assert await poll_once(store, his, NOW) == []
    kept = await store.event("his", "wang-1")
    assert kept is not None and kept["status"] == "received" and "refused for the test" in kept["error"]

    await sql(store, "drop trigger refuse on bot_pathway.cycles")  # the bug is mended
    assert await resume(store, NOW, tried_before=NOW) == []  # tried just now: not yet
    later = NOW + RETRY_EVERY + timedelta(minutes=1)
    assert [(o.event, o.status) for o in await resume(store, later, tried_before=later - RETRY_EVERY)] == [
        ("wang-1", "applied"), ("wang-2", "applied")]
    wang = await store.open_cycle("wang_li")
    assert wang is not None and set(wang.dates) == {"trigger"}
