"""The pathway bot as a running protocol client (EDU-3): staff enroll a patient and date her procedures
by command, her content arrives, and she asks ``/progress`` in her service conversation — the one command a patient
may run; her other commands get the polite staff-only answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import trio

from bots.framework import Backoff, run_bot
from bots.framework.outbox import Outbox
from bots.framework.state import BotState
from bots.pathway import texts
from bots.pathway.bot import PathwayBot
from bots.pathway.events import Patient
from bots.pathway.intake import enroll
from bots.pathway.store import PathwayStore
from clients.python import Client, open_client
from imserver.model import Role
from pgtrio.bridge import open_store
from protocol.clock import HOSPITAL_ZONE
from tests.bots.test_echo import bot_says
from tests.conftest import PASSWORD, Running
from tests.helpers import take
from tests.imserver.test_attachments import SAMPLES

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=HOSPITAL_ZONE)


async def rows(state: BotState, query: str) -> list[Any]:
    async def txn(conn: Any) -> list[Any]:
        return await conn.fetch(query)
    return await state.store.run("test", txn, transaction=False)


@asynccontextmanager
async def running_bot(server: Running, db: str) -> AsyncIterator[Outbox]:
    """The pathway bot as ``imbot run pathway`` runs it (its schema, its outbox, its jobs beside its messages)."""
    await server.user("pathway", Role.BOT, "宣教助手")
    async with open_store(db, min_size=1, max_size=3) as store, trio.open_nursery() as bot:
        state = BotState(store, "pathway", PathwayBot.migrations, clock=lambda: NOW)
        await state.migrate()  # the bot publishes the shipped pathways itself
        outbox = Outbox(state)
        await bot.start(partial(run_bot, PathwayBot(clock=lambda: NOW), server.url, username="pathway",
                                password=PASSWORD, outbox=outbox, backoff=Backoff(first=0.05)))
        yield outbox
        bot.cancel_scope.cancel()


async def answer(client: Client, conv: str, text: str) -> str:
    await client.send(conv, text)
    async for message in client.messages():
        if message.sender.role == "bot" and message.kind == "text" and message.conv.startswith("d:"):
            return message.text
    raise AssertionError("no answer")


async def test_staff_enroll_and_date_and_the_patient_asks_where_she_is(server: Running, db: str) -> None:
    await server.user("dr_li", Role.STAFF, "李医生")
    await server.user("chen", Role.PATIENT, "陈红")
    async with running_bot(server, db) as outbox:
        state = outbox.state
        async with (
            open_client(server.url, username="dr_li", password=PASSWORD) as doctor,
            open_client(server.url, username="chen", password=PASSWORD) as chen,
        ):
            with trio.fail_after(15):
                for command, expected in [
                    ("/enroll chen ivf 2026-12-01", "已为 chen 建立「ivf」周期（2026-12-01）。"),
                    ("/date chen trigger 2026-12-14", "已记录 chen 的夜针日期：2026-12-14。"),
                    ("/date chen trigger 14/12", "日期格式应为 YYYY-MM-DD，例如 2026-12-14。"),
                    ("/date zhao retrieval 2026-12-16",
                     "未能处理：zhao 没有进行中的治疗周期，请先用 /enroll 建立周期。"),
                    ("/enroll 陈红 ivf", "未能处理：患者用户名或日期不正确，请检查后重试。"),  # a name, not a username
                ]:
                    assert await answer(doctor, "u:pathway", command) == expected

                await state.jobs.run_due(PathwayBot().jobs(outbox), now=NOW)  # the file-building content
                content = await take(chen, 5)
                service = content[0].conv
                assert await answer(chen, service, "/progress") == (
                    "您目前处于「试管婴儿」的「建档」阶段。\n"
                    "待您完成：「辅助生殖治疗知情同意书」、「建档基本信息」（在与宣教助手的对话中填写或签署）。\n"
                    "下一步：夜针，日期 2026-12-14。\n需要准备：按医嘱准时注射夜针，注射后保留药盒")
                assert await answer(chen, service, "/enroll chen iui") == (
                    "抱歉，机器人命令仅供医护人员使用。如需帮助，请直接留言，工作人员会尽快回复您。")
        # Every command is audited (DESIGN rule 7): who, what, with which arguments; her refused one is not.
        audit = await rows(state, "select actor_name, action, detail from bot_pathway.audit order by id")
        assert [(r["actor_name"], r["action"]) for r in audit] == [
            ("李医生", "/enroll"), ("李医生", "/date"), ("李医生", "/date"), ("李医生", "/date"), ("李医生", "/enroll"),
            ("陈红", "/progress")]
        assert audit[0]["detail"]["args"] == {"患者": "chen", "路径": "ivf", "日期": "2026-12-01"}


async def test_staff_tag_patients_and_pull_a_class_into_a_prepared_classroom(server: Running, db: str) -> None:
    """EDU-6: content first, then the tagged patients (husbands follow, read-only); the class is picked by tag
    (EDU-5); /daily asks for the summary here (TRT-3). Refusals say what to do."""
    await server.user("nurse_wu", Role.STAFF, "吴护士")
    for name in ("chen", "wang", "zhao"):
        await server.user(name, Role.PATIENT)
    await server.user("li", Role.FAMILY, "李强")
    async with running_bot(server, db) as outbox:
        state = outbox.state
        async with open_client(server.url, username="nurse_wu", password=PASSWORD) as nurse:
            await nurse.request("family_link", patient="chen", family="li", relation="husband")
            with trio.fail_after(20):
                assert await answer(nurse, "u:pathway", "/tag chen 移植课堂") == "已为 chen 添加标签「移植课堂」。"
                assert await answer(nurse, "u:pathway", "/tag chen 移植课堂") == "chen 已有标签「移植课堂」。"
                await answer(nurse, "u:pathway", "/tag wang 移植课堂")
                assert await answer(nurse, "u:pathway", "/untag zhao 移植课堂") == "zhao 没有标签「移植课堂」。"
                assert (await answer(nurse, "u:pathway", "/classroom 移植课堂")).startswith("请在课堂群里发送")

                room = (await nurse.request("group_create", name="移植课堂", members=["pathway"]))["conv"]
                assert (await said_in(nurse, room, "/classroom 移植课堂 ivf.transfer")).startswith(
                    "宣教助手不是本群管理员")
                await nurse.request("group_add", conv=room, user="pathway", role="admin")
                assert await said_in(nurse, room, "/classroom 无此标签") == "没有带标签「无此标签」的患者。"
                nowhere = await said_in(nurse, room, "/classroom 移植课堂 ivf.nowhere")
                assert nowhere.startswith("没有找到课堂内容")
                assert await said_in(nurse, room, "/classroom 移植课堂 ivf.transfer") == (
                    "课堂已准备好：发布内容 2 条，已拉入标签「移植课堂」的患者 2 位（家属只读随入）。")
                members = {m.get("username"): m for m in (await nurse.request("members", conv=room))["members"]}
                assert {"chen", "wang", "li"} <= set(members) and "zhao" not in members
                history = (await nurse.request("history", conv=room, limit=50))["messages"]
                posted = [m for m in history if m["sender"]["role"] == "bot"
                          and (m["kind"] == "article" or m["text"].startswith("【胚胎移植须知】"))]
                assert len(posted) == 2

                assert await said_in(nurse, room, "/daily") == "好的，每天 07:30 会在这里发送前一天的宣教日报。"
                assert await PathwayStore(state).summary_targets() == [room]
                assert await said_in(nurse, room, "/daily off") == "已停止在这里发送宣教日报。"
                assert await PathwayStore(state).summary_targets() == []


async def said_in(client: Client, conv: str, text: str) -> str:
    """The bot's answer in a group."""
    await client.send(conv, text)
    async for message in client.messages():
        if message.sender.role == "bot" and message.kind == "text" and message.conv == conv \
                and not message.text.startswith("【"):
            return message.text
    raise AssertionError("no answer")


