"""Service conversations and read receipts: a bot's 1:1 chat with a person is that service's inbox, and a bot
(or staff) learns whether its notice was read before escalating it to another channel (FEE-3, TRT-2)."""

from __future__ import annotations

from clients.python import ClientError, open_client
from imserver.model import Role
from tests.conftest import PASSWORD, Running
from tests.helpers import take


async def test_bot_chat_is_a_service_inbox_and_its_notice_is_seen_read(server: Running) -> None:
    await server.user("pathway", Role.BOT, "宣教助手")
    await server.user("chen")
    await server.user("dr_li", Role.STAFF, "李医生")
    async with (
        open_client(server.url, username="pathway", password=PASSWORD) as bot,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        notice = await bot.send("u:chen", "明天上午九点取卵，请空腹")
        before = await bot.request("receipt", conv="u:chen")
        assert before == {"op": "ok", "rid": before["rid"], "conv": notice.conv, "last_seq": 1,
                          "read_seq": 0, "peer_read_seq": 0}

        (got,) = await take(chen, 1)
        await chen.read(got.conv, got.seq)
        after = await bot.request("receipt", conv=notice.conv)
        assert after["peer_read_seq"] == notice.seq

        inbox = {c["conv"]: c for c in (await chen.request("convs"))["convs"]}
        assert inbox[notice.conv]["service"] is True and inbox[notice.conv]["name"] == "宣教助手"
        await chen.send("u:dr_li", "李医生您好")
        people = {c["name"]: c for c in (await chen.request("convs"))["convs"]}
        assert "service" not in people["李医生"]  # a chat with a person is not a service
        bot_side = (await bot.request("convs"))["convs"]
        assert all("service" not in c for c in bot_side)  # the bot's side is an ordinary chat with a patient


async def test_read_receipts_are_for_staff_and_bots_in_direct_chats_only(server: Running) -> None:
    await server.user("dr_li", Role.STAFF, "李医生")
    await server.user("chen")
    await server.user("wang")
    async with (
        open_client(server.url, username="dr_li", password=PASSWORD) as doctor,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        await doctor.send("u:chen", "检查结果已出")
        assert (await doctor.request("receipt", conv="u:chen"))["peer_read_seq"] == 0
        group = (await doctor.request("group_create", name="移植群", members=["chen", "wang"]))["conv"]
        for client, conv, code in (
            (chen, "u:dr_li", "forbidden"),       # a patient does not learn whether the doctor has read
            (doctor, group, "bad_request"),      # nobody learns who read what in a group
            (doctor, "u:nobody", "not_found"),
        ):
            try:
                await client.request("receipt", conv=conv)
            except ClientError as exc:
                assert exc.code == code
            else:
                raise AssertionError(f"receipt on {conv} was answered")
