"""Databases for tests: each test gets one of its own holding the migrated schema and nothing else.

A database copied from a template and dropped after its test costs Postgres two immediate checkpoints
(an fsync of every dirty buffer of the whole server), 0.2 s to over 1 s a test on these machines. So a
database whose test is done is emptied and handed to the next test instead: the connections left on it
are ended, schemas the test made (a bot's ``bot_<name>``) dropped, every row deleted, sequences set back
and the template's own rows (its migration record) put back. A test that changed the template's schema
itself is caught by comparing the catalog with the template's, and its database is dropped as before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from io import BytesIO
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")

USER_NAMESPACES = "n.nspname <> 'information_schema' and n.nspname !~ '^pg_'"

CATALOG = f"""
select md5(coalesce(string_agg(item, E'\\n' order by item), '')) from (
  select 'schema ' || n.nspname || ' ' || coalesce(n.nspacl::text, '') as item from pg_namespace n
    where {USER_NAMESPACES}
  union all
  select format('rel %s %s %s %s', c.oid::regclass, c.relkind, c.relpersistence, c.relacl)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where {USER_NAMESPACES}
  union all
  select format('col %s %s %s %s %s %s', a.attrelid::regclass, a.attnum, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where {USER_NAMESPACES} and a.attnum > 0 and not a.attisdropped
  union all
  select format('con %s %s %s', co.conrelid::regclass, co.conname, pg_get_constraintdef(co.oid))
    from pg_constraint co join pg_namespace n on n.oid = co.connamespace where {USER_NAMESPACES}
  union all
  select 'index ' || pg_get_indexdef(i.indexrelid)
    from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
    where {USER_NAMESPACES}
  union all
  select 'trigger ' || pg_get_triggerdef(t.oid) from pg_trigger t where not t.tgisinternal
  union all
  select format('function %s %s', p.oid::regprocedure, md5(p.prosrc))
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace where {USER_NAMESPACES}
  union all
  select format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid))
    from pg_class c join pg_namespace n on n.oid = c.relnamespace where {USER_NAMESPACES} and c.relkind in ('v', 'm')
  union all
  select format('type %s %s', t.oid::regtype, t.typtype)
    from pg_type t join pg_namespace n on n.oid = t.typnamespace where {USER_NAMESPACES} and t.typtype in ('e', 'd')
  union all
  select format('label %s %s', e.enumtypid::regtype, e.enumlabel) from pg_enum e
  union all
  select format('policy %s %s', p.polrelid::regclass, p.polname) from pg_policy p
  union all
  select 'extension ' || extname || ' ' || extversion from pg_extension
  union all
  select 'setting ' || array_to_string(s.setconfig, ',') from pg_db_role_setting s
    where s.setdatabase = (select oid from pg_database where datname = current_database())
) items
"""
"""A digest of everything a test could change in the schema, other than in schemas it made itself."""


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def run(dsn: str, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``action`` on a connection of its own to ``dsn`` (fixtures run outside trio: plain asyncio)."""
    async def connected() -> T:
        conn = await asyncpg.connect(dsn)
        try:
            return await action(conn)
        finally:
            await conn.close()
    return asyncio.run(connected())


def admin_sql(dsn: str, *statements: str) -> None:
    async def execute(conn: asyncpg.Connection) -> None:
        for statement in statements:
            await conn.execute(statement)
    run(dsn, execute)


async def schemas_of(conn: asyncpg.Connection) -> list[str]:
    return [r[0] for r in await conn.fetch(f"select nspname from pg_namespace n where {USER_NAMESPACES}")]


@dataclass(frozen=True)
class Template:
    """What a fresh copy of the template holds: its schemas, its catalog digest, its rows and sequences."""

    schemas: frozenset[str]
    catalog: str
    tables: tuple[str, ...]
    rows: dict[str, bytes]
    """Binary COPY data of each table that has rows in the template."""
    sequences: dict[str, tuple[int, bool]]
    """Each sequence's ``setval`` arguments (value, is_called) in the template."""

    @classmethod
    async def read(cls, conn: asyncpg.Connection) -> Template:
        schemas = frozenset(await schemas_of(conn))
        tables = tuple(r[0] for r in await conn.fetch(
            "select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            f" where {USER_NAMESPACES} and c.relkind in ('r', 'p') order by 1"))
        rows = {}
        for table in tables:
            if await conn.fetchval(f"select exists (select from {table})"):
                schema, _, name = table.partition(".")
                data = BytesIO()
                await conn.copy_from_table(name, schema_name=schema, output=data, format="binary")
                rows[table] = data.getvalue()
        sequences = {r[0]: (r[1], r[2]) for r in await conn.fetch(
            "select format('%I.%I', schemaname, sequencename), coalesce(last_value, start_value),"
            " last_value is not null from pg_sequences")}
        return cls(schemas, await conn.fetchval(CATALOG), tables, rows, sequences)

    async def restore(self, conn: asyncpg.Connection) -> bool:
        """Make the database on ``conn`` hold what the template holds; False if its schema differs."""
        await conn.execute("select pg_terminate_backend(pid) from pg_stat_activity"
                           " where datname = current_database() and pid <> pg_backend_pid()")
        for schema in sorted(set(await schemas_of(conn)) - self.schemas):
            await conn.execute(f'drop schema "{schema}" cascade')
        if await conn.fetchval(CATALOG) != self.catalog:
            return False
        async with conn.transaction():
            await conn.execute("set local session_replication_role = replica;"  # no foreign key checks or triggers
                               + "".join(f"delete from {table};" for table in self.tables))
            for sequence, (value, called) in self.sequences.items():
                await conn.execute("select setval($1::regclass, $2, $3)", sequence, value, called)
            for table, data in self.rows.items():
                schema, _, name = table.partition(".")
                await conn.copy_to_table(name, schema_name=schema, source=BytesIO(data), format="binary")
        return True


class Databases:
    """Hands out databases holding what ``template`` holds; ``give_back`` one when its test is done."""

    def __init__(self, admin_dsn: str, template: str) -> None:
        self._admin = admin_dsn
        self._template = template
        self._fresh = run(with_database(admin_dsn, template), Template.read)
        self._free: list[str] = []

    def take(self) -> str:
        """The DSN of a database of the caller's own."""
        if self._free:
            return with_database(self._admin, self._free.pop())
        name = f"imtest_{uuid.uuid4().hex[:12]}"
        admin_sql(self._admin, f"create database {name} template {self._template}")
        return with_database(self._admin, name)

    def give_back(self, dsn: str) -> None:
        """Empty the database for the next test, or drop it if its test changed its schema."""
        name = urlsplit(dsn).path.lstrip("/")
        try:
            reusable = run(dsn, self._fresh.restore)
        except (OSError, asyncpg.PostgresError):
            reusable = False
        if reusable:
            self._free.append(name)
        else:
            self._drop(name)

    def close(self) -> None:
        while self._free:
            self._drop(self._free.pop())

    def _drop(self, name: str) -> None:
        admin_sql(self._admin, f"drop database if exists {name} with (force)")
