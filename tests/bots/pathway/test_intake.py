"""Events from the hospital system, stored before they are acted on (EDU-3, EDU-4, TRT-2): each is
acted on once, a duplicate changes nothing, a malformed or senseless one is recorded as rejected with the reason,
and one stored but not acted on when the bot stopped is acted on when it starts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from bots.pathway.definition import PathwayError, shipped
from bots.pathway.intake import resume, take
from bots.pathway.store import PathwayStore
from protocol.clock import HOSPITAL_ZONE

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=HOSPITAL_ZONE)
CHEN = {"username": "chen_hong", "his_id": "P0012345"}
IVF = next(p for p in shipped() if p.key == "ivf")


def event(**fields: Any) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


async def jobs(store: PathwayStore) -> dict[str, datetime]:
    async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch("select key, due_at from bot_pathway.jobs where state = 'requested'")
    return {r["key"]: r["due_at"].astimezone(HOSPITAL_ZONE).replace(tzinfo=None)
            for r in await store.state.store.run("t", txn)}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_cycle_and_its_dates_schedule_content_and_items_once(store: PathwayStore) -> None:
    started = event(type="cycle_started", id="his-1", patient=CHEN, pathway="ivf", day="2026-12-01")
    assert (await take(store, "his", started, NOW)).status == "applied"
    cycle = (await store.open_cycle("chen_hong"))
    assert cycle is not None and cycle.his_id == "P0012345" and cycle.pathway.version == IVF.version
    assert await jobs(store) == {f"node:{cycle.id}:filing:2026-12-01:0": at("2026-12-01 09:00")}

    assert (await take(store, "his", started, NOW)).status == "duplicate"
    dated = event(type="procedure_dated", id="his-2", patient=CHEN, procedure="retrieval", day="2026-12-16")
    assert (await take(store, "his", dated, NOW)).status == "applied"
    assert (await take(store, "his", dated, NOW)).status == "duplicate"
    assert await jobs(store) == {  # the node's job sends its treatment items too (TRT-2)
        f"node:{cycle.id}:filing:2026-12-01:0": at("2026-12-01 09:00"),
        f"node:{cycle.id}:retrieval:2026-12-16:0": at("2026-12-15 09:00"),
    }
    moved = event(type="procedure_dated", id="his-3", patient=CHEN, procedure="retrieval", day="2026-12-17")
    assert (await take(store, "his", moved, NOW)).status == "applied"
    assert f"node:{cycle.id}:retrieval:2026-12-17:1" in await jobs(store)  # the old one will find its date stale
    back = event(type="procedure_dated", id="his-4", patient=CHEN, procedure="retrieval", day="2026-12-16")
    assert (await take(store, "his", back, NOW)).status == "applied"
    assert f"node:{cycle.id}:retrieval:2026-12-16:2" in await jobs(store)  # moved back: a job of its own
    now_open = await store.open_cycle("chen_hong")
    assert now_open is not None and now_open.dates == {"retrieval": at("2026-12-16").date()}
    assert now_open.revisions == {"retrieval": 2}


async def test_doctors_orders_schedule_matching_education_at_once(store: PathwayStore) -> None:
    await take(store, "his", event(type="cycle_started", id="c", patient=CHEN, pathway="ivf", day="2026-12-01"), NOW)
    orders = event(type="orders_written", id="o-1", patient=CHEN, doctor="李医生", orders=[
        {"category": "medication", "code": "地屈孕酮片", "text": "10mg bid"},
        {"category": "medication", "code": "维生素D"},  # no education for it
        {"category": "diagnosis", "code": "N98.1"}])
    assert (await take(store, "his", orders, NOW)).status == "applied"
    cycle = await store.open_cycle("chen_hong")
    assert cycle is not None
    assert {k: v for k, v in (await jobs(store)).items() if k.startswith("order:")} == {
        f"order:{cycle.id}:progesterone:o-1": NOW.replace(tzinfo=None),
        f"order:{cycle.id}:ohss:o-1": NOW.replace(tzinfo=None)}


async def test_an_order_written_at_night_brings_its_education_in_the_morning(store: PathwayStore) -> None:
    """EDU-4: nobody is woken by an education message; nor by a cancellation of a procedure whose notice she has
    not had yet (one she had is told at once: test_work)."""
    await take(store, "his", event(type="cycle_started", id="c", patient=CHEN, pathway="ivf", day="2026-12-01"), NOW)
    await take(store, "his", event(type="procedure_dated", id="d", patient=CHEN, procedure="trigger",
                                   day="2026-12-14"), NOW)
    night = at("2026-12-13 23:30").replace(tzinfo=HOSPITAL_ZONE)
    await take(store, "his", event(type="orders_written", id="o-1", patient=CHEN,
                                   orders=[{"category": "medication", "code": "地屈孕酮片"}]), night)
    await take(store, "his", event(type="procedure_cancelled", id="x", patient=CHEN, procedure="trigger"), night)
    cycle = await store.open_cycle("chen_hong")
    assert cycle is not None
    due = await jobs(store)
    assert due[f"order:{cycle.id}:progesterone:o-1"] == at("2026-12-14 08:00")
    assert due[f"cancelled:{cycle.id}:trigger:1"] == at("2026-12-14 08:00")


@pytest.mark.parametrize(("body", "reason"), [
    (event(type="procedure_dated", id="x1", patient=CHEN, procedure="surgery", day="2026-12-16"), "$.procedure"),
    (b"{not json", "malformed"),
    (event(type="cycle_started", id="x\u0000", patient=CHEN, pathway="ivf", day="2026-12-01"), "$.id"),
    (event(type="cycle_started", id="x4", patient=CHEN | {"his_id": "P\u0000"}, pathway="ivf", day="2026-12-01"),
     "$.patient.his_id"),
    (event(type="procedure_dated", id="x2", patient=CHEN, procedure="retrieval", day="2026-12-16"),
     "no open cycle"),
    (event(type="cycle_started", id="x3", patient=CHEN, pathway="iui", day="2026-12-01"), "no pathway 'iui'"),
])
async def test_what_cannot_apply_is_recorded_with_the_reason(store: PathwayStore, body: bytes, reason: str) -> None:
    outcome = await take(store, "his", body, NOW)
    assert outcome.status == "rejected" and reason in (outcome.error or "")
    recorded = await store.event("his", outcome.event)
    assert recorded is not None and recorded["status"] == "rejected" and reason in recorded["error"]
    assert (await take(store, "his", body, NOW)).status == "duplicate"
    assert await jobs(store) == {}


async def test_a_procedure_the_pathway_does_not_have_is_rejected(store: PathwayStore) -> None:
    await take(store, "his", event(type="cycle_started", id="c", patient=CHEN, pathway="ivf", day="2026-12-01"), NOW)
    outcome = await take(store, "his", event(type="procedure_dated", id="i", patient=CHEN, procedure="insemination",
                                             day="2026-12-10"), NOW)
    assert (outcome.status, outcome.error) == ("rejected", "pathway ivf has no insemination")


async def test_an_event_stored_but_not_acted_on_is_acted_on_at_start(store: PathwayStore) -> None:
    body = event(type="cycle_started", id="his-9", patient=CHEN, pathway="ivf", day="2026-12-01")
    assert await store.receive("his", "his-9", "cycle_started", body) is not None  # then the bot stopped
    assert await store.open_cycle("chen_hong") is None
    assert [o.status for o in await resume(store, NOW)] == ["applied"]
    assert await store.open_cycle("chen_hong") is not None
    assert await resume(store, NOW) == []
    assert (await take(store, "his", body, NOW)).status == "duplicate"


async def test_an_event_read_again_before_it_was_acted_on_is_acted_on(store: PathwayStore) -> None:
    """The feed re-reads a page whose acting failed (DESIGN rule 8): its stored, unsettled events are not duplicates."""
    body = event(type="cycle_started", id="his-10", patient=CHEN, pathway="ivf", day="2026-12-01")
    assert await store.receive("his", "his-10", "cycle_started", body) is not None  # acting on it then failed
    assert (await take(store, "his", body, NOW)).status == "applied"
    assert (await take(store, "his", body, NOW)).status == "duplicate"


async def test_a_staff_started_cycle_learns_her_record_number_from_the_hospital(store: PathwayStore) -> None:
    """TRT-4: the mini-program finds her by her record number, also when staff started her cycle by command."""
    started = event(type="cycle_started", id="staff-1", patient={"username": "chen_hong"}, pathway="ivf",
                    day="2026-12-01")
    assert (await take(store, "staff", started, NOW)).status == "applied"
    dated = event(type="procedure_dated", id="his-11", patient=CHEN, procedure="trigger", day="2026-12-14")
    assert (await take(store, "his", dated, NOW)).status == "applied"
    cycle = await store.open_cycle("chen_hong")
    assert cycle is not None and cycle.his_id == "P0012345"
    assert await store.treatment_notices(his_id="P0012345") is not None


async def test_a_published_version_never_changes(store: PathwayStore) -> None:
    assert not await store.publish(IVF)  # the same again: nothing to do
    edited = msgspec.structs.replace(IVF, name="试管婴儿（新版）")
    with pytest.raises(PathwayError, match="new version"):
        await store.publish(edited)
    assert await store.publish(msgspec.structs.replace(edited, version=IVF.version + 1))
    latest = await store.latest("ivf")
    assert latest is not None and latest.version == IVF.version + 1
    await take(store, "his", event(type="cycle_started", id="c", patient=CHEN, pathway="ivf", day="2026-12-01"), NOW)
    cycle = await store.open_cycle("chen_hong")
    assert cycle is not None and cycle.pathway.name == "试管婴儿（新版）"
