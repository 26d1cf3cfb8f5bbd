"""The server's schema: the SQL files in ``imserver/migrations``, applied by ``pgtrio.migrate``."""

from __future__ import annotations

import asyncpg

from pgtrio import migrate as _migrations
from pgtrio.bridge import Store

PACKAGE = "imserver.migrations"


def available() -> list[_migrations.Migration]:
    return _migrations.available(PACKAGE)


async def migrate(store: Store) -> list[int]:
    """Apply every pending server migration in one transaction; return the versions applied."""
    return await _migrations.migrate(store, PACKAGE)


async def pending(store: Store) -> list[int]:
    """The versions shipped but not applied to this database (all of them on an empty one)."""
    async def txn(db: asyncpg.Connection) -> set[int]:
        exists = await db.fetchval("select to_regclass('schema_migrations') is not null")
        return {r[0] for r in await db.fetch("select version from schema_migrations")} if exists else set()
    done = await store.run("check_schema", txn, transaction=False)
    return [m.version for m in available() if m.version not in done]


async def ping(store: Store) -> None:
    """A round trip to the database, for the health check."""
    async def txn(db: asyncpg.Connection) -> None:
        await db.fetchval("select 1")
    await store.run("healthz", txn, transaction=False)


async def create_database(store: Store, name: str) -> None:
    """Create database ``name`` (a code constant, never user input) on the cluster ``store`` is connected to,
    unless it exists."""
    async def txn(db: asyncpg.Connection) -> None:
        if not await db.fetchval("select true from pg_database where datname = $1", name):
            await db.execute(f"create database {name}")
    await store.run("create_database", txn, transaction=False)
