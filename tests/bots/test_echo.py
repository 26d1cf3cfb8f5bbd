"""The echo bot over a real server and real SDK clients (a bot answers a slash command in a group and 1:1)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio

from bots.echo import EchoBot
from bots.framework import Backoff, run_bot
from bots.framework import texts as t
from bots.framework.state import BotState
from clients.python import Client, open_client
from imserver.connection import Connection
from imserver.model import Role
from pgtrio.bridge import open_store
from protocol import Message
from protocol.errors import ErrorCode
from tests.conftest import PASSWORD, Running
from tests.helpers import script


@pytest.fixture
async def echo(server: Running, nursery: trio.Nursery) -> AsyncIterator[Client]:
    """The echo bot, running against the test server; yields the bot's first client."""
    await server.user("echo", Role.BOT, "回声机器人")
    run = partial(run_bot, EchoBot(), server.url, username="echo", password=PASSWORD, backoff=Backoff(first=0.05))
    yield await nursery.start(run)


async def bot_says(client: Client, count: int, seconds: float = 10) -> list[Message]:
    """The next ``count`` messages from a bot that ``client`` receives."""
    got: list[Message] = []
    with trio.fail_after(seconds):
        async for message in client.messages():
            if message.sender.role == "bot":
                got.append(message)
                if len(got) == count:
                    return got
    raise AssertionError("messages() ended")


async def bot_connection(server: Running, seconds: float = 10) -> Connection:
    """The echo bot's one open connection on the server, once there is exactly one."""
    with trio.fail_after(seconds):
        while True:
            found = [c for c in server.server.hub.connections()
                     if c.session and c.session.user.username == "echo" and not c.finishing]
            if len(found) == 1:
                return found[0]
            await trio.sleep(0.02)


async def nothing_more(client: Client, seconds: float = 1.0) -> None:
    """Fail if a bot says anything more within ``seconds``."""
    with trio.move_on_after(seconds):
        extra = await bot_says(client, 1, seconds + 1)
        raise AssertionError(f"unexpected: {extra}")


async def test_help_and_echo_in_a_direct_chat(server: Running, echo: Client) -> None:
    await server.user("dr_wang", Role.STAFF, "王医生")
    async with open_client(server.url, username="dr_wang", password=PASSWORD) as doctor:
        chat = (await doctor.send("u:echo", "/help")).conv
        assert chat.startswith("d:")
        (helped,) = await bot_says(doctor, 1)
        assert helped.conv == chat and helped.sender.name == "回声机器人"
        assert helped.text.startswith("回声机器人可用的命令：") and "/echo <文本…>" in helped.text
        await doctor.send(chat, "/echo 你好，  世界")
        await doctor.send(chat, "不是命令的话，机器人不回")
        await doctor.send(chat, "/help echo")
        echoed, detail = await bot_says(doctor, 2)
        assert echoed.text == "你好，  世界"
        assert detail.text.startswith("/echo：原样回复一段文字")
        await nothing_more(doctor)


async def test_echo_in_a_group_and_helpful_errors(server: Running, echo: Client) -> None:
    await server.user("dr_wang", Role.STAFF, "王医生")
    await server.user("alice")
    async with (
        open_client(server.url, username="dr_wang", password=PASSWORD) as doctor,
        open_client(server.url, username="alice", password=PASSWORD) as alice,
    ):
        group = (await doctor.request("group_create", name="移植群", members=["echo", "alice"]))["conv"]
        await doctor.send(group, "/echo 大家好")
        await doctor.send(group, "/ehco 大家好")
        await doctor.send(group, '/echo "没有结束的引号')
        await doctor.send(group, "/help nope")
        said = await bot_says(doctor, 4)
        assert [m.conv for m in said] == [group] * 4
        assert said[0].text == "大家好"
        assert said[1].text.splitlines() == [
            t.UNKNOWN_COMMAND.format(name="ehco"), t.DID_YOU_MEAN.format(names="/echo"), t.SEE_HELP]
        assert "引号" in said[2].text
        assert said[3].text.startswith("没有 /nope 这个命令。")
        assert [m.text for m in await bot_says(alice, 4)] == [m.text for m in said]  # the group sees the answers


async def test_bad_argument_is_named(server: Running, echo: Client) -> None:
    await server.user("dr_wang", Role.STAFF)
    async with open_client(server.url, username="dr_wang", password=PASSWORD) as doctor:
        await doctor.send("u:echo", "/echo")
        (answer,) = await bot_says(doctor, 1)
        assert answer.text.splitlines() == ["缺少参数 文本（要回复的文字）。", "用法：/echo <文本…>"]


