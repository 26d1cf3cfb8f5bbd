"""The pathway bot's durable jobs (EDU-3, EDU-4, EDU-5, IM-2, TRT-1..TRT-3): what happens when a node (its content,
its procedures' treatment items, the group move), a doctor's order, a reminder or the daily summary falls due.

Each job is idempotent: messages carry fixed client ids (``pw:...``), so a job run again after a crash sends nothing
twice; a job whose date has since changed or whose cycle ended does nothing; a node a later node has overtaken (the
bot was down, the hospital system sent her dates late) sends only what she must still fill in or sign. Jobs of a
batch run at once; group moves and creations, and uploads, take turns (``Work._serial``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg
import msgspec
import trio

from bots.framework.channels import Note, Recipient
from bots.framework.escalation import Policy, Step
from bots.framework.jobs import Handler, Job
from bots.framework.outbox import Outbox
from bots.pathway import texts
from bots.pathway.definition import Item, Node
from bots.pathway.render import Outgoing, item_message, summary_text, treatment_message, treatment_note
from bots.pathway.schedule import at_clock, daytime, reached
from bots.pathway.store import JOB_ATTEMPTS, CycleRow, Delivery, PathwayStore, Sent
from clients.python import Client, ClientError
from protocol.clock import HOSPITAL_ZONE
from protocol.frames import GroupAdd, GroupCreate, GroupRemove, Receipt

log = logging.getLogger(__name__)

REMIND_AFTER: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=2))
"""The reminder policy (EDU-5, TRT-3): the first reminder a day after an item is sent, the next two days after that;
no more. Items still unread (forms and consents: not filled in or signed) are reminded; welcome texts are not."""
TREATMENT_OUTSIDE = Policy((Step("wechat"), Step("sms")))
"""Treatment items go to the app as a message of their own, and at once by WeChat and SMS (TRT-2) through the outbox."""
SUMMARY_AT = "07:30"
"""When a day's summary goes to staff (TRT-3): the next morning, Asia/Shanghai, before the day's first reminders
(08:00): the day is over, with its evening's reminders and what she read by night."""
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mp4": "video/mp4"}


