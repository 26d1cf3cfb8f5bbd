"""What every bot with a database keeps beside its own tables: the audit of who did what (DESIGN rule 7)."""

from __future__ import annotations

import asyncpg

from bots.framework.state import BotState
from pgtrio.bridge import open_store


async def test_a_command_is_audited_once_however_often_its_message_is_handled(db: str) -> None:
    """A bot that crashed before saving its position handles the message again: one record of the command. Reads
    by an outside caller carry no message: each is recorded."""
    async with open_store(db, min_size=1, max_size=2) as store:
        state = BotState(store, "echo")
        await state.migrate()
        for _ in range(2):
            await state.audit("u7", "/status", actor_name="李医生", conv="d:7:9", detail={"seq": 12, "args": {}})
        await state.audit("u7", "/status", actor_name="李医生", conv="d:7:9", detail={"seq": 13, "args": {}})
        await state.audit("u7", "/enroll", actor_name="李医生", conv="d:7:9", detail={"seq": 13, "args": {}})
        for _ in range(2):
            await state.audit("api:1", "api:notices", detail={"patient": "chen"})

        async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            return await conn.fetch("select actor, action, detail->>'seq' as seq from bot_echo.audit order by id")
        rows = await store.run("audit", txn, transaction=False)
        assert [(r["actor"], r["action"], r["seq"]) for r in rows] == [
            ("u7", "/status", "12"), ("u7", "/status", "13"), ("u7", "/enroll", "13"),
            ("api:1", "api:notices", None), ("api:1", "api:notices", None)]
