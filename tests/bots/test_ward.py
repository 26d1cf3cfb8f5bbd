"""A staff member moves a patient, and her husband follows, to another group through a bot (IM-2, IM-8)."""

from __future__ import annotations

from functools import partial

import trio

from bots.framework import Backoff, run_bot
from bots.ward import WardBot
from bots.ward import texts as t
from clients.python import Client, open_client
from imserver.model import Role
from tests.bots.test_echo import bot_says
from tests.conftest import PASSWORD, Running


async def usernames(client: Client, conv: str) -> set[str]:
    return {m["username"] for m in (await client.request("members", conv=conv))["members"] if "username" in m}


async def test_staff_move_a_patient_and_her_husband_through_a_bot(server: Running, nursery: trio.Nursery) -> None:
    await server.user("ward", Role.BOT, "病区助手")
    await server.user("nurse_li", Role.STAFF)
    await server.user("nurse_wu", Role.STAFF)
    await server.user("chen", Role.PATIENT)
    await server.user("chen_husband", Role.FAMILY)
    await server.user("wang", Role.PATIENT)
    async with open_client(server.url, username="nurse_li", password=PASSWORD) as li, \
            open_client(server.url, username="nurse_wu", password=PASSWORD) as wu:
        await li.request("family_link", patient="chen", family="chen_husband", relation="husband")
        stimulation = (await li.request("group_create", name="促排群", members=["chen", "wang"]))["conv"]
        transfer = (await li.request("group_create", name="移植群", members=[]))["conv"]
        elsewhere = (await wu.request("group_create", name="另一病区", members=[]))["conv"]
        for conv, owner in ((stimulation, li), (transfer, li), (elsewhere, wu)):
            await owner.request("group_add", conv=conv, user="ward", role="admin")
        assert await usernames(li, stimulation) >= {"chen", "chen_husband"}
        await nursery.start(partial(run_bot, WardBot(), server.url, username="ward", password=PASSWORD,
                                    backoff=Backoff(first=0.05)))

        await li.send("u:ward", f"/move chen {stimulation} {transfer}")
        (answer,) = await bot_says(li, 1)
        assert answer.text == t.MOVED.format(patient="chen", source=stimulation, target=transfer)
        assert {"chen", "chen_husband"} <= await usernames(li, transfer)
        assert {"chen", "chen_husband"}.isdisjoint(await usernames(li, stimulation))
        assert "wang" in await usernames(li, stimulation)

        # A nurse may not move patients into or out of groups she has no part in.
        await wu.send("u:ward", f"/move chen {transfer} {elsewhere}")
        (refusal,) = await bot_says(wu, 1)
        assert refusal.text == t.NOT_YOUR_GROUP.format(conv=transfer)
        assert {"chen", "chen_husband"} <= await usernames(li, transfer)

        # Only patients are moved: not a colleague, not the bot itself.
        await li.request("group_add", conv=transfer, user="nurse_wu")
        await li.send("u:ward", f"/move nurse_wu {transfer} {stimulation}")
        (colleague,) = await bot_says(li, 1)
        assert colleague.text == t.NOT_IN_GROUP.format(patient="nurse_wu", conv=transfer)
        assert "nurse_wu" in await usernames(li, transfer)

        await li.send("u:ward", f"/move wang {transfer} {stimulation}")
        (missing,) = await bot_says(li, 1)
        assert missing.text == t.NOT_IN_GROUP.format(patient="wang", conv=transfer)
        await li.send("u:ward", f"/move chen 12 {stimulation}")
        (bad,) = await bot_says(li, 1)
        assert bad.text == t.NOT_A_GROUP.format(conv="12")
