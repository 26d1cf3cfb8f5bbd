"""Acting on what the hospital system says (EDU-3, EDU-4, TRT-2): store the event first, then, in one
transaction, change the cycle and schedule the jobs that follow from it.

A duplicate (an id stored before) changes nothing; a malformed event, or one that makes no sense for
the patient (a date for a patient with no cycle), is recorded as rejected with the reason. An event
stored but not acted on (the bot stopped in between) is acted on when the bot starts.

Jobs are keyed by cycle, node, date and the date's revision, so acting twice schedules nothing twice; when a
date changes, the job for the old date finds its date stale and does nothing. A doctor's order's education goes
out at once, or at 08:00 if the order came in the night.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime

import asyncpg
import msgspec

from bots.pathway.definition import PROCEDURES
from bots.pathway.events import (
    CycleStarted,
    Event,
    EventError,
    OrdersWritten,
    PathwayKey,
    Patient,
    Procedure,
    ProcedureCancelled,
    ProcedureDated,
    parse,
    sender_id,
)
from bots.pathway.schedule import daytime
from bots.pathway.store import JOB_ATTEMPTS, CycleRow, PathwayStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str
    """``applied``, ``duplicate``, ``rejected``; or ``failed``, or ``waiting`` behind an earlier event of hers that
    failed (both kept, to be tried again: bots.pathway.feed)."""
    event: str
    """The sender's id of the event."""
    error: str | None = None
    """Why it was rejected, for the record and the sender's IT staff (English)."""
    cycle: int | None = None
    reason: str | None = None
    """Why it was rejected, as a code for people-facing wording: ``malformed``, ``no_pathway``, ``no_cycle``,
    ``no_procedure``."""


class ActFailed(Exception):
    """Acting on a stored event failed (a bug, the database refused it); it stays stored and is tried again."""

    def __init__(self, event: str, attempts: int) -> None:
        super().__init__(f"event {event} failed to apply ({attempts} attempts)")
        self.event = event
        self.attempts = attempts

    def outcome(self) -> Outcome:
        """As an outcome for a caller that goes on (the event is kept, to be tried again)."""
        return Outcome("failed", self.event, str(self.__cause__))


class Refused(Exception):
    """An event that is well formed but cannot apply; recorded as rejected with this reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


async def take(store: PathwayStore, source: str, body: bytes, now: datetime) -> Outcome:
    """Store an event from ``source`` and act on it at ``now``.

    Error handling: ActFailed if acting on it failed (recorded; the event stays stored to be tried again).
    """
    try:
        event: Event | None = parse(body)
        error = None
    except EventError as exc:
        event, error = None, str(exc)
    external = event.id if event is not None else sender_id(body)
    type_ = None if event is None else str(type(event).__struct_config__.tag)
    event_id = await store.receive(source, external, type_, body, None if event is None else event.patient.username)
    if event_id is None:
        return Outcome("duplicate", external)
    if event is None:
        await store.reject(event_id, f"malformed event: {error}")
        return Outcome("rejected", external, f"malformed event: {error}", reason="malformed")
    return await act(store, event_id, event, now)


async def enroll(store: PathwayStore, source: str, event_id: str, patient: Patient, pathway: PathwayKey, day: date,
                 now: datetime) -> Outcome:
    """Staff or an operator standing in for the hospital system: a cycle starts, through ``take`` like its events."""
    event = CycleStarted(id=event_id, patient=patient, pathway=pathway, day=day)
    return await take(store, source, msgspec.json.encode(event), now)


async def set_date(store: PathwayStore, source: str, event_id: str, patient: Patient, procedure: Procedure, day: date,
                   now: datetime) -> Outcome:
    """The same for a procedure's date."""
    event = ProcedureDated(id=event_id, patient=patient, procedure=procedure, day=day)
    return await take(store, source, msgspec.json.encode(event), now)


async def cancel(store: PathwayStore, source: str, event_id: str, patient: Patient, procedure: Procedure,
                 now: datetime) -> Outcome:
    """The same for a procedure cancelled."""
    event = ProcedureCancelled(id=event_id, patient=patient, procedure=procedure)
    return await take(store, source, msgspec.json.encode(event), now)


async def act(store: PathwayStore, event_id: int, event: Event, now: datetime) -> Outcome:
    """Act on a stored event in one transaction, unless an earlier one of hers failed: then it waits, stored, to be
    tried after it.

    Error handling: ActFailed if acting failed (recorded; the event stays stored to be tried again).
    """
    async def txn(conn: asyncpg.Connection) -> Outcome:
        if await store.waiting_behind_txn(conn, event_id, event.patient.username, now) is not None:
            return Outcome("waiting", event.id)
        try:
            cycle = await _apply_txn(store, conn, event, now)
        except Refused as exc:
            await store.settle_txn(conn, event_id, str(exc))
            return Outcome("rejected", event.id, str(exc), reason=exc.reason)
        await store.settle_txn(conn, event_id)
        return Outcome("applied", event.id, cycle=cycle.id)
    try:
        outcome: Outcome = await store.state.store.run("pathway_act", txn)
        return outcome
    except Exception as exc:
        attempts = await store.failed(event_id, f"{type(exc).__name__}: {exc}", now)
        raise ActFailed(event.id, attempts) from exc


