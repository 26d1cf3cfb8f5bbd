"""SQL for message kinds that admins define (MSG-1 自定义)."""

from __future__ import annotations

from typing import Any

import asyncpg

from pgtrio.bridge import Store


async def definitions(store: Store) -> list[dict[str, Any]]:
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch("select definition from custom_kinds order by name")
    return [r["definition"] for r in await store.run("custom_kinds", txn, transaction=False)]


async def define_txn(db: asyncpg.Connection, definition: dict[str, Any], actor_id: int | None, *, most: int) -> bool:
    """Add or replace a kind; False, changing nothing, for a new kind when there are ``most`` already."""
    done: bool | None = await db.fetchval(
        "insert into custom_kinds (name, definition, defined_by)"
        " select $1, $2, $3 where (select count(*) from custom_kinds where name <> $1) < $4"
        " on conflict (name) do update set definition = excluded.definition,"
        "   defined_by = excluded.defined_by, defined_at = now() returning true",
        definition["name"], definition, actor_id, most,
    )
    return bool(done)