async def test_staff_edit_a_pathway_and_only_new_cycles_get_the_new_version(server: Running, db: str) -> None:
    """EDU-1: staff look a pathway up and edit it by command; each edit is a new version; a cycle under way keeps
    the version it started with, so what she receives does not change under her."""
    await server.user("nurse_wu", Role.STAFF, "吴护士")
    await server.user("chen", Role.PATIENT)
    await server.user("wang", Role.PATIENT)
    async with running_bot(server, db) as outbox:
        state = outbox.state
        async with (
            open_client(server.url, username="nurse_wu", password=PASSWORD) as nurse,
            open_client(server.url, username="chen", password=PASSWORD) as chen,
            open_client(server.url, username="wang", password=PASSWORD) as wang,
        ):
            with trio.fail_after(20):
                await answer(nurse, "u:pathway", "/enroll chen ivf 2026-12-10")  # before the edit: version 2
                listed = await answer(nurse, "u:pathway", "/pathways")
                assert "试管婴儿（ivf）第2版（系统发布）：建档、夜针、取卵、移植、妊娠、B超" in listed
                node = await answer(nurse, "u:pathway", "/pathway ivf filing")
                assert node.splitlines()[:3] == [
                    "试管婴儿·建档（ivf.filing）：建档当天，提前0天 09:00 推送；群：试管婴儿·建档群",
                    "· welcome  文本「欢迎入群」", "· flow  文本「建档就诊流程」"]
                for command, expected in [
                    ("/edit ivf.filing.flow 请夫妻双方带身份证到一楼服务台。",
                     texts.EDITED.format(pathway="试管婴儿", version=3)),
                    ("/additem ivf.filing 停车 医院地下停车场入口在东门。",
                     "已在「建档」末尾添加条目 t1，并发布「试管婴儿」第4版。"),
                    ("/timing ivf.filing 0 25:00", "时间格式应为 HH:MM，例如 09:00。"),
                    ("/edit ivf.filing.nothing x", "节点「建档」没有条目「nothing」。"),
                    ("/delitem ivf.filing", texts.WHERE_ITEM),
                ]:
                    assert await answer(nurse, "u:pathway", command) == expected
                assert "第4版（医护修改）" in await answer(nurse, "u:pathway", "/pathways")
                await answer(nurse, "u:pathway", "/enroll wang ivf 2026-12-10")  # after: version 4

                later = datetime(2026, 12, 10, 9, 0, tzinfo=HOSPITAL_ZONE)
                await state.jobs.run_due(PathwayBot().jobs(outbox), now=later)
                hers = [m.text for m in await take(chen, 5) if m.kind == "text"]
                theirs = [m.text for m in await take(wang, 6) if m.kind == "text"]
                assert hers[1].startswith("【建档就诊流程】\n建档流程：")
                assert theirs[1] == "【建档就诊流程】\n请夫妻双方带身份证到一楼服务台。"
                assert theirs[-1] == "【停车】\n医院地下停车场入口在东门。"