async def resume(store: PathwayStore, now: datetime, *, tried_before: datetime | None = None) -> list[Outcome]:
    """Act on the events stored but not acted on: the bot stopped in between, or acting failed (with
    ``tried_before``: those not tried since)."""
    done = []
    for event_id, body in await store.unsettled(tried_before):
        try:
            done.append(await act(store, event_id, parse(body), now))
        except EventError as exc:  # cannot happen for stored events, which were parsed before storing
            await store.reject(event_id, f"malformed event: {exc}")
        except ActFailed:  # one event that fails must not keep the others (nor the bot's start) waiting
            log.exception("a stored event could not be acted on; tried again later", extra={"id": event_id})
    return done


async def _apply_txn(store: PathwayStore, conn: asyncpg.Connection, event: Event, now: datetime) -> CycleRow:
    patient = event.patient.username
    if isinstance(event, CycleStarted):
        pathway = await store.latest_txn(conn, event.pathway)
        if pathway is None:
            raise Refused("no_pathway", f"no pathway {event.pathway!r} is published")
        cycle = await store.start_cycle_txn(conn, patient, event.patient.his_id, pathway, event.day, now)
    else:
        found = await store.open_cycle_txn(conn, patient)
        if found is None:
            raise Refused("no_cycle", f"{patient} has no open cycle")
        cycle = found
    contact = event.patient
    if contact.his_id or contact.phone or contact.openid:
        await store.contacts_txn(conn, cycle.id, contact.his_id, contact.phone, contact.openid)
        cycle = replace(cycle, his_id=contact.his_id or cycle.his_id, phone=contact.phone or cycle.phone,
                        openid=contact.openid or cycle.openid)
    if isinstance(event, ProcedureDated | ProcedureCancelled):
        steps = {node.step for node in cycle.pathway.nodes}
        if PROCEDURES[event.procedure] not in steps:
            raise Refused("no_procedure", f"pathway {cycle.pathway.key} has no {event.procedure}")
    if isinstance(event, ProcedureDated):
        revision = await store.set_date_txn(conn, cycle.id, event.procedure, event.day)
        cycle = replace(cycle, dates=cycle.dates | {event.procedure: event.day},
                        revisions=cycle.revisions | {event.procedure: revision})
    if isinstance(event, ProcedureCancelled):
        cancelled = await store.cancel_date_txn(conn, cycle.id, event.procedure, now)
        if cancelled is None:
            raise Refused("not_dated", f"{patient} has no date for {event.procedure} to cancel")
        day, revision = cancelled
        cycle = replace(cycle, dates={p: d for p, d in cycle.dates.items() if p != event.procedure},
                        revisions=cycle.revisions | {event.procedure: revision})
        # She had its notice: told at once, even at night, where the notice went (she must not come in for it);
        # else in the day, in the app.
        notified = await store.notice_sent_txn(conn, cycle.id, event.procedure, day, revision - 1)
        await store.state.jobs.schedule_txn(
            conn, f"cancelled:{cycle.id}:{event.procedure}:{revision}", "cancelled", now if notified else daytime(now),
            {"cycle": cycle.id, "procedure": event.procedure, "revision": revision, "day": day.isoformat(),
             "notified": notified}, max_attempts=JOB_ATTEMPTS)
    if isinstance(event, OrdersWritten):
        for order in event.orders:
            for rule in cycle.pathway.matching(order.category, order.code):
                await store.state.jobs.schedule_txn(conn, f"order:{cycle.id}:{rule.key}:{event.id}", "order",
                                                    daytime(now), {"cycle": cycle.id, "rule": rule.key},
                                                    max_attempts=JOB_ATTEMPTS)
    else:  # after a cancellation, not onto another procedure's date already past (she is beyond it)
        await _schedule_txn(store, conn, cycle, after=now if isinstance(event, ProcedureCancelled) else None)
    return cycle


async def _schedule_txn(store: PathwayStore, conn: asyncpg.Connection, cycle: CycleRow,
                        after: datetime | None = None) -> None:
    """A job for each node whose date is known (with ``after``: due after it), keyed by the date and its revision:
    scheduling again changes nothing, and a date that moves (even back) brings a job of its own while the old one
    finds itself stale."""
    for node in cycle.pathway.nodes:
        due, day, revision = cycle.cycle.node_due(node), cycle.cycle.node_date(node), cycle.cycle.revision(node)
        if due is not None and day is not None and (after is None or due > after):
            await store.state.jobs.schedule_txn(
                conn, f"node:{cycle.id}:{node.key}:{day}:{revision}", "node", due,
                {"cycle": cycle.id, "node": node.key, "day": day.isoformat(), "revision": revision},
                max_attempts=JOB_ATTEMPTS)
