"""The server's public admin interface (imserver/admin.py) against a running server: what it sets up in bulk is
what clients see, it can be run again without changing anything, and its tokens and counts are the server's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clients.python import open_client
from imserver.admin import NewGroup, NewUser, open_admin
from tests.conftest import Running

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


async def test_bulk_set_up_is_what_clients_see_and_runs_again_unchanged(server: Running, db: str) -> None:
    async with open_admin(db) as admin:
        assert await admin.migrate() == []  # (the test database is current)
        for _ in range(2):  # every step skips what exists
            await admin.add_users([NewUser("nurse_a", "护士甲", "staff", "护士"), NewUser("p1", "患者一"),
                                   NewUser("p2", "患者二"), NewUser("p3", "患者三")], "a-long-password")
            ids = await admin.user_ids(["nurse_a", "p1", "p2", "p3", "nobody"])
            await admin.add_groups([NewGroup("移植群", ids["nurse_a"], [ids["p1"], ids["p2"]])])
            await admin.add_direct_chats([(ids["p1"], ids["p3"])])
            group = (await admin.group_addresses(["移植群", "无此群"]))["移植群"]
            direct = (await admin.direct_addresses([(ids["p1"], ids["p3"])]))[(ids["p1"], ids["p3"])]
            added = await admin.add_old_messages([group, direct], 10, "旧消息", until=NOW, span=timedelta(days=1))
        assert "nobody" not in ids and added == 0  # the second round added nothing
        assert await admin.last_seqs([group, direct]) == {group: 5, direct: 5}
        (token,) = await admin.issue_tokens([ids["p2"]], device="tool", expires_at=NOW + timedelta(days=3650))
        async with open_client(server.url, token=token) as p2:
            assert p2.welcome.user.id == f"u{ids['p2']}"
            page, _ = await p2.history(group)
            assert [m.text for m in page] == ["旧消息"] * 5
            await p2.send(group, "新消息")
        assert await admin.stored_since({group: 5, direct: 5}) == {group: {ids["p2"]: 1}, direct: {}}
        with pytest.raises(ValueError):
            await admin.last_seqs(["u:p1"])  # a person, not a conversation's address
        with pytest.raises(ValueError):
            await admin.add_users([NewUser("x", "x", "doctor")], "a-long-password")  # not a role
