"""SQL of the pathway bot, in its own schema (``bot_pathway``). ``*_txn`` functions run in a caller's transaction."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from bots.framework.state import BotState
from bots.pathway.definition import Pathway, PathwayError, shipped
from bots.pathway.schedule import Cycle
from protocol.clock import HOSPITAL_ZONE

log = logging.getLogger(__name__)

JOB_ATTEMPTS = 10
"""Tries of a pathway job: with the jobs' backoff from 30 s doubling, about four hours, so a chat server
restarting or down for a while loses nobody's content."""


@dataclass(frozen=True)
class CycleRow:
    id: int
    patient: str
    his_id: str
    pathway: Pathway
    started: date
    dates: dict[str, date]
    phone: str = ""
    openid: str = ""
    revisions: dict[str, int] = field(default_factory=dict)
    """How often each procedure's date has changed: a date moved back is news, with jobs and a notice of its own."""

    @property
    def cycle(self) -> Cycle:
        return Cycle(self.pathway, self.started, self.dates, self.revisions)


@dataclass(frozen=True)
class Sent:
    """What the bot sends a patient, as its delivery is recorded."""

    cycle: int
    node: str
    """The node, or ``orders``."""
    item: str
    """The content item's key, ``treatment:<procedure>`` or ``order:<rule>:<item>``."""
    kind: str
    title: str
    day: date | None = None
    """A treatment notice's procedure date: a new date is a new notice."""
    revision: int = 0
    """The revision of that date (a date moved back is a new notice too)."""

    @property
    def cid(self) -> str:
        """The message's client id: the same sending again is the same message (SPEC.md §5.1). Hashed when long
        (keys may be 32 characters each; the server takes 64)."""
        cid = f"pw:{self.cycle}:{self.node}:{self.item}" + (f":{self.day}:{self.revision}" if self.day else "")
        return cid if len(cid) <= 64 else "pw:" + hashlib.sha256(cid.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Delivery:
    """A sent item and what became of it (EDU-5, TRT-3)."""

    id: int
    cycle_id: int
    patient: str
    open: bool
    """Whether its cycle is still open (reminders stop when it ends)."""
    node: str
    item: str
    kind: str
    title: str
    conv: str
    seq: int
    read_at: datetime | None
    completed_at: datetime | None
    reminders: int
    pathway: Pathway
    day: date | None = None
    """A treatment notice's procedure date."""
    revision: int = 0
    """The revision of that date."""

    @property
    def needs_completion(self) -> bool:
        """Forms and consents are done when filled in or signed; other items when read."""
        return self.kind in ("form", "signature_request")

    @property
    def done(self) -> bool:
        return (self.completed_at if self.needs_completion else self.read_at) is not None


class PathwayStore:
    def __init__(self, state: BotState) -> None:
        self.state = state
        self.s = state.schema

    async def _run(self, name: str, txn: Any, *args: Any, transaction: bool = True) -> Any:
        return await self.state.store.run(name, txn, *args, transaction=transaction)

    # -- pathways ------------------------------------------------------------------------

    async def publish(self, pathway: Pathway, by: str = "") -> bool:
        """Keep a pathway version (``by``: the staff member who made it, "" for a shipped one); True if it is new.

        Error handling: PathwayError if this version exists with other content: a pathway patients
        may already have received is never changed in place (raise its version).
        """
        definition = msgspec.to_builtins(pathway)

        async def txn(conn: asyncpg.Connection) -> bool:
            stored = await conn.fetchval(
                f"select definition from {self.s}.pathway_versions where pathway = $1 and version = $2",
                pathway.key, pathway.version,
            )
            if stored is None:
                await conn.execute(f"insert into {self.s}.pathway_versions (pathway, version, definition, created_by)"
                                   " values ($1, $2, $3, $4)", pathway.key, pathway.version, definition, by)
                return True
            if stored != definition:
                raise PathwayError(f"{pathway.key} version {pathway.version} exists with other content:"
                                   " give the changed pathway a new version")
            return False
        return bool(await self._run("pathway_publish", txn))

    async def publish_shipped(self, pathways: Sequence[Pathway] | None = None) -> None:
        """Publish the pathways this install ships (``pathways/*.json``, or ``pathways``); those published before
        change nothing.

        A shipped version whose number staff have already used for an edit of their own is left out (logged):
        the department's edits take precedence. A shipped version changed in place is refused (PathwayError).
        """
        for pathway in shipped() if pathways is None else pathways:
            try:
                await self.publish(pathway)
            except PathwayError:
                if not await self._edited_by_staff(pathway.key, pathway.version):
                    raise
                log.warning("a shipped pathway version is taken by a staff edit; not published",
                            extra={"pathway": pathway.key, "version": pathway.version})

    async def _edited_by_staff(self, key: str, version: int) -> bool:
        async def txn(conn: asyncpg.Connection) -> bool:
            by = await conn.fetchval(f"select created_by from {self.s}.pathway_versions"
                                     " where pathway = $1 and version = $2", key, version)
            return bool(by)
        return bool(await self._run("pathway_edited_by_staff", txn, transaction=False))

    async def versions(self) -> list[tuple[Pathway, str]]:
        """The latest version of each pathway, and who made it ("" for a shipped one)."""
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(f"select distinct on (pathway) definition, created_by"
                                    f" from {self.s}.pathway_versions order by pathway, version desc")
        rows = await self._run("pathway_versions", txn, transaction=False)
        return [(msgspec.convert(r["definition"], Pathway), r["created_by"]) for r in rows]

    async def latest_txn(self, conn: asyncpg.Connection, key: str) -> Pathway | None:
        found = await conn.fetchval(f"select definition from {self.s}.pathway_versions where pathway = $1"
                                    " order by version desc limit 1", key)
        return None if found is None else msgspec.convert(found, Pathway)

    async def latest(self, key: str) -> Pathway | None:
        found: Pathway | None = await self._run("pathway_latest", self.latest_txn, key, transaction=False)
        return found

    # -- inbound events: stored before they are acted on -------------------------------------

    async def receive(self, source: str, external_id: str, type_: str | None, body: bytes,
                      patient: str | None = None) -> int | None:
        """Store an event; None if one with this id was stored and settled before (a duplicate). An event stored
        but never acted on (acting failed, the bot stopped) comes back with its id: received again, it is acted on."""
        async def txn(conn: asyncpg.Connection) -> int | None:
            found: int | None = await conn.fetchval(
                f"insert into {self.s}.inbound_events as e (source, external_id, type, body, patient)"
                " values ($1, $2, $3, $4, $5) on conflict (source, external_id) do update set source = excluded.source"
                "   where e.status = 'received' returning id", source, external_id, type_, body, patient,
            )
            return found
        result: int | None = await self._run("pathway_receive", txn)
        return result

    async def settle_txn(self, conn: asyncpg.Connection, event_id: int, error: str | None = None) -> None:
        await conn.execute(
            f"update {self.s}.inbound_events set status = $2, error = $3 where id = $1",
            event_id, "rejected" if error else "applied", error,
        )

    async def reject(self, event_id: int, error: str) -> None:
        await self._run("pathway_reject", self.settle_txn, event_id, error)

    async def failed(self, event_id: int, error: str, at: datetime) -> int:
        """Acting on an event failed: it stays ``received``, with the error; how often it has failed."""
        async def txn(conn: asyncpg.Connection) -> int:
            attempts: int = await conn.fetchval(
                f"update {self.s}.inbound_events set attempts = attempts + 1, error = $2, tried_at = $3"
                " where id = $1 returning attempts", event_id, error, at)
            return attempts
        attempts: int = await self._run("pathway_event_failed", txn)
        return attempts

    async def waiting_behind_txn(self, conn: asyncpg.Connection, event_id: int, patient: str, at: datetime,
                                 ) -> int | None:
        """The earlier event of hers that failed to apply (or waits itself), if any: this one then waits behind
        it (recorded, and tried again with it), so her events apply in the order they came."""
        earlier: int | None = await conn.fetchval(
            f"select id from {self.s}.inbound_events where patient = $1 and status = 'received' and id < $2"
            " and tried_at is not null order by id limit 1", patient, event_id)
        if earlier is not None:
            await conn.execute(f"update {self.s}.inbound_events set tried_at = $2, error = $3 where id = $1",
                               event_id, at, f"waiting behind event {earlier}")
        return earlier

    async def unsettled(self, tried_before: datetime | None = None) -> list[tuple[int, bytes]]:
        """Events stored but not yet acted on (the bot stopped in between, acting failed), oldest first; with
        ``tried_before``, only those that failed or waited, and not since (one being acted on now is left)."""
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(f"select id, body from {self.s}.inbound_events where status = 'received'"
                                    " and ($1::timestamptz is null or tried_at < $1) order by id", tried_before)
        return [(r["id"], r["body"]) for r in await self._run("pathway_unsettled", txn, transaction=False)]

    async def event(self, source: str, external_id: str) -> dict[str, Any] | None:
        async def txn(conn: asyncpg.Connection) -> asyncpg.Record | None:
            return await conn.fetchrow(f"select id, type, status, error from {self.s}.inbound_events"
                                       " where source = $1 and external_id = $2", source, external_id)
        row = await self._run("pathway_event", txn, transaction=False)
        return None if row is None else dict(row)

    async def cursor(self, source: str) -> str:
        """Where the feed of ``source`` was read up to ("" at first)."""
        async def txn(conn: asyncpg.Connection) -> str | None:
            found: str | None = await conn.fetchval(
                f"select cursor from {self.s}.feed_cursors where source = $1", source)
            return found
        return await self._run("pathway_cursor", txn, transaction=False) or ""

    async def set_cursor(self, source: str, cursor: str) -> None:
        async def txn(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"insert into {self.s}.feed_cursors (source, cursor) values ($1, $2) on conflict (source)"
                " do update set cursor = excluded.cursor, updated_at = now()", source, cursor)
        await self._run("pathway_set_cursor", txn)

    # -- cycles ----------------------------------------------------------------------------

    async def open_cycle_txn(self, conn: asyncpg.Connection, patient: str | None, cycle_id: int | None = None,
                             ) -> CycleRow | None:
        """Her open cycle, or the open cycle ``cycle_id``."""
        row = await conn.fetchrow(
            f"select c.id, c.patient, c.his_id, c.started, c.phone, c.openid, v.definition from {self.s}.cycles c"
            f" join {self.s}.pathway_versions v using (pathway, version)"
            " where (c.patient = $1 or c.id = $2) and c.ended_at is null", patient, cycle_id,
        )
        if row is None:
            return None
        dates = await conn.fetch(f"select procedure, day, revision, cancelled_at is not null as cancelled"
                                 f" from {self.s}.procedure_dates where cycle_id = $1", row["id"])
        return CycleRow(row["id"], row["patient"], row["his_id"], msgspec.convert(row["definition"], Pathway),
                        row["started"], {r["procedure"]: r["day"] for r in dates if not r["cancelled"]},
                        row["phone"], row["openid"], {r["procedure"]: r["revision"] for r in dates})

    async def cycle(self, cycle_id: int) -> CycleRow | None:
        """An open cycle by id (None once it has ended: its jobs then do nothing)."""
        async def txn(conn: asyncpg.Connection) -> CycleRow | None:
            return await self.open_cycle_txn(conn, None, cycle_id)
        found: CycleRow | None = await self._run("pathway_cycle", txn, transaction=False)
        return found

    async def node_group(self, pathway: str, node: str) -> str | None:
        async def txn(conn: asyncpg.Connection) -> str | None:
            found: str | None = await conn.fetchval(
                f"select conv from {self.s}.node_groups where pathway = $1 and node = $2", pathway, node)
            return found
        return await self._run("pathway_node_group", txn, transaction=False)

    async def keep_node_group(self, pathway: str, node: str, conv: str) -> str:
        """Record a node's group; if another instance recorded one first, that one (the group to use)."""
        async def txn(conn: asyncpg.Connection) -> str:
            await conn.execute(f"insert into {self.s}.node_groups (pathway, node, conv) values ($1, $2, $3)"
                               " on conflict do nothing", pathway, node, conv)
            kept: str = await conn.fetchval(
                f"select conv from {self.s}.node_groups where pathway = $1 and node = $2", pathway, node)
            return kept
        return str(await self._run("pathway_keep_node_group", txn))

    async def current_group(self, patient: str) -> str | None:
        """The node group the bot last moved her into, in this cycle or an earlier one."""
        async def txn(conn: asyncpg.Connection) -> str | None:
            found: str | None = await conn.fetchval(
                f"select m.to_conv from {self.s}.moves m join {self.s}.cycles c on c.id = m.cycle_id"
                " where c.patient = $1 order by m.id desc limit 1", patient)
            return found
        return await self._run("pathway_current_group", txn, transaction=False)

    async def moved(self, cycle_id: int, from_conv: str | None, to_conv: str, at: datetime) -> None:
        async def txn(conn: asyncpg.Connection) -> None:
            await conn.execute(f"insert into {self.s}.moves (cycle_id, from_conv, to_conv, at) values ($1, $2, $3, $4)",
                               cycle_id, from_conv, to_conv, at)
        await self._run("pathway_moved", txn)

    async def delivered(self, sent: Sent, conv: str, seq: int, at: datetime, remind_at: datetime | None) -> None:
        """Record a sent item and schedule its first reminder (EDU-5, TRT-3), together; the same item again
        changes nothing (its first sending counts)."""
        async def txn(conn: asyncpg.Connection) -> None:
            found = await conn.fetchval(
                f"insert into {self.s}.deliveries"
                " (cycle_id, node, item, day, revision, kind, title, conv, seq, sent_at)"
                " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " on conflict (cycle_id, node, item, (coalesce(day, '-infinity'::date)), revision) do nothing"
                " returning id", sent.cycle, sent.node, sent.item, sent.day, sent.revision, sent.kind, sent.title,
                conv, seq, at)
            if found is not None and remind_at is not None:
                await self.remind_txn(conn, found, 1, remind_at)
        await self._run("pathway_delivered", txn)

    async def remind_txn(self, conn: asyncpg.Connection, delivery_id: int, n: int, due: datetime) -> None:
        await self.state.jobs.schedule_txn(conn, f"remind:{delivery_id}:{n}", "remind", due,
                                           {"delivery": delivery_id, "n": n}, max_attempts=JOB_ATTEMPTS)

    async def deliveries(self, cycle_id: int) -> list[dict[str, Any]]:
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(f"select node, item, day, kind, conv, seq, sent_at, read_at, completed_at,"
                                    f" reminders from {self.s}.deliveries where cycle_id = $1 order by id", cycle_id)
        return [dict(r) for r in await self._run("pathway_deliveries", txn, transaction=False)]

    async def delivery(self, delivery_id: int | None = None, *, conv: str = "", seq: int = 0) -> Delivery | None:
        """A delivery by id, or the one sent as message ``seq`` in ``conv``; with its cycle's patient and pathway."""
        async def txn(conn: asyncpg.Connection) -> asyncpg.Record | None:
            return await conn.fetchrow(
                f"select d.*, c.patient, c.ended_at is null as open, v.definition from {self.s}.deliveries d"
                f" join {self.s}.cycles c on c.id = d.cycle_id"
                f" join {self.s}.pathway_versions v using (pathway, version)"
                " where d.id = $1 or (d.conv = $2 and d.seq = $3)", delivery_id, conv, seq)
        row = await self._run("pathway_delivery", txn, transaction=False)
        if row is None:
            return None
        return Delivery(row["id"], row["cycle_id"], row["patient"], row["open"], row["node"], row["item"], row["kind"],
                        row["title"], row["conv"], row["seq"], row["read_at"], row["completed_at"], row["reminders"],
                        msgspec.convert(row["definition"], Pathway), row["day"], row["revision"])

    async def to_do(self, cycle_id: int) -> list[str]:
        """The titles of the forms and consents sent in this cycle and not yet filled in or signed, oldest first;
        each title once (a form asked again for a later transfer)."""
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(f"select title from {self.s}.deliveries where cycle_id = $1"
                                    " and completed_at is null and kind in ('form', 'signature_request')"
                                    " group by title order by min(id)", cycle_id)
        return [r["title"] for r in await self._run("pathway_to_do", txn, transaction=False)]

    async def mark_read(self, conv: str, upto: int, at: datetime) -> int:
        """The patient has read her service conversation up to ``upto``: so every item sent there up to it."""
        async def txn(conn: asyncpg.Connection) -> str:
            result: str = await conn.execute(
                f"update {self.s}.deliveries set read_at = $3 where conv = $1 and seq <= $2 and read_at is null",
                conv, upto, at)
            return result
        return int((await self._run("pathway_mark_read", txn)).split()[-1])

    async def reminded(self, delivery_id: int, n: int, at: datetime, next_due: datetime | None) -> None:
        """Reminder ``n`` was sent; schedule the next one if the policy has one."""
        async def txn(conn: asyncpg.Connection) -> None:
            await conn.execute(f"update {self.s}.deliveries set reminders = greatest(reminders, $2),"
                               " last_reminded_at = $3 where id = $1", delivery_id, n, at)
            await conn.execute(f"insert into {self.s}.reminders (delivery_id, n, at) values ($1, $2, $3)"
                               " on conflict do nothing", delivery_id, n, at)
            if next_due is not None:
                await self.remind_txn(conn, delivery_id, n + 1, next_due)
        await self._run("pathway_reminded", txn)

    async def complete(self, delivery_id: int, result: dict[str, Any], at: datetime, *, correctable: bool,
                       ) -> datetime | None:
        """A form filled in or a consent signed (EDU-5); when it was first done, if before (else None). It counts
        as completed when first done. A form sent again corrects it (``correctable``: the latest answer is kept,
        each answer stays in the conversation); a consent is signed once: the first signature stands."""
        async def txn(conn: asyncpg.Connection) -> datetime | None:
            before: datetime | None = await conn.fetchval(
                f"select completed_at from {self.s}.deliveries where id = $1 for update", delivery_id)
            if before is None or correctable:
                await conn.execute(
                    f"update {self.s}.deliveries set completed_at = coalesce(completed_at, $3), result = $2,"
                    " read_at = coalesce(read_at, $3) where id = $1", delivery_id, result, at)
            return before
        done: datetime | None = await self._run("pathway_complete", txn)
        return done

    # -- files, summaries, classrooms -------------------------------------------------------

    async def unread_convs(self, since: date) -> list[str]:
        """Service conversations with items sent since ``since`` not yet known to be read."""
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(
                f"select distinct conv from {self.s}.deliveries where read_at is null and conv is not null"
                " and sent_at >= $1::date::timestamp at time zone $2 order by conv", since, HOSPITAL_ZONE.key)
        return [r["conv"] for r in await self._run("pathway_unread_convs", txn, transaction=False)]

    async def day_stats(self, day: date) -> list[dict[str, Any]]:
        """One day by pathway and node (TRT-3): the items sent that day, how many of them are read and completed,
        and the reminders sent that day (for items of any day)."""
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(
                f"select pathway, node, coalesce(s.sent, 0) as sent, coalesce(s.read, 0) as read,"
                " coalesce(s.completed, 0) as completed, coalesce(r.reminders, 0) as reminded"
                f" from (select * from {self.s}.stats_by_day where day = $1) s"
                f" full join (select * from {self.s}.reminders_by_day where day = $1) r using (pathway, node)"
                " order by pathway, node", day)
        return [dict(r) for r in await self._run("pathway_day_stats", txn, transaction=False)]

    async def node_names(self) -> dict[tuple[str, str], str]:
        """(pathway, node key) → the pathway's and node's names in the latest version; (pathway, "") → the
        pathway's name."""
        names = {}
        for pathway, _ in await self.versions():
            names[pathway.key, ""] = pathway.name
            names |= {(pathway.key, node.key): f"{pathway.name}·{node.name}" for node in pathway.nodes}
        return names

    async def tag(self, patient: str, tag: str, on: bool) -> bool:
        """Put ``tag`` on a patient (``on``) or take it off (EDU-5, EDU-6); True if that changed anything."""
        async def txn(conn: asyncpg.Connection) -> str:
            if on:
                result: str = await conn.execute(
                    f"insert into {self.s}.tags (patient, tag) values ($1, $2) on conflict do nothing", patient, tag)
            else:
                result = await conn.execute(f"delete from {self.s}.tags where patient = $1 and tag = $2", patient, tag)
            return result
        return (await self._run("pathway_tag", txn)).split()[-1] != "0"

    async def tagged(self, tag: str) -> list[str]:
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(f"select patient from {self.s}.tags where tag = $1 order by patient", tag)
        return [r["patient"] for r in await self._run("pathway_tagged", txn, transaction=False)]

    async def keep_classroom(self, conv: str, tag: str, content: str, by: str) -> None:
        async def txn(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"insert into {self.s}.classrooms (conv, tag, content, created_by) values ($1, $2, $3, $4)"
                " on conflict (conv) do update set tag = excluded.tag, content = excluded.content", conv, tag, content,
                by)
        await self._run("pathway_keep_classroom", txn)

    async def summary_targets(self) -> list[str]:
        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch(f"select conv from {self.s}.summary_targets order by conv")
        return [r["conv"] for r in await self._run("pathway_summary_targets", txn, transaction=False)]

    async def set_summary_target(self, conv: str, by: str, on: bool) -> bool:
        """Start (``on``) or stop sending the daily summary to ``conv``; True if that changed anything."""
        async def txn(conn: asyncpg.Connection) -> str:
            if on:
                result: str = await conn.execute(
                    f"insert into {self.s}.summary_targets (conv, added_by) values ($1, $2) on conflict do nothing",
                    conv, by)
            else:
                result = await conn.execute(f"delete from {self.s}.summary_targets where conv = $1", conv)
            return result
        return (await self._run("pathway_summary_target", txn)).split()[-1] != "0"

    async def file(self, name: str, sha256: str) -> dict[str, Any] | None:
        """The attachment a shipped file was uploaded as, if this content was uploaded before."""
        async def txn(conn: asyncpg.Connection) -> dict[str, Any] | None:
            found: dict[str, Any] | None = await conn.fetchval(
                f"select attachment from {self.s}.files where name = $1 and sha256 = $2", name, sha256)
            return found
        return await self._run("pathway_file", txn, transaction=False)

    async def keep_file(self, name: str, sha256: str, attachment: dict[str, Any]) -> None:
        async def txn(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"insert into {self.s}.files (name, sha256, attachment) values ($1, $2, $3) on conflict (name)"
                " do update set sha256 = excluded.sha256, attachment = excluded.attachment", name, sha256, attachment)
        await self._run("pathway_keep_file", txn)

    async def open_cycle(self, patient: str) -> CycleRow | None:
        return await self._run("pathway_open_cycle", self.open_cycle_txn, patient, transaction=False)

    async def start_cycle_txn(
        self, conn: asyncpg.Connection, patient: str, his_id: str, pathway: Pathway, day: date, now: datetime,
    ) -> CycleRow:
        """Start a cycle, ending her open one (a new cycle replaces it); the same start again changes nothing."""
        open_ = await self.open_cycle_txn(conn, patient)
        if open_ is not None and open_.pathway.key == pathway.key and open_.started == day:
            return open_
        if open_ is not None:
            await conn.execute(f"update {self.s}.cycles set ended_at = $2 where id = $1", open_.id, now)
        cycle_id = await conn.fetchval(
            f"insert into {self.s}.cycles (patient, his_id, pathway, version, started) values ($1, $2, $3, $4, $5)"
            " returning id", patient, his_id, pathway.key, pathway.version, day,
        )
        return CycleRow(cycle_id, patient, his_id, pathway, day, {})

    async def contacts_txn(self, conn: asyncpg.Connection, cycle_id: int, his_id: str, phone: str, openid: str,
                           ) -> None:
        """Keep her record number and how to reach her outside the app: what an event gives replaces what was
        known, blanks change nothing (a cycle staff started learns her record number from the first HIS event)."""
        await conn.execute(
            f"update {self.s}.cycles set his_id = coalesce(nullif($2, ''), his_id),"
            " phone = coalesce(nullif($3, ''), phone), openid = coalesce(nullif($4, ''), openid) where id = $1",
            cycle_id, his_id, phone, openid)

    async def set_date_txn(self, conn: asyncpg.Connection, cycle_id: int, procedure: str, day: date) -> int:
        """Record a procedure's date; its revision (0 at first, one more at each change; the same date again
        changes nothing)."""
        await conn.execute(
            f"insert into {self.s}.procedure_dates as d (cycle_id, procedure, day) values ($1, $2, $3)"
            " on conflict (cycle_id, procedure) do update set day = excluded.day, updated_at = now(),"
            "   revision = d.revision + 1, cancelled_at = null"
            "   where d.day <> excluded.day or d.cancelled_at is not null", cycle_id, procedure, day,
        )
        revision: int = await conn.fetchval(f"select revision from {self.s}.procedure_dates"
                                            " where cycle_id = $1 and procedure = $2", cycle_id, procedure)
        return revision

    async def cancel_date_txn(self, conn: asyncpg.Connection, cycle_id: int, procedure: str, at: datetime,
                              ) -> tuple[date, int] | None:
        """A dated procedure will not happen: its date is set aside (a new revision); the date it had and the new
        revision, or None if it had no date."""
        row = await conn.fetchrow(
            f"update {self.s}.procedure_dates set cancelled_at = $3, revision = revision + 1, updated_at = now()"
            " where cycle_id = $1 and procedure = $2 and cancelled_at is null returning day, revision",
            cycle_id, procedure, at)
        return None if row is None else (row["day"], row["revision"])

    async def notice_sent_txn(self, conn: asyncpg.Connection, cycle_id: int, procedure: str, day: date,
                              revision: int) -> bool:
        """Whether she was sent the notice of this procedure for this date and revision."""
        sent: bool = await conn.fetchval(
            f"select exists (select from {self.s}.deliveries where cycle_id = $1 and item = $2 and day = $3"
            " and revision = $4)", cycle_id, f"treatment:{procedure}", day, revision)
        return sent

    # -- the mini-program feed (TRT-4) -------------------------------------------------------

    async def treatment_notices(self, *, username: str | None = None, his_id: str | None = None,
                                limit: int = 50) -> PatientNotices | None:
        """A patient's treatment-item notices over all her cycles, newest first (TRT-4): the patient named by her
        username or by her record number in the hospital system; None if no cycle of hers is known.

        Read only, on one connection outside a transaction. A notice's ``day`` is the procedure date it was sent
        for (a moved date is a notice of its own); its pathway is her cycle's version, so it renders as what was
        sent (bots.pathway.api).
        """
        async def txn(conn: asyncpg.Connection) -> PatientNotices | None:
            patient = username
            if his_id is not None:
                patient = await conn.fetchval(
                    f"select patient from {self.s}.cycles where his_id = $1 order by id desc limit 1", his_id)
            if patient is None:
                return None
            known = await conn.fetchrow(  # her latest record number, if any of her cycles has one
                f"select his_id from {self.s}.cycles where patient = $1 order by his_id = '', id desc limit 1", patient)
            if known is None:
                return None
            rows = await conn.fetch(
                f"select d.id, d.cycle_id, c.pathway, c.version, d.node, substr(d.item, length('treatment:') + 1)"
                "        as procedure, d.day, d.sent_at, d.read_at is not null as read,"
                "        coalesce(c.ended_at is null and p.cancelled_at is null and p.day = d.day"
                "                 and p.revision = d.revision, false) as current"
                f" from {self.s}.deliveries d join {self.s}.cycles c on c.id = d.cycle_id"
                f" left join {self.s}.procedure_dates p on p.cycle_id = d.cycle_id"
                "   and p.procedure = substr(d.item, length('treatment:') + 1)"
                " where c.patient = $1 and starts_with(d.item, 'treatment:') and d.sent_at is not null"
                " order by d.sent_at desc, d.id desc limit $2", patient, limit)
            versions = {(r["pathway"], r["version"]) for r in rows}
            definitions = await conn.fetch(
                f"select pathway, version, definition from {self.s}.pathway_versions"
                " where (pathway, version) in (select * from unnest($1::text[], $2::int[]))",
                [p for p, _ in versions], [v for _, v in versions]) if versions else []
            pathways = {(d["pathway"], d["version"]): msgspec.convert(d["definition"], Pathway) for d in definitions}
            return PatientNotices(patient, known["his_id"], [
                NoticeRow(r["id"], r["cycle_id"], pathways[r["pathway"], r["version"]], r["node"], r["procedure"],
                          r["day"], r["sent_at"], r["read"], r["current"]) for r in rows])
        found: PatientNotices | None = await self._run("pathway_treatment_notices", txn, transaction=False)
        return found


@dataclass(frozen=True)
class NoticeRow:
    """A treatment-item notice sent to a patient (TRT-4): a ``treatment:<procedure>`` delivery."""

    id: int
    cycle: int
    pathway: Pathway
    """Her cycle's version of the pathway: what the notice was rendered from."""
    node: str
    procedure: str
    day: date
    sent_at: datetime
    read: bool
    current: bool
    """Whether its date still holds (a moved date has a notice of its own)."""


@dataclass(frozen=True)
class PatientNotices:
    patient: str
    his_id: str
    notices: list[NoticeRow]
