"""The hospital system's event feed (docs/integrations/his.md; EDU-4, DESIGN rule 8): the client pages
through it with a cursor and carries each event as sent, malformed ones included; a wrong key is refused, an
outage retried; the simulator runs as the process operators and tests start."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from integrations.his.client import HisClient, connect
from integrations.his.simulator import DEMO_KEY
from integrations.http import Backoff, Refused, Retry
from tests.simulators import faults, start_simulator

QUICK = Retry(4, Backoff(first=0.01, cap=0.05))
STARTED = {"type": "cycle_started", "id": "his-1", "patient": {"username": "chen_hong", "his_id": "P001"},
           "pathway": "ivf", "day": "2026-12-01"}


async def publish(url: str, *events: object) -> None:
    async with httpx.AsyncClient() as http:
        (await http.post(f"{url}/_sim/events", json=list(events))).raise_for_status()


async def test_the_feed_is_paged_by_cursor_and_events_come_as_sent(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "his")
    async with connect(url, DEMO_KEY, retry=QUICK) as service:
        his = HisClient(service)
        empty = await his.events()
        assert (empty.events, empty.next) == ([], "0")
        await publish(url, STARTED, {"type": "discharged"}, {"id": "his-3"})
        first = await his.events(empty.next, limit=2)
        assert [json.loads(e) for e in first.events] == [STARTED, {"type": "discharged"}]
        rest = await his.events(first.next, limit=2)
        assert [json.loads(e) for e in rest.events] == [{"id": "his-3"}]
        assert (await his.events(rest.next)).events == []  # nothing new: the same cursor again
        assert (await his.events(rest.next)).next == rest.next


async def test_an_outage_is_retried_and_a_wrong_key_refused(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "his")
    await publish(url, STARTED)
    async with connect(url, DEMO_KEY, retry=QUICK) as service:
        await faults(url, fail=2, status=503)
        assert len((await HisClient(service).events()).events) == 1
    async with connect(url, "wrong-key", retry=QUICK) as service:
        with pytest.raises(Refused, match="401"):
            await HisClient(service).events()
