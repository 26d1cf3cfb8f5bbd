"""Schema migrations: ordered SQL files in ``imserver/migrations``, each applied once.

Applied versions are recorded in ``schema_migrations``. An advisory lock lets
several processes start at once without applying a file twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from imserver.store.bridge import Store

_LOCK_KEY = 0x1F5E_2026
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migration files shipped with the package, in order."""
    found = []
    for entry in resources.files("imserver.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


async def _migrate_txn(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    await conn.execute("select pg_advisory_xact_lock($1)", _LOCK_KEY)
    await conn.execute(
        "create table if not exists schema_migrations ("
        " version int primary key, name text not null,"
        " applied_at timestamptz not null default now())"
    )
    done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        await conn.execute(migration.sql)
        await conn.execute(
            "insert into schema_migrations (version, name) values ($1, $2)",
            migration.version, migration.name,
        )
        applied.append(migration.version)
    return applied


async def migrate(store: Store) -> list[int]:
    """Apply every pending migration in one transaction; return the versions applied."""
    return await store.run("migrate", _migrate_txn, available())
