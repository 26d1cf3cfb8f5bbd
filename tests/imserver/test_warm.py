"""After a restart the server loads recently active rosters by itself (NFR-3).

Without it, under load every conversation's first message after a restart waited
for its own roster load; load/RESULTS.md shows the seconds-long stall that caused.
"""

from __future__ import annotations

import dataclasses

import trio

from clients.python import open_client
from imserver.model import Role
from imserver.server import ChatServer, open_keys
from tests.conftest import PASSWORD, Running


async def test_a_restarted_server_warms_its_roster_cache_before_anyone_asks(server: Running) -> None:
    await server.user("nurse", Role.STAFF)
    await server.user("chen")
    async with open_client(server.url, username="nurse", password=PASSWORD) as nurse:
        group = (await nurse.request("group_create", name="移植群", members=["chen"]))["conv"]
        quiet = (await nurse.request("group_create", name="没有消息的群", members=["chen"]))["conv"]
        await nurse.send(group, "明天九点移植")
        direct = (await nurse.send("u:chen", "记得空腹")).conv
    for warm, expected in ((200_000, {group, direct}), (0, set())):
        settings = dataclasses.replace(server.settings, warm_messages=warm)
        fresh = ChatServer(settings, server.store, await open_keys(server.store))
        async with trio.open_nursery() as nursery:
            await nursery.start(fresh.serve)
            with trio.move_on_after(5):
                while not all(fresh.directory.cached_roster(int(c[2:])) for c in expected):  # noqa: ASYNC110
                    await trio.sleep(0.01)  # polling what a background task fills in; there is no event to wait on
            await trio.sleep(0.1)
            cached = {c for c in (group, quiet, direct) if fresh.directory.cached_roster(int(c[2:])) is not None}
            assert cached == expected  # active ones only: the group without messages stays cold
            if expected:
                users = fresh.directory.cached_users()
                assert {u.username for u in users.values()} >= {"nurse", "chen"}
            fresh.shutdown()
