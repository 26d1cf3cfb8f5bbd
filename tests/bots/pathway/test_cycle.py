"""EDU-1, EDU-3, TRT-1, TRT-2: an IVF cycle through all six nodes, time driven by ``run_due(now=...)`` (nothing sleeps).

What a patient, her husband and the staff would notice (EDU-2..EDU-6, IM-2, TRT-1..TRT-3):

- each node's content arrives in her service conversation the day before the step at 09:00, and she moves from
  node group to node group with her husband following, read-only;
- the 4 trigger-shot and retrieval items and the 1 fresh-transfer item arrive by their dates in the app, by
  WeChat and by SMS;
- what she has not read (forms not filled in, a consent not signed) is reminded, twice at most; what she has
  read or done is not; a wrong form value is answered with the field she got wrong;
- the bot restarts mid-cycle, once cleanly and once with its connection lost in the middle of a job, and she
  receives nothing twice and misses nothing;
- staff get the daily summary, and the statistics views count it all.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import msgspec
import pytest
import trio

from bots.framework.bot import Context, dispatch
from bots.framework.channels import open_channels
from bots.framework.outbox import Outbox
from bots.framework.runner import job_handlers
from bots.framework.state import BotState
from bots.pathway import texts
from bots.pathway.bot import PathwayBot
from bots.pathway.definition import shipped
from bots.pathway.intake import take as take_event
from bots.pathway.store import PathwayStore
from bots.pathway.work import schedule_summary
from clients.python import Client, ClientError, ConnectionLost, open_client
from imserver.model import Role
from launcher import demo
from pgtrio.bridge import open_store
from protocol import Message
from protocol.clock import HOSPITAL_ZONE
from protocol.frames import SendAnswer
from tests.bots.test_echo import bot_says
from tests.conftest import PASSWORD, Running
from tests.imserver.test_attachments import SAMPLES
from tests.simulators import received, start_simulator

IVF = next(p for p in shipped() if p.key == "ivf")
CHEN = {"username": "chen", "his_id": "P001", "phone": "13800138000", "openid": "o-chen"}
CREDENTIALS = {"app_id": demo.DEMO_WECHAT_APP_ID, "secret": demo.DEMO_OUTSIDE_KEY, "api_key": demo.DEMO_OUTSIDE_KEY}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=HOSPITAL_ZONE)


@dataclass
class Process:
    """One run of the pathway bot: its own store, channels, connection and clock (what ``imbot run`` makes)."""

    bot: PathwayBot
    outbox: Outbox
    client: Client
    store: PathwayStore
    now: datetime

    async def event(self, id: str, **fields: Any) -> None:
        body = json.dumps({"id": id, "patient": CHEN, **fields}).encode()
        assert (await take_event(self.store, "his", body, self.now)).status == "applied"

    async def run_due(self, when: str) -> int:
        self.now = at(when)
        return await self.outbox.state.jobs.run_due(job_handlers(self.bot, self.outbox), now=self.now)

    async def handle(self, kind: str) -> None:
        """Handle the next message of ``kind`` the bot receives, as its runner would."""
        with trio.fail_after(10):
            async for message in self.client.messages():
                if message.kind == kind and message.sender.role != "bot":
                    await dispatch(self.bot, Context(self.client, self.bot, message, self.outbox))
                    return


class DropsAfter:
    """The bot's connection, lost right after the server stored its next send but before the answer came back (the
    worst moment: the job cannot know it was done); after that, lost before anything is sent."""

    def __init__(self, client: Client, sends: int) -> None:
        self.client, self.sends = client, sends

    async def send(self, *args: Any, **kwargs: Any) -> SendAnswer:
        self.sends -= 1
        if self.sends < -1:
            raise ConnectionLost("connection lost (test)")
        answer = await self.client.send(*args, **kwargs)
        if self.sends == -1:
            raise ConnectionLost("connection lost before the answer (test)")
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@asynccontextmanager
async def pathway_process(server: Running, db: str, urls: dict[str, str], now: str,
                          drops_after: int | None = None) -> AsyncIterator[Process]:
    async with (
        open_store(db, min_size=1, max_size=3) as pool,
        open_channels(demo.outside_env(urls)) as channels,
        open_client(server.url, username="pathway", password=PASSWORD) as client,
    ):
        state = BotState(pool, "pathway", PathwayBot.migrations)
        await state.migrate()
        process = Process(PathwayBot(env={}), Outbox(state, channels), client, PathwayStore(state), at(now))
        process.bot.clock = lambda: process.now
        await process.store.publish_shipped()
        connection = client if drops_after is None else cast(Client, DropsAfter(client, drops_after))
        with process.outbox.connected(connection):
            yield process


async def service_messages(chen: Client, conv: str) -> list[Message]:
    """Everything in her service conversation, oldest first (the bot's and hers)."""
    answer = await chen.request("history", conv=conv, limit=200)
    return [msgspec.convert(m, Message) for m in answer["messages"]]


async def read_all(client: Client, conv: str) -> None:
    await client.request("read", conv=conv, seq=2**31)  # clipped to the last message (SPEC.md §5.4)


async def groups(client: Client) -> set[str]:
    return {c["name"] for c in (await client.request("convs"))["convs"] if c["kind"] == "group"}


async def rows(process: Process, view: str) -> list[dict[str, Any]]:
    async def txn(conn: Any) -> list[Any]:
        return await conn.fetch(f"select * from bot_pathway.{view}")
    return [dict(r) for r in await process.store.state.store.run("view", txn, transaction=False)]


async def test_an_ivf_cycle_through_all_six_nodes(server: Running, db: str, nursery: trio.Nursery) -> None:
    await server.user("pathway", Role.BOT, "宣教助手")
    await server.user("nurse_wu", Role.STAFF, "吴护士")
    await server.user("chen", Role.PATIENT, "陈红")
    await server.user("li", Role.FAMILY, "李强")
    urls = {system: await start_simulator(nursery, system, **CREDENTIALS) for system in ("wechat", "sms")}
    async with (
        open_client(server.url, username="chen", password=PASSWORD) as chen,
        open_client(server.url, username="li", password=PASSWORD) as li,
        open_client(server.url, username="nurse_wu", password=PASSWORD) as nurse,
    ):
        await nurse.request("family_link", patient="chen", family="li", relation="husband")
        station = (await nurse.request("group_create", name="护士站", members=["pathway"]))["conv"]

        # 建档 (file-building): the cycle starts; content the same morning; staff asked for the daily summary.
        async with pathway_process(server, db, urls, "2026-12-01 08:00") as bot:
            await bot.event("e1", type="cycle_started", pathway="ivf", day="2026-12-01")
            await bot.store.set_summary_target(station, "u-nurse", True)
            await schedule_summary(bot.store, at("2026-12-01 08:00").date())
            await bot.run_due("2026-12-01 09:00")
            filing = await bot_says(chen, 5)
            assert [m.kind for m in filing] == ["text", "text", "article", "signature_request", "form"]
            conv = filing[0].conv
            assert await groups(chen) == await groups(li) == {"试管婴儿·建档群"}
            await chen.request("read", conv=conv, seq=filing[1].seq)  # she reads the welcome and the visit flow

            assert await bot.run_due("2026-12-02 07:29") == 0  # not in the evening: the day is not over
            await bot.run_due("2026-12-02 07:30")  # the summary of the 1st, the next morning
            (summary,) = await bot_says(nurse, 1)
            assert summary.conv == station
            assert summary.text == "宣教日报 2026-12-01\n试管婴儿·建档：发送 5，已读 2，完成 0，提醒 0"

            # The next morning: the article, the consent and the form are reminded; what she read is not.
            await bot.run_due("2026-12-02 09:00")
            reminders = await bot_says(chen, 3)
            assert sorted(m.text for m in reminders) == sorted([
                texts.REMIND_READ.format(title="试管婴儿治疗全流程介绍"),
                texts.REMIND_SIGN.format(title="辅助生殖治疗知情同意书"),
                texts.REMIND_FORM.format(title="建档基本信息")])

            # She fills in the form (a wrong value first) and signs the consent.
            form, consent = filing[4], filing[3]
            bot.now = at("2026-12-02 10:00")
            values = {"height": "一米六", "weight": 52, "last_period": "2026-11-20", "allergy": "无"}
            await chen.send(conv, kind="form_reply", body={"form": form.seq, "values": values})
            await bot.handle("form_reply")
            (fix,) = await bot_says(chen, 1)
            assert fix.text == "「建档基本信息」填写有误：「身高（cm）」填写不正确。请修改后重新提交。"
            await chen.send(conv, kind="form_reply", body={"form": form.seq, "values": values | {"height": 160}})
            await bot.handle("form_reply")
            image = await chen.upload(SAMPLES["image/png"], "image/png", "signature.png")
            await chen.send(conv, kind="signature", body={"request": consent.seq, "image": image})
            await bot.handle("signature")
            thanks, signed = await bot_says(chen, 2)
            assert thanks.text == "已收到您填写的「建档基本信息」，谢谢！"
            signed_at = datetime.fromtimestamp(signed.ts / 1000, HOSPITAL_ZONE)  # (her message was stored just before)
            assert signed.text == f"已收到您对「辅助生殖治疗知情同意书」的签名（{signed_at:%Y-%m-%d %H:%M}），谢谢！"
            await read_all(chen, conv)

            await bot.run_due("2026-12-04 09:00")  # the second reminders: nothing left to remind
            cycle = await bot.store.open_cycle("chen")
            assert cycle is not None
            filing_rows = {d["item"]: d for d in await bot.store.deliveries(cycle.id) if d["node"] == "filing"}
            assert {k: d["reminders"] for k, d in filing_rows.items()} == {
                "welcome": 0, "flow": 0, "intro": 1, "consent": 1, "basic": 1}
            assert filing_rows["basic"]["completed_at"] and filing_rows["consent"]["completed_at"]

            # 夜针 and 取卵 dated by the hospital system; the trigger shot's content and item the day before.
            await bot.event("e2", type="procedure_dated", procedure="trigger", day="2026-12-14")
            await bot.event("e3", type="procedure_dated", procedure="retrieval", day="2026-12-16")
            await bot.run_due("2026-12-13 09:00")
            trigger = await bot_says(chen, 3)
            assert sorted(m.kind for m in trigger) == ["text", "treatment_items", "video"]
            assert await groups(chen) == await groups(li) == {"试管婴儿·夜针群"}
            night = next(c["conv"] for c in (await li.request("convs"))["convs"] if c["kind"] == "group")
            with pytest.raises(ClientError) as refused:
                await li.send(night, "我是家属，想问一下")  # the husband reads, he does not speak
            assert refused.value.code == "family_read_only"
            await read_all(chen, conv)

        # A clean restart: a new process picks up where the old one stopped.
        async with pathway_process(server, db, urls, "2026-12-15 08:00") as bot:
            await bot.run_due("2026-12-15 09:00")
            retrieval = await bot_says(chen, 3)
            assert sorted(m.kind for m in retrieval) == ["image_group", "text", "treatment_items"]
            items = next(m for m in retrieval if m.kind == "treatment_items")
            assert items.body is not None and len(items.body["items"]) == 3  # 1 + 3 = the 4 items of TRT-1
            assert await groups(chen) == await groups(li) == {"试管婴儿·取卵群"}
            # She does not read these: they are reminded the next day; two days after that the transfer's content
            # has come, and they are not worth reminding any more.
            await bot.run_due("2026-12-16 09:00")
            assert len(await bot_says(chen, 3)) == 3
            await bot.event("e4", type="procedure_dated", procedure="fresh_transfer", day="2026-12-19")

        # The connection is lost in the middle of the transfer-day jobs; the restarted bot finishes them.
        async with pathway_process(server, db, urls, "2026-12-18 08:00", drops_after=1) as bot:
            await bot.run_due("2026-12-18 09:00")
        async with pathway_process(server, db, urls, "2026-12-18 09:05") as bot:
            await bot.run_due("2026-12-18 09:05")  # the failed jobs' backoff is over
            transfer = await bot_says(chen, 3)  # the retrieval's content and notice are not reminded again
            assert [m.text for m in transfer if m.kind == "text"] == [
                texts.ITEM_TEXT.format(title="胚胎移植须知", text=IVF.node("transfer").content[0].text)]
            assert await groups(chen) == await groups(li) == {"试管婴儿·移植群"}
            await bot.event("e5", type="orders_written", orders=[{"category": "medication", "code": "黄体酮注射液"}])
            await bot.run_due("2026-12-18 09:06")  # the order's education at once (EDU-4)
            (luteal,) = await bot_says(chen, 1)
            assert luteal.text.startswith("【黄体支持用药须知】")
            await read_all(chen, conv)
            await bot.run_due("2026-12-22 09:00")  # read: no reminders; and no third reminder of anything

            await bot.run_due("2027-01-01 09:00")  # 妊娠: transfer + 14 days
            assert [m.kind for m in await bot_says(chen, 2)] == ["text", "form"]
            assert await groups(chen) == await groups(li) == {"试管婴儿·验孕群"}
            await read_all(chen, conv)  # read, but the result form not filled in: reminded
            await bot.run_due("2027-01-15 09:00")  # B超: transfer + 28 days
            assert sorted(m.text for m in await bot_says(chen, 2)) == sorted([
                texts.REMIND_FORM.format(title="验孕结果"),
                texts.ITEM_TEXT.format(title="B超检查须知", text=IVF.node("ultrasound").content[0].text)])
            assert await groups(chen) == await groups(li) == {"试管婴儿·B超群"}
            await read_all(chen, conv)
            # A bot that was down does not catch up with a burst: the next reminder is two days after this one.
            await bot.run_due("2027-01-16 09:00")
            await bot.run_due("2027-01-17 09:00")
            (again,) = await bot_says(chen, 1)
            assert again.text == texts.REMIND_FORM.format(title="验孕结果")
            await read_all(chen, conv)
            await bot.run_due("2027-01-30 09:00")

            # Nothing twice, nothing lost: every message the bot sent her is one of the 18 items, the 8 reminders
            # or its 3 answers to her form and signature.
            sent = [m for m in await service_messages(chen, conv) if m.sender.role == "bot"]
            assert len(sent) == 18 + 8 + 3
            assert len([m for m in sent if m.kind == "treatment_items"]) == 3

            # By WeChat and SMS: the three procedures, each once.
            sms = [m for m in (await received(urls["sms"]))["messages"]]
            assert [m["to"] for m in sms] == ["13800138000"] * 3
            assert ["夜针" in sms[0]["text"], "取卵" in sms[1]["text"], "新鲜胚胎移植" in sms[2]["text"]] == [True] * 3
            assert [m["touser"] for m in (await received(urls["wechat"]))["messages"]] == ["o-chen"] * 3

            # The statistics views count it all.
            by_node = {r["node"]: r for r in await rows(bot, "stats_by_node")}
            assert {n: (r["sent"], r["read"], r["completed"], r["reminded"]) for n, r in by_node.items()} == {
                "filing": (5, 5, 2, 3), "trigger": (3, 3, 0, 0), "retrieval": (3, 3, 0, 3), "transfer": (3, 3, 0, 0),
                "orders": (1, 1, 0, 0), "pregnancy": (2, 2, 0, 1), "ultrasound": (1, 1, 0, 0)}
            (pathway,) = await rows(bot, "stats_by_pathway")
            assert (pathway["pathway"], pathway["version"], pathway["sent"], pathway["patients"]) == (
                "ivf", IVF.version, 18, 1)
            retrieval_items = {r["item"]: r["reminded"] for r in await rows(bot, "stats_by_item")
                               if r["node"] == "retrieval"}
            assert retrieval_items == {"flow": 1, "map": 1, "treatment:retrieval": 1}
            assert sum(r["reminders"] for r in await rows(bot, "stats_by_day")) == 3 + 3 + 2
            assert sum(r["reminders"] for r in await rows(bot, "reminders_by_day")) == 3 + 3 + 2
            reminded = [d for d in await bot.store.deliveries(cycle.id) if d["node"] == "retrieval"]
            assert [d["reminders"] for d in reminded] == [1, 1, 1]  # none once the next node's content came
            await bot.store.tag("chen", "首次周期", True)
            assert sum(r["sent"] for r in await rows(bot, "stats_by_tag") if r["tag"] == "首次周期") == 18
