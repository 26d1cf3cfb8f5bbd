"""SQL for message kinds that admins define (MSG-1 自定义)."""

from __future__ import annotations

from typing import Any

import asyncpg

from pgtrio.bridge import Store


async def definitions(store: Store) -> list[dict[str, Any]]:
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch("select definition from custom_kinds order by name")
    return [r["definition"] for r in await store.run("custom_kinds", txn, transaction=False)]


async def define_txn(db: asyncpg.Connection, definition: dict[str, Any], actor_id: int | None) -> None:
    """Add or replace a kind."""
    await db.execute(
        "insert into custom_kinds (name, definition, defined_by) values ($1, $2, $3)"
        " on conflict (name) do update set definition = excluded.definition,"
        "   defined_by = excluded.defined_by, defined_at = now()",
        definition["name"], definition, actor_id,
    )