async def test_a_patient_cannot_run_commands_and_her_help_says_so(server: Running, echo: Client) -> None:
    await server.user("dr_wang", Role.STAFF)
    await server.user("alice")
    await server.user("bob")
    async with (
        open_client(server.url, username="dr_wang", password=PASSWORD) as doctor,
        open_client(server.url, username="alice", password=PASSWORD) as alice,
        open_client(server.url, username="bob", password=PASSWORD) as bob,
    ):
        group = (await doctor.request("group_create", name="移植群", members=["echo", "alice", "bob"]))["conv"]
        await alice.send(group, "/echo 我是患者")
        (refusal,) = await bot_says(alice, 1)
        assert refusal.text == t.STAFF_ONLY and refusal.only is not None  # shown to her alone
        await alice.send("u:echo", "/echo 私聊")
        (refusal,) = await bot_says(alice, 1)
        assert refusal.text == t.STAFF_ONLY and refusal.conv.startswith("d:")
        await doctor.send(group, "/echo 医生")  # the doctor is a manager: he sees the refusal too
        assert [m.text for m in await bot_says(doctor, 2)] == [t.STAFF_ONLY, "医生"]
        assert [m.text for m in await bot_says(bob, 1)] == ["医生"]  # bob saw neither the refusal nor an echo
        assert [m.text for m in await bot_says(alice, 1)] == ["医生"]  # her command was not run
        await nothing_more(alice)
        await alice.send(group, "/help")  # the echo bot has no command for her: it says so, to her alone
        (answer,) = await bot_says(alice, 1)
        assert answer.text == t.HELP_NOTHING_FOR_PATIENTS.format(bot="回声机器人") and answer.only is not None
        await alice.send(group, "/help echo")  # a staff command is not hers: not described, not even named
        (answer,) = await bot_says(alice, 1)
        assert answer.text.startswith("没有 /echo 这个命令。") and answer.only is not None
        await doctor.send(group, "/help")
        assert [m.text.splitlines()[0] for m in await bot_says(bob, 1)] == ["回声机器人可用的命令："]  # his, public


async def test_the_bot_reconnects_and_answers_what_was_said_meanwhile_once(server: Running, echo: Client) -> None:
    await server.user("dr_wang", Role.STAFF)
    async with open_client(server.url, username="dr_wang", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["echo"]))["conv"]
        await doctor.send(group, "/echo 一")
        assert [m.text for m in await bot_says(doctor, 1)] == ["一"]
        for _ in range(2):
            (await bot_connection(server)).finish(4000, ErrorCode.SLOW_CONSUMER)
            await doctor.send(group, "/echo 断线时")
        await doctor.send(group, "/echo 二")
        assert [m.text for m in await bot_says(doctor, 3)] == ["断线时", "断线时", "二"]
        await nothing_more(doctor)


@pytest.mark.slow
async def test_imbot_list_and_run(server: Running) -> None:
    listed = await trio.run_process([script("imbot"), "list"], capture_stdout=True)
    bots = [json.loads(line) for line in listed.stdout.decode().splitlines()]
    assert {"name": "echo", "title": "回声机器人"}.items() <= bots[0].items()
    assert [c["name"] for c in bots[0]["commands"]] == ["help", "echo"]

    await server.user("echo", Role.BOT)
    await server.user("dr_wang", Role.STAFF)
    env = {**os.environ, "IMBOT_URL": server.url, "IMBOT_PASSWORD": PASSWORD}
    async with trio.open_nursery() as nursery:
        process = await nursery.start(partial(trio.run_process, [script("imbot"), "run", "echo"], env=env))
        async with open_client(server.url, username="dr_wang", password=PASSWORD) as doctor:
            await bot_connection(server, 20)
            await trio.sleep(0.5)  # the bot reads its conversations before it follows them
            await doctor.send("u:echo", "/echo 进程")
            assert [m.text for m in await bot_says(doctor, 1, 20)] == ["进程"]
        process.terminate()
    assert process.returncode == 0


async def test_a_restarted_bot_answers_what_was_said_while_it_was_down_and_nothing_twice(
    server: Running, db: str,
) -> None:
    """With its own schema (BotState) the runner resumes from the last message it handled (IM-19)."""
    await server.user("echo", Role.BOT, "回声机器人")
    await server.user("nurse", Role.STAFF)

    async def bot_for_a_while(nursery: trio.Nursery) -> trio.CancelScope:
        scope = trio.CancelScope()

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            with scope:
                async with open_store(db, min_size=1, max_size=2) as store:
                    state = BotState(store, "echo")
                    await state.migrate()
                    await run_bot(EchoBot(), server.url, username="echo", password=PASSWORD,
                                  backoff=Backoff(first=0.05), state=state, task_status=task_status)
        await nursery.start(run)
        return scope

    async with open_client(server.url, username="nurse", password=PASSWORD) as nurse, \
            trio.open_nursery() as nursery:
        first = await bot_for_a_while(nursery)
        await nurse.send("u:echo", "/echo 一")
        assert [m.text for m in await bot_says(nurse, 1)] == ["一"]
        first.cancel()
        await trio.sleep(0.2)
        await nurse.send("u:echo", "/echo 二")  # while the bot is down
        second = await bot_for_a_while(nursery)
        assert [m.text for m in await bot_says(nurse, 1)] == ["二"]
        await nothing_more(nurse)
        second.cancel()


async def test_a_bot_added_to_a_group_does_not_act_on_what_was_said_before(server: Running, echo: Client) -> None:
    await server.user("nurse", Role.STAFF)
    async with open_client(server.url, username="nurse", password=PASSWORD) as nurse:
        group = (await nurse.request("group_create", name="老群", members=[]))["conv"]
        await nurse.send(group, "/echo 旧命令")  # before the bot was there
        await nurse.request("group_add", conv=group, user="echo")
        await trio.sleep(0.3)
        await nurse.send(group, "/echo 新命令")
        assert [m.text for m in await bot_says(nurse, 1)] == ["新命令"]
        await nothing_more(nurse)