class Work:
    def __init__(self, outbox: Outbox, *, remind_after: Sequence[timedelta] = REMIND_AFTER) -> None:
        self.outbox = outbox
        self.store = PathwayStore(outbox.state)
        self.remind_after = tuple(remind_after)
        self._files: dict[str, dict[str, Any]] = {}
        self._serial = trio.Lock()
        """Group moves and creations, and uploads: jobs of one batch run at once, and two patients reaching a new
        node together must not each create its group (nor two jobs upload one video twice)."""

    def handlers(self) -> dict[str, Handler]:
        return {"node": self.node, "order": self.order, "remind": self.remind, "summary": self.summary,
                "cancelled": self.cancelled}

    @property
    def client(self) -> Client:
        if self.outbox.client is None:
            raise RuntimeError("the bot is not connected; the job is tried again later")
        return self.outbox.client

    async def node(self, job: Job) -> None:
        """Her node begins (EDU-3, IM-2, TRT-1, TRT-2): its welcome and content, then its procedures' treatment
        items (in the app, and by WeChat and SMS), then the move into the node's group (her husband follows). In
        that order: the education does not wait on a group the bot can no longer manage, and a job run again sends
        nothing twice (client ids) and moves nobody twice (the last move is recorded)."""
        cycle = await self.store.cycle(job.payload["cycle"])
        if cycle is None:
            return
        node = cycle.pathway.node(job.payload["node"])
        if (cycle.cycle.node_date(node), cycle.cycle.revision(node)) != (
                date.fromisoformat(job.payload["day"]), job.payload.get("revision", 0)):  # none before revisions
            return  # the date changed since: the job for the new date does it
        occurrence = cycle.cycle.occurrence(node)

        async def send(item: Item, *, remind: bool) -> None:  # named once per occurrence of the node's step
            key = f"{item.key}@{occurrence}" if occurrence else item.key
            await self._send_item(cycle, node.key, item, job, remind=remind, key=key)

        latest = reached(cycle.cycle, job.now)
        if latest is not None and latest.key != node.key:
            # The hospital system sent her dates late, or the bot was down past a later node: that node's job
            # moves her; from this one only what she must still fill in or sign.
            log.warning("node overtaken by a later one", extra={"cycle": cycle.id, "node": node.key})
            for item in node.content:
                if item.kind in ("form", "signature"):
                    await send(item, remind=True)
            return
        for item in node.welcome:
            await send(item, remind=False)
        for item in node.content:
            await send(item, remind=True)
        for procedure in node.treatment:
            await self._treatment(cycle, node, procedure, job)
        async with self._serial:
            await self._move(cycle, node, job)

    async def _treatment(self, cycle: CycleRow, node: Node, procedure: str, job: Job) -> None:
        """A procedure's items by its date (TRT-1, TRT-2): in her service conversation, and by WeChat and SMS. Not
        for a procedure without a date yet, nor for a day already past (a date entered late)."""
        day = cycle.dates.get(procedure)
        if day is None:
            return
        if job.now.astimezone(HOSPITAL_ZONE).date() > day:
            log.warning("treatment items past their day; not sent", extra={"cycle": cycle.id, "procedure": procedure})
            return
        treatment = node.treatment[procedure]
        revision = cycle.revisions.get(procedure, 0)
        sent = Sent(cycle.id, node.key, f"treatment:{procedure}", "treatment_items", treatment.title, day, revision)
        await self._send(cycle, sent, treatment_message(treatment, day), job, remind=True)
        await self.outbox.notify(_notice_key(cycle.id, procedure, day, revision), _recipient(cycle),
                                 treatment_note(treatment, day), policy=TREATMENT_OUTSIDE, now=job.now)

    async def cancelled(self, job: Job) -> None:
        """Her procedure was cancelled (a freeze-all, say). If she had its notice, she is told where it went (the
        app, WeChat, SMS), so it does not stand, and its WeChat and SMS steps not yet taken are called off; if not,
        she is told in the app."""
        cycle = await self.store.cycle(job.payload["cycle"])
        procedure: str = job.payload["procedure"]
        revision: int = job.payload["revision"]
        if cycle is None or cycle.revisions.get(procedure) != revision:
            return  # dated again since: the new date's notice says it
        notified: bool = job.payload["notified"]
        if notified:  # first, what is left of the old notice's sending stops
            old = _notice_key(cycle.id, procedure, date.fromisoformat(job.payload["day"]), revision - 1)
            await self.outbox.settle(old, "cancelled", now=job.now)
        name = texts.PROCEDURE_NAMES[procedure]
        text = (texts.CANCELLED if notified else texts.CANCELLED_UNANNOUNCED).format(procedure=name)
        await self.client.send(f"u:{cycle.patient}", text, cid=f"pw-x:{cycle.id}:{procedure}:{revision}")
        if notified:
            note = Note(texts.CANCELLED_TITLE.format(center=texts.CENTER, procedure=name), text)
            await self.outbox.notify(f"pw-x:{cycle.id}:{procedure}:{revision}", _recipient(cycle), note,
                                     policy=TREATMENT_OUTSIDE, now=job.now)

    async def order(self, job: Job) -> None:
        """Education for a doctor's order (EDU-4), as soon as the order arrives."""
        cycle = await self.store.cycle(job.payload["cycle"])
        if cycle is None:
            return
        rule = next(r for r in cycle.pathway.orders if r.key == job.payload["rule"])
        for item in rule.items:
            await self._send_item(cycle, "orders", item, job, remind=True, key=f"order:{rule.key}:{item.key}")

    async def remind(self, job: Job) -> None:
        """Remind her of an item she has not read (or a form she has not filled in, a consent not signed)."""
        found = await self.store.delivery(job.payload["delivery"])
        if found is None or not found.open or not await self._still_current(found, job.now):
            return
        delivery = await self._read_so_far(found, job.now)
        if delivery.done:
            return
        n: int = job.payload["n"]
        text = {"form": texts.REMIND_FORM, "signature_request": texts.REMIND_SIGN}.get(delivery.kind, texts.REMIND_READ)
        await self.client.send(delivery.conv, text.format(title=delivery.title), cid=f"pw-r:{delivery.id}:{n}")
        following = daytime(job.now + self.remind_after[n]) if n < len(self.remind_after) else None
        await self.store.reminded(delivery.id, n, job.now, following)

    async def summary(self, job: Job) -> None:
        """The day's summary to the staff who asked for it (TRT-3): sent, read, completed, reminded, by node; and
        the next day's scheduled. (A bot catching up after a long stop may run it beside that day's reminders and
        count fewer; running, it comes hours after them.)"""
        day = date.fromisoformat(job.payload["day"])
        await schedule_summary(self.store, day + timedelta(days=1))  # first: a failure here must not end the chain
        for conv, upto in await self._receipts(await self.store.unread_convs(day - timedelta(days=7))):
            await self.store.mark_read(conv, upto, job.now)
        stats = await self.store.day_stats(day)
        targets = await self.store.summary_targets() if stats else []  # a day without sendings has no summary
        text = summary_text(day, stats, await self.store.node_names())
        for conv in targets:
            try:
                await self.client.send(conv, text, cid=f"pw-s:{day}:{hashlib.sha256(conv.encode()).hexdigest()[:16]}")
            except ClientError as exc:  # the group was closed, the bot removed: the others still get theirs
                log.warning("daily summary refused", extra={"conv": conv, "error": exc.code})

    async def prepare_classroom(self, conv: str, pathway: str, node: str, items: Sequence[Item]) -> int:
        """Post a node's content into a classroom group before the class is pulled in (EDU-6); how many items were
        posted. Forms and consents are left out: they are answered one to one, not in front of the class."""
        posted = 0
        for item in items:
            out = None if item.kind in ("form", "signature") else await self._outgoing(item)
            if out is not None:
                key = hashlib.sha256(f"{conv}:{pathway}:{node}:{item.key}".encode()).hexdigest()[:40]
                await self.client.send(conv, out.text, kind=out.kind, body=out.body, cid=f"pw-c:{key}")
                posted += 1
        return posted

    async def _still_current(self, delivery: Delivery, now: datetime) -> bool:
        """Worth a reminder: a form or consent not done yet; a doctor's order's education; a treatment notice whose
        date still holds and has not passed; other content while its node is where she is (EDU-5, TRT-3)."""
        if delivery.needs_completion or delivery.node == "orders":
            return True
        cycle = await self.store.cycle(delivery.cycle_id)
        if cycle is None:
            return False
        if delivery.day is not None:
            procedure = delivery.item.removeprefix("treatment:")
            holds = (cycle.dates.get(procedure), cycle.revisions.get(procedure)) == (delivery.day, delivery.revision)
            return holds and now.astimezone(HOSPITAL_ZONE).date() <= delivery.day
        current = reached(cycle.cycle, now)  # content is hers from when it is sent until the next node's is
        return current is not None and current.key == delivery.node

    async def _read_so_far(self, delivery: Delivery, now: datetime) -> Delivery:
        """Ask the server how far she has read her service conversation and record it (SPEC.md §5.4.1)."""
        if delivery.read_at is not None:
            return delivery
        ((_, upto),) = await self._receipts([delivery.conv])
        await self.store.mark_read(delivery.conv, upto, now)
        updated = await self.store.delivery(delivery.id)
        assert updated is not None
        return updated

    async def _receipts(self, convs: Sequence[str]) -> list[tuple[str, int]]:
        return [(conv, (await self.client.request(Receipt(conv=conv))).peer_read_seq) for conv in convs]

    async def _send_item(self, cycle: CycleRow, node: str, item: Item, job: Job, *, remind: bool,
                         key: str | None = None) -> None:
        out = await self._outgoing(item)
        if out is not None:
            sent = Sent(cycle.id, node, key or item.key, out.kind, item.title)
            await self._send(cycle, sent, out, job, remind=remind)

    async def _outgoing(self, item: Item) -> Outgoing | None:
        """The item as a message, its file uploaded if it has one; None (logged) if its file is not shipped."""
        if not item.file:
            return item_message(item, {})
        attachment = await self._file(item.file)
        if attachment is None:
            log.warning("a pathway file is missing; item skipped", extra={"file": item.file, "item": item.key})
            return None
        return item_message(item, {item.file: attachment})

    async def _send(self, cycle: CycleRow, sent: Sent, out: Outgoing, job: Job, *, remind: bool) -> None:
        ack = await self.client.send(f"u:{cycle.patient}", out.text, kind=out.kind, body=out.body, cid=sent.cid)
        remind_at = daytime(job.now + self.remind_after[0]) if remind and self.remind_after else None
        await self.store.delivered(sent, ack.conv, ack.seq, job.now, remind_at)

    async def _file(self, name: str) -> dict[str, Any] | None:
        """The attachment of a file shipped beside the pathways, uploaded once per content; None if not shipped."""
        if name in self._files:
            return self._files[name]
        entry = resources.files("bots.pathway.pathways").joinpath(name)
        if not entry.is_file():
            return None
        data = entry.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        async with self._serial:
            attachment = await self.store.file(name, digest)
            if attachment is None:
                mime = MIME.get(name[name.rfind("."):].lower(), "application/octet-stream")
                attachment = msgspec.to_builtins(await self.client.upload(data, mime, name))
                await self.store.keep_file(name, digest, attachment)
        self._files[name] = attachment
        return attachment

    async def _move(self, cycle: CycleRow, node: Node, job: Job) -> None:
        group = await self._group(cycle, node)
        previous = await self.store.current_group(cycle.patient)
        if previous == group:
            return
        await self.client.request(GroupAdd(conv=group, user=cycle.patient))
        if previous is not None:
            try:
                await self.client.request(GroupRemove(conv=previous, user=cycle.patient))
            except ClientError as exc:
                if exc.code != "not_found":  # she had left already
                    raise
        await self.store.moved(cycle.id, previous, group, job.now)

    async def _group(self, cycle: CycleRow, node: Node) -> str:
        """The node's group, created by the bot the first time a patient reaches the node."""
        found = await self.store.node_group(cycle.pathway.key, node.key)
        if found is not None:
            return found
        made = await self.client.request(GroupCreate(name=node.group))
        return await self.store.keep_node_group(cycle.pathway.key, node.key, made.conv)


def _notice_key(cycle_id: int, procedure: str, day: date, revision: int) -> str:
    """The outbox key of a procedure's notice by WeChat and SMS: one per date and revision of the date."""
    return f"pw:{cycle_id}:treatment:{procedure}:{day}:{revision}"


def _recipient(cycle: CycleRow) -> Recipient:
    return Recipient(cycle.patient, cycle.phone or None, cycle.openid or None)


async def schedule_summary(store: PathwayStore, day: date) -> None:
    """The summary of ``day``, at SUMMARY_AT the morning after; scheduling it again changes nothing."""
    async def txn(conn: asyncpg.Connection) -> None:
        await store.state.jobs.schedule_txn(conn, f"summary:{day}", "summary",
                                            at_clock(day + timedelta(days=1), SUMMARY_AT),
                                            {"day": day.isoformat()}, max_attempts=JOB_ATTEMPTS)
    await store.state.store.run("pathway_schedule_summary", txn)

