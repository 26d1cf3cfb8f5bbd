"""The pathway bot (EDU-1..EDU-6, TRT-1..TRT-4; docs/pathway.md): education and treatment-item notices, a client.

Its work is durable jobs (``work.py``) scheduled from what the hospital system says (``intake.py``);
its commands let a patient ask where she stands (``/progress``, in her service conversation) and let
staff stand in for the hospital system (``/enroll``, ``/date``), look a patient up (``/status``),
classify patients and pull a class into a classroom (``/tag``, ``/untag``, ``/classroom``) and ask for
the daily summary (``/daily``). Forms and signatures she sends back are checked and kept
(``on_message``). Staff and operators read docs/pathway.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import cast

import trio

from bots.framework import Args, Bot, Command, CommandError, Context, Kind, Param
from bots.framework.channels import ChannelConfigError
from bots.framework.escalation import parse_duration
from bots.framework.jobs import Handler
from bots.framework.outbox import Outbox
from bots.pathway import manage, texts
from bots.pathway.api import serve_api
from bots.pathway.definition import PROCEDURES, Item, Pathway, PathwayError
from bots.pathway.events import PathwayKey, Patient, Procedure
from bots.pathway.feed import follow
from bots.pathway.intake import Outcome, cancel, enroll, resume, set_date
from bots.pathway.render import progress_text
from bots.pathway.schedule import position
from bots.pathway.store import PathwayStore
from bots.pathway.work import REMIND_AFTER, SUMMARY_AT, Work, schedule_summary
from integrations.his.client import HisClient, connect
from protocol import Message
from protocol.clock import HOSPITAL_ZONE, Clock, system_clock
from protocol.errors import ProtocolError
from protocol.frames import GroupAdd, Members
from protocol.kinds import Form, check_form_reply, parse_clock, parse_day

log = logging.getLogger(__name__)


class PathwayBot(Bot):
    name = "pathway"
    title = texts.TITLE
    description = texts.DESCRIPTION
    migrations = "bots.pathway.migrations"

    def __init__(self, clock: Clock = system_clock, env: Mapping[str, str] | None = None) -> None:
        """``env``: the configuration (``os.environ`` by default): IMBOT_HIS_URL and IMBOT_HIS_KEY to follow the
        hospital system's feed (docs/integrations/his.md); IMBOT_PATHWAY_API_* for the mini-program's notices
        (docs/pathway-api.md); IMBOT_PATHWAY_REMIND, the reminder policy as
        durations (default ``1d,2d``: a day after sending, then two days after that).

        Error handling: ValueError (a PolicyError) naming IMBOT_PATHWAY_REMIND if it is not a list of durations.
        """
        super().__init__()
        self.clock = clock
        self.env = os.environ if env is None else env
        self.remind_after = reminder_policy(self.env.get("IMBOT_PATHWAY_REMIND"))
        self._published = False
        self._work_of: Work | None = None

    async def _store(self, ctx: Context) -> PathwayStore:
        return await self._published_store(ctx.outbox)

    async def _published_store(self, outbox: Outbox) -> PathwayStore:
        """The bot's store, with the pathways this install ships published (once per process; a no-op after)."""
        store = PathwayStore(outbox.state)
        if not self._published:
            await store.publish_shipped()
            self._published = True
        return store

    async def serve(self, outbox: Outbox) -> None:
        """Publish the shipped pathways, act on events stored before a stop, keep the daily summary going (it also
        learns what patients have read), then serve the mini-program's notices API (TRT-4) and follow the HIS feed,
        each if configured."""
        store = await self._published_store(outbox)
        await schedule_summary(store, self.clock().astimezone(HOSPITAL_ZONE).date())
        for outcome in await resume(store, self.clock()):
            log.info("stored event acted on at start", extra={"event": outcome.event, "status": outcome.status})
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_api, store, self.env)  # bound before the bot goes on; a bad setting stops it
            if self.env.get("IMBOT_HIS_URL"):
                nursery.start_soon(self._follow_his, store)

    async def _follow_his(self, store: PathwayStore) -> None:
        key = self.env.get("IMBOT_HIS_KEY")
        if not key:
            raise ChannelConfigError("IMBOT_HIS_KEY is required when IMBOT_HIS_URL is set")
        async with connect(self.env["IMBOT_HIS_URL"], key) as service:
            await follow(store, HisClient(service), self.clock)

    def commands(self) -> list[Command]:
        patient = Param("患者", texts.PATIENT)
        tag = Param("标签", texts.TAG)
        return [
            Command("progress", texts.PROGRESS_HELP, run=self.progress, patients=True),
            Command("status", texts.STATUS_HELP, (patient,), run=self.status),
            Command("enroll", texts.ENROLL_HELP, (
                patient, Param("路径", texts.PATHWAY, Kind.CHOICE, choices=("ivf", "iui")),
                Param("日期", texts.DAY, required=False, default=""),
            ), run=self.enroll),
            Command("date", texts.DATE_HELP, (
                patient, Param("手术", texts.PROCEDURE, Kind.CHOICE, choices=tuple(PROCEDURES)),
                Param("日期", texts.DAY),
            ), run=self.date),
            Command("cancel", texts.CANCEL_HELP, (
                patient, Param("手术", texts.PROCEDURE, Kind.CHOICE, choices=tuple(PROCEDURES)),
            ), run=self.cancel),
            Command("pathways", texts.PATHWAYS_HELP, run=self.pathways),
            Command("pathway", texts.PATHWAY_HELP, (
                Param("路径", texts.PATHWAY_KEY), Param("节点", texts.NODE_KEY, required=False, default=""),
            ), run=self.pathway),
            Command("edit", texts.EDIT_HELP, (
                Param("位置", texts.WHERE_ITEM_HELP), Param("内容", texts.NEW_TEXT, rest=True),
            ), run=self.edit),
            Command("timing", texts.TIMING_HELP, (
                Param("位置", texts.WHERE_NODE_HELP), Param("天数", texts.BEFORE_DAYS, Kind.INT, minimum=0, maximum=30),
                Param("时间", texts.AT_TIME),
            ), run=self.timing),
            Command("additem", texts.ADDITEM_HELP, (
                Param("位置", texts.WHERE_NODE_HELP), Param("标题", texts.ITEM_TITLE),
                Param("内容", texts.NEW_TEXT, rest=True),
            ), run=self.additem),
            Command("delitem", texts.DELITEM_HELP, (Param("位置", texts.WHERE_ITEM_HELP),), run=self.delitem),
            Command("tag", texts.TAG_HELP, (patient, tag), run=self.tag),
            Command("untag", texts.UNTAG_HELP, (patient, tag), run=self.untag),
            Command("classroom", texts.CLASSROOM_HELP, (
                tag, Param("内容", texts.CLASS_CONTENT, required=False, default=""),
            ), run=self.classroom),
            Command("daily", texts.DAILY_HELP, (
                Param("开关", texts.DAILY_SWITCH, Kind.CHOICE, choices=("on", "off"), required=False, default="on"),
            ), run=self.daily),
        ]

    def _work(self, outbox: Outbox) -> Work:
        """One Work per bot process: its uploaded files and per-cycle locks are shared by jobs and commands."""
        if self._work_of is None or self._work_of.outbox is not outbox:
            self._work_of = Work(outbox, remind_after=self.remind_after)
        return self._work_of

    def jobs(self, outbox: Outbox) -> Mapping[str, Handler]:
        return self._work(outbox).handlers()

    async def on_message(self, ctx: Context, message: Message) -> None:
        """A form filled in or a consent signed in her service conversation (EDU-2, EDU-5): checked and recorded."""
        if message.kind not in ("form_reply", "signature") or message.body is None or message.sender.role == "bot":
            return
        store = await self._store(ctx)
        answering = message.body["form" if message.kind == "form_reply" else "request"]
        delivery = await store.delivery(conv=ctx.conv, seq=answering)
        expected = "form" if message.kind == "form_reply" else "signature_request"
        if delivery is None or delivery.kind != expected or not delivery.open:
            if not ctx.in_group:  # in a group it may well be another bot's form
                await ctx.reply(texts.FORM_UNKNOWN)
            return
        when = datetime.fromtimestamp(message.ts / 1000, HOSPITAL_ZONE)
        if message.kind == "signature":
            before = await store.complete(delivery.id, {"image": message.body["image"], "signed_at": when.isoformat(),
                                                        "seq": message.seq}, when, correctable=False)
            signed = (before or when).astimezone(HOSPITAL_ZONE).strftime("%Y-%m-%d %H:%M")
            await ctx.reply((texts.SIGNED_BEFORE if before else texts.SIGNED).format(title=delivery.title, time=signed))
            return
        item = delivery.pathway.item(delivery.node, delivery.item)
        assert item is not None  # the delivery was made from this very pathway version
        form = Form(title=item.title, fields=item.fields)
        try:
            values = check_form_reply(form, message.body["values"])
        except ProtocolError as exc:
            await ctx.reply(texts.FORM_FIX.format(title=item.title, problem=_problem(item, exc)))
            return
        corrected = await store.complete(delivery.id, {"values": values, "seq": message.seq}, when, correctable=True)
        await ctx.reply((texts.FORM_CORRECTED if corrected else texts.FORM_THANKS).format(title=item.title))

    async def progress(self, ctx: Context, args: Args) -> None:
        """Her own progress (EDU-3): she is found among the conversation's members by her member id, so it works
        before anything was sent to her; in a group the answer is for her eyes only."""
        members = (await ctx.client.whole(Members(conv=ctx.conv))).members
        patient = next((m.username or None for m in members if m.id == ctx.message.sender.id), None)
        await ctx.reply(await self._progress_of(await self._store(ctx), patient), privately=True)

    async def status(self, ctx: Context, args: Args) -> None:
        await ctx.reply(await self._progress_of(await self._store(ctx), str(args["患者"])))

    async def enroll(self, ctx: Context, args: Args) -> None:
        patient, pathway = str(args["患者"]), cast(PathwayKey, args["路径"])
        day = _day(str(args["日期"])) if args["日期"] else self.clock().astimezone(HOSPITAL_ZONE).date()
        outcome = await enroll(await self._store(ctx), "staff", _event_id(ctx), Patient(username=patient), pathway,
                               day, self.clock())
        await _answer(ctx, outcome, patient, texts.ENROLLED.format(patient=patient, pathway=pathway, day=day))

    async def date(self, ctx: Context, args: Args) -> None:
        patient, procedure, day = str(args["患者"]), cast(Procedure, args["手术"]), _day(str(args["日期"]))
        outcome = await set_date(await self._store(ctx), "staff", _event_id(ctx), Patient(username=patient),
                                 procedure, day, self.clock())
        name = texts.PROCEDURE_NAMES[procedure]
        await _answer(ctx, outcome, patient, texts.DATED.format(patient=patient, procedure=name, day=day))

    async def cancel(self, ctx: Context, args: Args) -> None:
        patient, procedure = str(args["患者"]), cast(Procedure, args["手术"])
        outcome = await cancel(await self._store(ctx), "staff", _event_id(ctx), Patient(username=patient), procedure,
                               self.clock())
        name = texts.PROCEDURE_NAMES[procedure]
        await _answer(ctx, outcome, patient, texts.CANCEL_DONE.format(patient=patient, procedure=name))

    async def pathways(self, ctx: Context, args: Args) -> None:
        lines = [texts.PATHWAY_LINE.format(name=p.name, key=p.key, version=p.version,
                                           by=texts.BY_STAFF if by else texts.BY_RELEASE,
                                           nodes="、".join(n.name for n in p.nodes))
                 for p, by in await (await self._store(ctx)).versions()]
        await ctx.reply("\n".join(lines))

    async def pathway(self, ctx: Context, args: Args) -> None:
        """A pathway's nodes, or one node's timing and items: what staff need to name them in an edit."""
        key = str(args["路径"])
        found = await (await self._store(ctx)).latest(key)
        if found is None:
            raise CommandError(texts.NO_PATHWAY.format(pathway=key))
        if not args["节点"]:
            await ctx.reply(texts.NODE_LIST.format(pathway=found.name, key=key, version=found.version,
                                                   nodes="、".join(f"{n.name} {n.key}" for n in found.nodes)))
            return
        try:
            node = found.node(str(args["节点"]))
        except KeyError:
            raise CommandError(texts.NO_NODE.format(pathway=found.name, node=args["节点"])) from None
        head = texts.NODE_HEAD.format(
            pathway=found.name, node=node.name, key=f"{key}.{node.key}", step=texts.NODE_STEP[node.step],
            after=texts.NODE_AFTER.format(days=node.days_after) if node.days_after else "",
            before=node.before_days, at=node.at, group=node.group)
        items = [texts.ITEM_LINE.format(key=i.key, kind=texts.KIND_NAMES[i.kind], title=i.title)
                 for i in (*node.welcome, *node.content)]
        await ctx.reply("\n".join([head, *items]))

    async def edit(self, ctx: Context, args: Args) -> None:
        where = _where(str(args["位置"]), item=True)
        await self._publish_edit(ctx, where, lambda p: manage.set_text(p, where, str(args["内容"])))

    async def timing(self, ctx: Context, args: Args) -> None:
        where, at = _where(str(args["位置"]), item=False), str(args["时间"])
        if parse_clock(at) is None:
            raise CommandError(texts.BAD_TIME)
        await self._publish_edit(ctx, where, lambda p: manage.set_timing(p, where, int(str(args["天数"])), at))

    async def additem(self, ctx: Context, args: Args) -> None:
        where, title, text = _where(str(args["位置"]), item=False), str(args["标题"]), str(args["内容"])
        published = await self._publish_edit(ctx, where, lambda p: manage.add_text(p, where, title, text), answer=False)
        node = published.node(where.node)
        await ctx.reply(texts.ADDED.format(node=node.name, item=node.content[-1].key, pathway=published.name,
                                           version=published.version))

    async def delitem(self, ctx: Context, args: Args) -> None:
        where = _where(str(args["位置"]), item=True)
        await self._publish_edit(ctx, where, lambda p: manage.remove_item(p, where))

    async def _publish_edit(self, ctx: Context, where: manage.Where, change: Callable[[Pathway], Pathway], *,
                            answer: bool = True) -> Pathway:
        """The next version of the pathway, made by ``change`` from the latest and published in the staff member's
        name (EDU-1): new cycles use it, cycles under way keep theirs."""
        store = await self._store(ctx)
        latest = await store.latest(where.pathway)
        if latest is None:
            raise CommandError(texts.NO_PATHWAY.format(pathway=where.pathway))
        try:
            edited = change(latest)
        except manage.EditError as exc:
            raise CommandError(str(exc)) from None
        try:
            await store.publish(edited, by=ctx.message.sender.id)
        except PathwayError:  # another edit took this version number first
            raise CommandError(texts.EDIT_RACE) from None
        log.info("pathway edited", extra={"pathway": edited.key, "version": edited.version,
                                          "by": ctx.message.sender.id})
        if answer:
            await ctx.reply(texts.EDITED.format(pathway=edited.name, version=edited.version))
        return edited

    async def tag(self, ctx: Context, args: Args) -> None:
        await self._tag(ctx, args, on=True)

    async def untag(self, ctx: Context, args: Args) -> None:
        await self._tag(ctx, args, on=False)

    async def _tag(self, ctx: Context, args: Args, *, on: bool) -> None:
        """Classify a patient (EDU-5, EDU-6): tags pick a classroom's class and split the statistics."""
        patient, tag = str(args["患者"]), str(args["标签"])
        changed = await (await self._store(ctx)).tag(patient, tag, on)
        said = {(True, True): texts.TAGGED, (True, False): texts.TAGGED_BEFORE,
                (False, True): texts.UNTAGGED, (False, False): texts.NOT_TAGGED}[on, changed]
        await ctx.reply(said.format(patient=patient, tag=tag))

    async def classroom(self, ctx: Context, args: Args) -> None:
        """In a group the bot manages: post the content, then pull in every patient with the tag (her husband follows,
        read-only) (EDU-6). Staff then lecture in the group."""
        if not ctx.in_group:
            raise CommandError(texts.CLASS_IN_GROUP)
        store = await self._store(ctx)
        tag, content = str(args["标签"]), str(args["内容"])
        pathway, node, items = await self._class_content(store, content)
        patients = await store.tagged(tag)
        if not patients:
            raise CommandError(texts.CLASS_EMPTY.format(tag=tag))
        me = ctx.client.welcome.user.id
        members = (await ctx.client.whole(Members(conv=ctx.conv))).members
        if not any(m.id == me and m.member_role in ("owner", "admin") for m in members):
            raise CommandError(texts.CLASS_NOT_ADMIN)
        posted = await self._work(ctx.outbox).prepare_classroom(ctx.conv, pathway, node, items)
        for patient in patients:
            await ctx.client.request(GroupAdd(conv=ctx.conv, user=patient))
        await store.keep_classroom(ctx.conv, tag, content, ctx.message.sender.id)
        await ctx.reply(texts.CLASS_READY.format(tag=tag, patients=len(patients), items=posted))

    async def _class_content(self, store: PathwayStore, content: str) -> tuple[str, str, list[Item]]:
        """The pathway, node and items named ``ivf.transfer`` (none for "")."""
        if not content:
            return "", "", []
        key, _, node_key = content.partition(".")
        pathway = await store.latest(key)
        try:
            node = pathway.node(node_key) if pathway is not None else None
        except KeyError:
            node = None
        if node is None:
            raise CommandError(texts.CLASS_NO_CONTENT.format(content=content))
        return key, node_key, [*node.welcome, *node.content]

    async def daily(self, ctx: Context, args: Args) -> None:
        """Send the daily summary (TRT-3) to this conversation from today on, or stop."""
        store = await self._store(ctx)
        on = args["开关"] == "on"
        await store.set_summary_target(ctx.conv, ctx.message.sender.id, on)
        if on:
            await schedule_summary(store, self.clock().astimezone(HOSPITAL_ZONE).date())
        await ctx.reply(texts.DAILY_ON.format(at=SUMMARY_AT) if on else texts.DAILY_OFF)

    async def _progress_of(self, store: PathwayStore, patient: str | None) -> str:
        cycle = None if patient is None else await store.open_cycle(patient)
        if cycle is None:
            return progress_text(None, None)
        return progress_text(cycle.cycle, position(cycle.cycle, self.clock()), await store.to_do(cycle.id))


