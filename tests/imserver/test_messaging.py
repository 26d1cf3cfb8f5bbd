"""Send, live delivery, sync, history and read markers over real sockets and a real Postgres (IM-19)."""

from __future__ import annotations

import trio

from clients.python import ClientError, open_client
from imserver.model import Role
from tests.conftest import PASSWORD, Running


async def test_group_message_reaches_every_member_and_device_in_order(server: Running) -> None:
    await server.user("dr_wang", Role.STAFF, "王医生")
    for name in ("alice", "bob"):
        await server.user(name)
    async with (
        open_client(server.url, username="dr_wang", password=PASSWORD) as doctor,
        open_client(server.url, username="alice", password=PASSWORD, device="phone") as alice_phone,
        open_client(server.url, username="alice", password=PASSWORD, device="pad") as alice_pad,
        open_client(server.url, username="bob", password=PASSWORD) as bob,
    ):
        group = (await doctor.request("group_create", name="移植群", members=["alice", "bob"]))["conv"]
        acks = [await doctor.send(group, f"第{i}条") for i in range(20)]
        assert [a["seq"] for a in acks] == list(range(1, 21))
        for receiver in (alice_phone, alice_pad, bob):
            got = []
            with trio.fail_after(5):
                async for message in receiver.messages():
                    got.append(message)
                    if len(got) == 20:
                        break
            assert [m.seq for m in got] == list(range(1, 21))
            assert [m.text for m in got] == [f"第{i}条" for i in range(20)]
            assert got[0].sender.name == "王医生"


async def test_resend_with_same_client_id_is_not_duplicated(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g"))["conv"]
        first = await doctor.send(group, "hello", cid="c-1")
        again = await doctor.send(group, "hello (resent)", cid="c-1")
        assert again["dup"] is True and first["dup"] is False
        assert (again["seq"], again["id"]) == (first["seq"], first["id"])
        page, _ = await doctor.history(group)
        assert [m.text for m in page] == ["hello"]


async def test_read_only_session_cannot_send(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    await server.user("mini")
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["mini"]))["conv"]
        await doctor.send(group, "visible")
        async with open_client(server.url, username="mini", password=PASSWORD, readonly=True) as mini:
            page, _ = await mini.history(group)
            assert [m.text for m in page] == ["visible"]
            try:
                await mini.send(group, "nope")
            except ClientError as exc:
                assert exc.code == "read_only"
            else:
                raise AssertionError("read-only session sent a message")
