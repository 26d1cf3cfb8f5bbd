"""The notification outbox over a real server, real SDK clients and simulators on real sockets
(DESIGN rules 8 and 9; FEE-3 fee reminders, TRT-2 treatment notices, SVC-2 WeChat, MSG-1 notices).

Time is driven by ``run_due(now=...)``: days pass in seconds, nothing sleeps for a due time."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import trio

from bots.framework import Args, Bot, Command, Context, Param, run_bot
from bots.framework.channels import Note, Recipient, open_channels
from bots.framework.escalation import Policy
from bots.framework.outbox import STEP, Outbox
from bots.framework.state import BotState
from clients.python import open_client
from imserver.model import Role
from launcher import demo
from pgtrio.bridge import open_store
from protocol.clock import Clock
from tests.conftest import PASSWORD, Running
from tests.helpers import ManualClock, take
from tests.simulators import faults, received, start_simulator

T0 = datetime(2030, 3, 1, 1, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ESCALATION = Policy.parse([
    {"channel": "app"}, {"channel": "wechat", "after": "1d"}, {"channel": "sms", "after": "2d"},
    {"channel": "phone", "after": "3d"},
])
CHEN = Recipient("chen", phone="13800138000", openid="o-chen")
FEE = Note("冷冻胚胎保管费到期提醒", "您的冷冻胚胎保管费将于3月31日到期，请及时缴费。", "app://fees/42")
CREDENTIALS = {"app_id": demo.DEMO_WECHAT_APP_ID, "secret": demo.DEMO_OUTSIDE_KEY, "api_key": demo.DEMO_OUTSIDE_KEY}
"""What the simulators accept, here and in the demo (``imdemo``)."""


@asynccontextmanager
async def bot_outbox(
    server: Running, db: str, urls: dict[str, str], clock: Clock | None = None,
) -> AsyncIterator[Outbox]:
    """One bot process's outbox: its own store, channels and connection (as ``imbot run-due`` makes them); its
    clock stands at T0 unless given."""
    async with (
        open_store(db, min_size=1, max_size=3) as store,
        open_channels(demo.outside_env(urls)) as channels,
        open_client(server.url, username="clinic", password=PASSWORD) as client,
    ):
        state = BotState(store, "clinic", clock=clock or ManualClock(T0))
        await state.migrate()
        outbox = Outbox(state, channels)
        with outbox.connected(client):
            yield outbox


async def run_due(outbox: Outbox, when: datetime) -> int:
    return await outbox.state.jobs.run_due(outbox.handlers(), now=when)


async def accounts(server: Running) -> None:
    await server.user("clinic", Role.BOT, "生殖中心提醒")
    await server.user("chen", Role.PATIENT, "陈红")


async def simulators(nursery: trio.Nursery, *systems: str) -> dict[str, str]:
    return {system: await start_simulator(nursery, system, **CREDENTIALS) for system in systems}


@pytest.mark.slow
async def test_an_escalation_stops_at_the_step_where_the_patient_reads_the_app_notice(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    """FEE-3, TRT-2: app → wechat → sms → phone; she reads after the WeChat step, so no SMS and no call.
    The simulators run as processes of their own, as the demo launcher starts them."""
    await accounts(server)
    urls = {system: await demo.start_simulator(nursery, system) for system in ("wechat", "sms", "phone")}
    async with (
        bot_outbox(server, db, urls) as outbox,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        assert await outbox.notify("fee:42:2030-03", CHEN, FEE, policy=ESCALATION, priority=5, now=T0)
        assert await run_due(outbox, T0) == 1
        (notice,) = await take(chen, 1)
        assert (notice.kind, notice.sender.role) == ("notice", "bot")
        assert notice.body == {"title": FEE.title, "content": FEE.content,
                               "action": {"label": "查看详情", "target": "app://fees/42"}}

        assert await run_due(outbox, T0 + DAY) == 1  # unread after a day: WeChat
        (template,) = (await received(urls["wechat"]))["messages"]
        assert (template["touser"], template["data"]["first"]["value"]) == ("o-chen", FEE.title)

        await chen.read(notice.conv, notice.seq)  # she opens the app
        await run_due(outbox, T0 + 2 * DAY)
        await run_due(outbox, T0 + 3 * DAY)
        history = await outbox.history("fee:42:2030-03")
    assert (await received(urls["sms"]))["requests"] == []
    assert (await received(urls["phone"]))["requests"] == []
    assert history is not None
    assert [(a.step, a.channel, a.status) for a in history.attempts] == [
        (0, "app", "sent"), (1, "wechat", "sent"), (0, "app", "read")]
    assert history.attempts[2].at == T0 + 2 * DAY and history.attempts[0].seq == notice.seq
    assert (history.settled, history.settled_at) == ("read", T0 + 2 * DAY)
    assert history.steps == ["completed", "completed", "completed", "cancelled"]


async def test_an_unread_notice_goes_through_every_channel_with_delivery_reports(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    await accounts(server)
    urls = await simulators(nursery, "wechat", "sms", "phone")
    await faults(urls["phone"], outcome="no_answer")
    async with bot_outbox(server, db, urls) as outbox:
        visit = Note("复诊提醒", "请于3月5日上午到生殖中心复诊。")
        await outbox.notify("visit:7", CHEN, visit, policy=ESCALATION, now=T0)
        for day in range(5):
            await run_due(outbox, T0 + day * DAY)
        history = await outbox.history("visit:7")
    assert history is not None and history.settled is None
    assert [(a.channel, a.status, a.detail) for a in sorted(history.attempts, key=lambda a: a.step)] == [
        ("app", "sent", None), ("wechat", "sent", None), ("sms", "sent", None), ("sms", "delivered", "delivered"),
        ("phone", "sent", None), ("phone", "failed", "no_answer"),
    ]
    (sms,) = (await received(urls["sms"]))["messages"]
    assert sms["text"] == "复诊提醒：请于3月5日上午到生殖中心复诊。"
    (call,) = (await received(urls["phone"]))["messages"]
    assert call["text"].endswith("复诊提醒。请于3月5日上午到生殖中心复诊。")


async def test_an_sms_gateway_that_fails_three_times_then_succeeds_delivers_exactly_once(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    """FEE-3: the reminders stop when she pays."""
    await accounts(server)
    urls = await simulators(nursery, "sms")
    await faults(urls["sms"], fail=3, status=503)
    async with bot_outbox(server, db, urls) as outbox:
        await outbox.notify("fee:9", CHEN, FEE, policy=Policy.parse([{"channel": "sms"}]), now=T0)
        await run_due(outbox, T0)
        await run_due(outbox, T0 + DAY)  # the delivery report
        history = await outbox.history("fee:9")
    log = await received(urls["sms"])
    assert [r["status"] for r in log["requests"] if r["path"] == "/sms/send"] == [503, 503, 503, 200]
    assert len(log["messages"]) == 1
    assert history is not None
    assert [(a.status, a.ref) for a in history.attempts] == [("sent", "sms_1"), ("delivered", "sms_1")]


async def test_a_gateway_down_for_longer_is_tried_again_later_and_still_sends_once(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    await accounts(server)
    urls = await simulators(nursery, "sms")
    await faults(urls["sms"], fail=4, status=502)  # all of one step attempt's tries (Retry.attempts)
    async with bot_outbox(server, db, urls) as outbox:
        await outbox.notify("fee:10", CHEN, FEE, policy=Policy.parse([{"channel": "sms"}]), now=T0)
        await run_due(outbox, T0)
        assert (await outbox.state.jobs.state("outbox:fee:10:0") or {})["state"] == "requested"  # to retry
        await run_due(outbox, T0 + timedelta(minutes=1))
        history = await outbox.history("fee:10")
    assert history is not None
    assert [a.status for a in history.attempts] == ["failed", "sent"]
    assert history.attempts[0].detail is not None and "will retry" in history.attempts[0].detail
    assert len((await received(urls["sms"]))["messages"]) == 1


async def test_refusals_and_missing_contacts_are_recorded_failed_and_the_escalation_goes_on(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    await accounts(server)
    urls = await simulators(nursery, "sms")  # WeChat and phone are not configured
    policy = Policy.parse([{"channel": "sms"}, {"channel": "wechat"}, {"channel": "phone"}, {"channel": "app"}])
    async with (
        bot_outbox(server, db, urls) as outbox,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        await outbox.notify("result:3", Recipient("chen", phone="12345"), FEE, policy=policy, now=T0)
        await run_due(outbox, T0 + DAY)
        (notice,) = await take(chen, 1)
        history = await outbox.history("result:3")
        assert await run_due(outbox, T0 + 10 * DAY) == 0  # nothing is retried
    assert history is not None
    attempts = {a.channel: a for a in history.attempts}  # all four were due at once
    assert {c: a.status for c, a in attempts.items()} == {
        "sms": "failed", "wechat": "failed", "phone": "failed", "app": "sent"}
    details = {c: a.detail or "" for c, a in attempts.items()}
    assert "HTTP 400" in details["sms"] and "invalid_number" in details["sms"]
    assert "not configured" in details["wechat"] and "not configured" in details["phone"]
    assert len((await received(urls["sms"]))["requests"]) == 1  # a 4xx is not retried
    assert notice.seq == attempts["app"].seq


async def test_the_same_key_twice_is_one_notification_and_settling_stops_it(server: Running, db: str) -> None:
    await accounts(server)
    policy = Policy.parse([{"channel": "app"}, {"channel": "app", "after": "1d"}])
    async with (
        bot_outbox(server, db, {}) as outbox,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        assert await outbox.notify("fee:1", CHEN, FEE, policy=policy, now=T0)
        assert not await outbox.notify("fee:1", CHEN, Note("别的", "别的内容"), now=T0)  # changes nothing
        await run_due(outbox, T0)
        (notice,) = await take(chen, 1)
        assert await outbox.settle("fee:1", "paid", now=T0 + timedelta(hours=3))  # she paid at the window
        assert not await outbox.settle("fee:1", "paid")
        assert await run_due(outbox, T0 + 2 * DAY) == 0
        history = await outbox.history("fee:1")
        assert await outbox.history("fee:2") is None
    assert notice.body is not None and notice.body["title"] == FEE.title
    assert history is not None
    assert (history.note, history.settled, history.steps) == (FEE, "paid", ["completed", "cancelled"])
    assert [a.status for a in history.attempts] == ["sent"]


async def test_a_restart_mid_escalation_loses_and_repeats_nothing(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    """A bot process stops after the WeChat step; another dies right after sending the SMS, before recording
    it; the next one finishes the escalation. Each channel reached her once."""
    await accounts(server)
    urls = await simulators(nursery, "wechat", "sms", "phone")
    clock = ManualClock(T0)
    async with bot_outbox(server, db, urls, clock) as outbox:
        await outbox.notify("fee:5", CHEN, FEE, policy=ESCALATION, now=T0)
        await run_due(outbox, T0)
        await run_due(outbox, T0 + DAY)
    async with bot_outbox(server, db, urls, clock) as outbox:  # restarted; dies while sending the SMS
        (job,) = await outbox.state.jobs.claim(5, now=T0 + 2 * DAY)
        assert job.kind == STEP
        await outbox.handlers()[STEP](job)  # sent and recorded, but the job is never completed
        clock.advance(timedelta(seconds=outbox.state.jobs.lease_s + 1))  # its lease passes
    async with bot_outbox(server, db, urls, clock) as outbox:  # restarted again
        await run_due(outbox, T0 + 2 * DAY)  # the SMS step again
        await run_due(outbox, T0 + 3 * DAY)
        await run_due(outbox, T0 + 4 * DAY)
        history = await outbox.history("fee:5")
    assert history is not None
    assert [(a.channel, a.status) for a in sorted(history.attempts, key=lambda a: a.step)] == [
        ("app", "sent"), ("wechat", "sent"), ("sms", "sent"), ("sms", "delivered"), ("phone", "sent"),
        ("phone", "delivered")]
    for system in ("wechat", "sms", "phone"):
        log = await received(urls[system])
        assert len(log["messages"]) == 1, system
    sms_sends = [r for r in (await received(urls["sms"]))["requests"] if r["path"] == "/sms/send"]
    assert len(sms_sends) == 2 and sms_sends[0]["key"] == sms_sends[1]["key"]  # sent again, delivered once
    async with open_client(server.url, username="chen", password=PASSWORD) as chen:
        page, _ = await chen.history(history.attempts[0].ref or "")
    assert [m.kind for m in page] == ["notice"]


async def test_two_runners_never_send_a_step_twice(server: Running, db: str, nursery: trio.Nursery) -> None:
    """Two instances of the bot share the outbox's jobs (DESIGN rule 9); each step reaches her once."""
    await accounts(server)
    urls = await simulators(nursery, "sms")
    policy = Policy.parse([{"channel": "app"}, {"channel": "sms"}])
    count = 30
    stopped = trio.Event()

    async def instance(notify: bool, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with bot_outbox(server, db, urls) as outbox:  # a process of its own: store, channels, connection
            for i in range(count if notify else 0):
                await outbox.notify(f"remind:{i}", CHEN, Note(f"提醒{i}", "请按时服药"), policy=policy)
            async with trio.open_nursery() as runner:
                await runner.start(partial(outbox.state.jobs.run, outbox.handlers(), 4, 0.02))
                task_status.started()
                await stopped.wait()
                runner.cancel_scope.cancel()

    async with trio.open_nursery() as instances:
        await instances.start(instance, False)
        await instances.start(instance, True)
        with trio.fail_after(30):
            while len((await received(urls["sms"]))["messages"]) < count:  # noqa: ASYNC110
                await trio.sleep(0.05)
        await trio.sleep(0.3)  # and nothing more happens
        stopped.set()
    assert sorted(m["text"] for m in (await received(urls["sms"]))["messages"]) == sorted(
        f"提醒{i}：请按时服药" for i in range(count))
    async with bot_outbox(server, db, urls) as outbox:
        histories = [await outbox.history(f"remind:{i}") for i in range(count)]
    assert all(h is not None and sorted(a.status for a in h.attempts) == ["sent", "sent"] for h in histories)
    async with open_client(server.url, username="chen", password=PASSWORD) as chen:
        notices = await take(chen, count)
        with trio.move_on_after(0.5):
            extra = await take(chen, 1)
            raise AssertionError(f"a notice came twice: {extra}")
    assert sorted(m.body["title"] for m in notices if m.body) == sorted(f"提醒{i}" for i in range(count))


class ClinicBot(Bot):
    """A bot that notifies through its context: what a real bot's command looks like."""

    name = "clinic"
    title = "生殖中心提醒"
    description = "测试用：给患者发提醒"

    def commands(self) -> list[Command]:
        return [Command("remind", "提醒患者", (Param("患者", "用户名"),), run=self.remind)]

    async def remind(self, ctx: Context, args: Args) -> None:
        patient = str(args["患者"])
        await ctx.outbox.notify(f"remind:{patient}", Recipient(patient), Note("复诊提醒", "明天上午复诊"))
        await ctx.reply("已提醒")


async def test_a_running_bot_notifies_from_a_command_and_its_runner_delivers(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    await accounts(server)
    await server.user("dr_li", Role.STAFF, "李医生")
    async with open_store(db, min_size=1, max_size=3) as store:
        state = BotState(store, "clinic")
        await state.migrate()
        async with trio.open_nursery() as bot:
            await bot.start(partial(run_bot, ClinicBot(), server.url, username="clinic", password=PASSWORD,
                                    outbox=Outbox(state)))
            async with (
                open_client(server.url, username="dr_li", password=PASSWORD) as doctor,
                open_client(server.url, username="chen", password=PASSWORD) as chen,
            ):
                await doctor.send("u:clinic", "/remind chen")
                (notice,) = await take(chen, 1, seconds=15)
            bot.cancel_scope.cancel()
    assert notice.text == "【通知】复诊提醒：明天上午复诊"


@pytest.mark.slow
async def test_imbot_run_due_runs_what_is_due_by_the_given_time(
    server: Running, db: str, nursery: trio.Nursery,
) -> None:
    """The command scripted checks use: ``imbot run-due NAME --now ISO`` (here the echo bot)."""
    await server.user("echo", Role.BOT, "回声机器人")
    await server.user("chen", Role.PATIENT, "陈红")
    urls = await simulators(nursery, "sms")
    async with open_store(db, min_size=1, max_size=2) as store:
        state = BotState(store, "echo")
        await state.migrate()
        await Outbox(state).notify("n1", CHEN, FEE, policy=Policy.parse([{"channel": "sms", "after": "1d"}]),
                                   now=datetime(2030, 3, 1, 9, 0, tzinfo=UTC))
    env = os.environ | demo.outside_env(urls) | {
        "IMBOT_URL": server.url, "IMBOT_PASSWORD": PASSWORD, "IMBOT_DATABASE_URL": db}

    async def run_due_at(when: str) -> dict[str, object]:
        done = await trio.run_process([sys.executable, "-m", "bots.cli", "run-due", "echo", "--now", when], env=env,
                                      capture_stdout=True, capture_stderr=True)
        result: dict[str, object] = json.loads(done.stdout)
        return result
    assert (await run_due_at("2030-03-02T16:59"))["ran"] == 0  # 08:59 UTC: not yet
    assert await run_due_at("2030-03-02T17:00+08:00") == {"ran": 1, "now": "2030-03-02T17:00:00+08:00"}
    assert [m["to"] for m in (await received(urls["sms"]))["messages"]] == ["13800138000"]


@pytest.mark.slow
async def test_imbot_run_due_says_clearly_what_is_wrong(server: Running, db: str) -> None:
    """A refused login is one JSON line (as for ``imbot run``); a channel without its key names the variable."""
    await server.user("echo", Role.BOT, "回声机器人")
    env = os.environ | {"IMBOT_URL": server.url, "IMBOT_DATABASE_URL": db}
    command = [sys.executable, "-m", "bots.cli", "run-due", "echo", "--now", "2030-03-02T09:00"]
    refused = await trio.run_process(command, env=env | {"IMBOT_PASSWORD": "wrong"}, check=False,
                                     capture_stdout=True, capture_stderr=True)
    assert refused.returncode == 1
    assert json.loads(refused.stderr.decode().strip().splitlines()[-1])["error"] == "auth_failed"
    half = await trio.run_process(command, env=env | {"IMBOT_PASSWORD": PASSWORD, "IMBOT_SMS_URL": "http://x"},
                                  check=False, capture_stdout=True, capture_stderr=True)
    assert half.returncode == 1
    assert "IMBOT_SMS_KEY is required when IMBOT_SMS_URL is set" in half.stderr.decode()
