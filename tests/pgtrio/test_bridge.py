"""The trio–asyncpg bridge refuses a nested interaction with a clear error instead of crashing trio-asyncio."""

from __future__ import annotations

import asyncpg
import pytest

from pgtrio.bridge import Store, open_store


async def test_an_interaction_inside_an_interaction_is_refused_clearly(db: str) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        async def inner(conn: asyncpg.Connection) -> int:
            return int(await conn.fetchval("select 1"))

        async def outer(conn: asyncpg.Connection, store: Store) -> int:
            return await store.run("inner", inner)

        with pytest.raises(RuntimeError, match="use the \\*_txn variant"):
            await store.run("outer", outer, store)
        assert await store.run("after", inner) == 1  # the pool and the loop are fine afterwards
