"""Schema migrations: ordered SQL files ``NNNN_name.sql`` in a package, each applied once.

Applied versions are recorded in a table of the owner's choosing (the server's
``schema_migrations``, a bot's ``<schema>.schema_migrations``). An advisory lock
per owner lets several processes start at once without applying a file twice.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

from pgtrio.bridge import Store

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""A Postgres name we put into SQL ourselves (a schema): checked, never quoted."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available(package: str) -> list[Migration]:
    """The migration files shipped in ``package`` (e.g. ``imserver.migrations``), in order."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


async def _migrate_txn(
    conn: asyncpg.Connection, migrations: list[Migration], table: str, schema: str | None
) -> list[int]:
    await conn.execute("select pg_advisory_xact_lock($1)", zlib.crc32(f"{schema}.{table}".encode()))
    if schema is not None:  # a bot's own schema, made on first use; unqualified names in the files land there
        await conn.execute(f"create schema if not exists {schema}")
        await conn.execute(f"set local search_path = {schema}, public")
    await conn.execute(
        f"create table if not exists {table} ("
        " version int primary key, name text not null,"
        " applied_at timestamptz not null default now())"
    )
    done = {r["version"] for r in await conn.fetch(f"select version from {table}")}
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        await conn.execute(migration.sql)
        await conn.execute(f"insert into {table} (version, name) values ($1, $2)", migration.version, migration.name)
        applied.append(migration.version)
    return applied


async def migrate(
    store: Store, package: str, *, table: str = "schema_migrations", schema: str | None = None
) -> list[int]:
    """Apply every pending migration of ``package`` in one transaction; return the versions applied.

    With ``schema`` the files run with that schema first on the search path, so the
    same files can make the same tables in each bot's schema; ``table`` (the record
    of applied versions) lives there too. Both are code's constants, never user input.
    """
    if schema is not None and not IDENTIFIER.match(schema):
        raise ValueError(f"not a schema name: {schema!r}")
    return await store.run("migrate", _migrate_txn, available(package), table, schema)