async def test_a_restarted_bot_acts_on_what_it_stored_before_stopping(server: Running, db: str) -> None:
    """EDU-4, DESIGN rule 8, through the real runner: the bot stored a hospital event and stopped before acting on it;
    started again, it acts on it (Bot.serve) and its jobs runner sends her content, once."""
    await server.user("chen", Role.PATIENT, "陈红")
    yesterday = (NOW - timedelta(days=1)).date()  # the jobs runner goes by the bot's clock
    body = json.dumps({"type": "cycle_started", "id": "his-1", "patient": {"username": "chen"}, "pathway": "ivf",
                       "day": yesterday.isoformat()}).encode()
    async with open_store(db, min_size=1, max_size=2) as pool:
        state = BotState(pool, "pathway", PathwayBot.migrations)
        await state.migrate()
        store = PathwayStore(state)
        await store.publish_shipped()
        assert await store.receive("his", "his-1", "cycle_started", body) is not None  # then it stopped
    async with (
        running_bot(server, db) as outbox,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        content = await take(chen, 5, seconds=15)
        assert [m.kind for m in content] == ["text", "text", "article", "signature_request", "form"]
        assert await PathwayStore(outbox.state).event("his", "his-1") == {
            "id": 1, "type": "cycle_started", "status": "applied", "error": None}
        node_job = f"node:1:filing:{yesterday}:0"
        with trio.fail_after(15):  # once her node's job is done, she has these five and nothing more
            while (await outbox.state.jobs.state(node_job) or {}).get("state") != "completed":  # noqa: ASYNC110
                await trio.sleep(0.05)
        history = (await chen.request("history", conv=content[0].conv, limit=50))["messages"]
        assert [m["seq"] for m in history] == [m.seq for m in content]


async def test_a_form_sent_again_corrects_it_and_a_consent_stays_signed_the_first_time(
    server: Running, db: str,
) -> None:
    """EDU-2, EDU-5: she fills in the file-building form, then sends it again corrected: the newer answer is kept.
    She signs the consent, then signs again: the first signature stands, and she is told when she signed."""
    await server.user("chen", Role.PATIENT, "陈红")
    yesterday = (NOW - timedelta(days=1)).date()
    async with (
        running_bot(server, db) as outbox,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        store = PathwayStore(outbox.state)
        await enroll(store, "staff", "e1", Patient(username="chen"), "ivf", yesterday, NOW)
        content = await take(chen, 5, seconds=15)
        consent, form = content[3], content[4]
        for weight in (52, 53):
            values = {"height": 160, "weight": weight, "last_period": "2026-11-20", "allergy": "无"}
            await chen.send(form.conv, kind="form_reply", body={"form": form.seq, "values": values})
        thanks, corrected = await bot_says(chen, 2)
        assert (thanks.text, corrected.text) == ("已收到您填写的「建档基本信息」，谢谢！",
                                                 "已按您新提交的内容更新「建档基本信息」，谢谢！")
        images = [await chen.upload(SAMPLES["image/png"], "image/png", f"signature-{n}.png") for n in (1, 2)]
        for image in images:
            await chen.send(consent.conv, kind="signature", body={"request": consent.seq, "image": image})
        signed, again = await bot_says(chen, 2)
        first = signed.text.split("（")[1].split("）")[0]
        assert again.text == texts.SIGNED_BEFORE.format(time=first, title="辅助生殖治疗知情同意书")
        results = {r["item"]: r["result"] for r in await rows(
            outbox.state, "select item, result from bot_pathway.deliveries where result is not null")}
        assert results["basic"]["values"]["weight"] == 53
        assert results["consent"]["image"]["id"] == images[0].id


async def test_progress_asked_in_her_node_group_is_answered_for_her_eyes_only(server: Running, db: str) -> None:
    """EDU-3, IM-5: in the file-building group she shares with another patient, her /progress answer names her
    forms and dates; the other patient never sees it."""
    await server.user("chen", Role.PATIENT, "陈红")
    await server.user("wang", Role.PATIENT, "王丽")
    yesterday = (NOW - timedelta(days=1)).date()
    async with (
        running_bot(server, db) as outbox,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
        open_client(server.url, username="wang", password=PASSWORD) as wang,
    ):
        store = PathwayStore(outbox.state)
        for patient in ("chen", "wang"):
            await enroll(store, "staff", f"e-{patient}", Patient(username=patient), "ivf", yesterday, NOW)
        await take(chen, 5, seconds=15)
        with trio.fail_after(15):  # both moved into the file-building group
            while None in (groups := {await store.current_group(p) for p in ("chen", "wang")}):  # noqa: ASYNC110
                await trio.sleep(0.05)
        (group,) = groups  # the same for both
        await chen.send(group, "/progress")
        (answer_,) = await bot_says(chen, 1)
        assert answer_.conv == group and answer_.text.startswith("您目前处于「试管婴儿」的「建档」阶段。")
        seen = (await wang.request("history", conv=group, limit=50))["messages"]
        assert seen and not [m for m in seen if m["sender"]["role"] == "bot"]
