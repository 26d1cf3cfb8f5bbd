"""The pathway bot (issue 6): education pathways and treatment-item notices, as a protocol client.

Its work is durable jobs (``work.py``) scheduled from what the hospital system says (``intake.py``);
its commands let a patient ask where she stands (``/progress``, in her service conversation) and let
staff stand in for the hospital system (``/enroll``, ``/date``) or look a patient up (``/status``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime

from bots.framework import Args, Bot, Command, CommandError, Context, Kind, Param
from bots.framework.jobs import Handler
from bots.framework.outbox import Outbox
from bots.pathway import texts
from bots.pathway.definition import PROCEDURES, shipped
from bots.pathway.intake import take
from bots.pathway.render import progress_text
from bots.pathway.schedule import ZONE, position
from bots.pathway.store import PathwayStore
from bots.pathway.work import Work


def shanghai_now() -> datetime:
    return datetime.now(ZONE)


class PathwayBot(Bot):
    name = "pathway"
    title = texts.TITLE
    description = texts.DESCRIPTION
    migrations = "bots.pathway.migrations"

    def __init__(self, clock: Callable[[], datetime] = shanghai_now) -> None:
        super().__init__()
        self.clock = clock
        self._published = False

    async def _store(self, ctx: Context) -> PathwayStore:
        """The bot's store, with the pathways this install ships published (once per process; a no-op after)."""
        store = PathwayStore(ctx.outbox.state)
        if not self._published:
            for pathway in shipped():
                await store.publish(pathway)
            self._published = True
        return store

    def commands(self) -> list[Command]:
        patient = Param("患者", texts.PATIENT)
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
        ]

    def jobs(self, outbox: Outbox) -> Mapping[str, Handler]:
        return Work(outbox).handlers()

    async def progress(self, ctx: Context, args: Args) -> None:
        store = await self._store(ctx)
        patient = await store.patient_in(ctx.conv)
        await ctx.reply(await self._progress_of(store, patient))

    async def status(self, ctx: Context, args: Args) -> None:
        await ctx.reply(await self._progress_of(await self._store(ctx), str(args["患者"])))

    async def enroll(self, ctx: Context, args: Args) -> None:
        day = _day(str(args["日期"])) if args["日期"] else self.clock().date()
        await self._event(ctx, str(args["患者"]), texts.ENROLLED, type="cycle_started", pathway=args["路径"],
                          day=day.isoformat())

    async def date(self, ctx: Context, args: Args) -> None:
        day = _day(str(args["日期"]))
        await self._event(ctx, str(args["患者"]), texts.DATED, type="procedure_dated", procedure=args["手术"],
                          day=day.isoformat())

    async def _event(self, ctx: Context, patient: str, done: str, **event: object) -> None:
        """Staff standing in for the hospital system: the same path as its events, recorded as from ``staff``."""
        event |= {"id": f"{ctx.conv}:{ctx.message.seq}", "patient": {"username": patient}}
        outcome = await take(await self._store(ctx), "staff", json.dumps(event).encode(), self.clock())
        if outcome.status == "rejected":
            await ctx.reply(texts.REFUSED.format(error=outcome.error))
            return
        await ctx.reply(done.format(
            patient=patient, pathway=event.get("pathway", ""), day=event["day"],
            procedure=texts.PROCEDURE_NAMES.get(str(event.get("procedure")), "")))

    async def _progress_of(self, store: PathwayStore, patient: str | None) -> str:
        cycle = None if patient is None else await store.open_cycle(patient)
        if cycle is None:
            return progress_text(None, None)
        return progress_text(cycle.cycle, position(cycle.cycle, self.clock()))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(texts.BAD_DAY) from None
