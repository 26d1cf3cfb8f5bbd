"""The pathway bot (issue 6): education pathways and treatment-item notices, as a protocol client.

Its work is durable jobs (``work.py``) scheduled from what the hospital system says (``intake.py``);
its commands let a patient ask where she stands (``/progress``, in her service conversation) and let
staff stand in for the hospital system (``/enroll``, ``/date``) or look a patient up (``/status``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime

import trio

from bots.framework import Args, Bot, Command, CommandError, Context, Kind, Param
from bots.framework.channels import ChannelConfigError
from bots.framework.jobs import Handler
from bots.framework.outbox import Outbox
from bots.pathway import texts
from bots.pathway.definition import PROCEDURES
from bots.pathway.feed import follow
from bots.pathway.intake import resume, take
from bots.pathway.render import progress_text
from bots.pathway.schedule import ZONE, position
from bots.pathway.store import PathwayStore
from bots.pathway.work import Work
from integrations.his.client import HisClient, connect

log = logging.getLogger(__name__)


def shanghai_now() -> datetime:
    return datetime.now(ZONE)


class PathwayBot(Bot):
    name = "pathway"
    title = texts.TITLE
    description = texts.DESCRIPTION
    migrations = "bots.pathway.migrations"

    def __init__(self, clock: Callable[[], datetime] = shanghai_now, env: Mapping[str, str] | None = None) -> None:
        """``env``: the configuration (``os.environ`` by default): IMBOT_HIS_URL and IMBOT_HIS_KEY to follow the
        hospital system's feed (docs/integrations/his.md)."""
        super().__init__()
        self.clock = clock
        self.env = os.environ if env is None else env
        self._published = False

    async def _store(self, ctx: Context) -> PathwayStore:
        """The bot's store, with the pathways this install ships published (once per process; a no-op after)."""
        store = PathwayStore(ctx.outbox.state)
        if not self._published:
            await store.publish_shipped()
            self._published = True
        return store

    async def serve(self, outbox: Outbox) -> None:
        """Publish the shipped pathways, act on events stored before a stop, then follow the HIS feed if configured."""
        store = PathwayStore(outbox.state)
        await store.publish_shipped()
        self._published = True
        for outcome in await resume(store, self.clock()):
            log.info("stored event acted on at start", extra={"event": outcome.event, "status": outcome.status})
        async with trio.open_nursery() as nursery:
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