def _where(text: str, *, item: bool) -> manage.Where:
    try:
        return manage.Where.parse(text, item=item)
    except manage.EditError as exc:
        raise CommandError(str(exc)) from None


def _event_id(ctx: Context) -> str:
    """Staff standing in for the hospital system: the command's message is the event (handled again: a duplicate)."""
    return f"{ctx.conv}:{ctx.message.seq}"


async def _answer(ctx: Context, outcome: Outcome, patient: str, done: str) -> None:
    if outcome.status == "rejected":
        done = texts.REFUSED[outcome.reason or "malformed"].format(patient=patient)
    elif outcome.status == "waiting":
        done = texts.WAITING.format(patient=patient)
    await ctx.reply(done)


def reminder_policy(text: str | None) -> tuple[timedelta, ...]:
    """IMBOT_PATHWAY_REMIND: durations separated by commas (``1d,2d``); empty for no reminders."""
    if text is None:
        return REMIND_AFTER
    return tuple(parse_duration(part, "IMBOT_PATHWAY_REMIND") for part in text.split(",") if part.strip())


def _problem(item: Item, exc: ProtocolError) -> str:
    """Which field is wrong, by the label she saw."""
    name = (exc.field or "").removeprefix("values.")
    label = next((f.label for f in item.fields if f.name == name), "")
    return texts.FIELD_WRONG.format(label=label) if label else texts.FORM_WRONG


def _day(text: str) -> date:
    day = parse_day(text)
    if day is None:
        raise CommandError(texts.BAD_DAY)
    return day
