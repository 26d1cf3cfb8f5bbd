"""A bot's own schema in Postgres (``bot_<name>``): its positions and, through ``jobs``, its durable work.

Bots share the hospital's Postgres but not the server's tables: each has a
schema of its own, made and migrated by ``pgtrio.migrate`` from
``bots/framework/migrations`` (the same files for every bot).
"""

from __future__ import annotations

import asyncpg

from bots.framework.jobs import Jobs
from pgtrio.bridge import Store
from pgtrio.migrate import migrate
from protocol.clock import Clock, system_clock

MIGRATIONS = "bots.framework.migrations"


def schema_of(bot_name: str) -> str:
    return f"bot_{bot_name}"


class BotState:
    """One bot's schema; ``clock`` is the time its jobs and outbox go by (DESIGN rule 10)."""

    def __init__(
        self, store: Store, bot_name: str, migrations: str | None = None, *, clock: Clock = system_clock,
    ) -> None:
        self._store = store
        self.schema = schema_of(bot_name)
        self.clock = clock
        self.jobs = Jobs(store, self.schema, clock=clock)
        self._migrations = migrations

    @property
    def store(self) -> Store:
        return self._store

    async def migrate(self) -> list[int]:
        """The framework's tables, then the bot's own (``Bot.migrations``), each with its own record."""
        applied = await migrate(self._store, MIGRATIONS, schema=self.schema, table="framework_migrations")
        if self._migrations is not None:
            applied += await migrate(self._store, self._migrations, schema=self.schema, table="bot_migrations")
        return applied

    async def audit(self, actor: str, action: str, *, actor_name: str = "", conv: str = "",
                    detail: dict[str, object] | None = None) -> None:
        """Record who did what (DESIGN rule 7); kept in the bot's schema beside what it did. A command (its
        ``detail`` names the message's ``seq``) is recorded once, however often its message is handled."""
        async def txn(conn: asyncpg.Connection) -> None:
            await conn.execute(f"insert into {self.schema}.audit (actor, actor_name, action, conv, detail)"
                               " values ($1, $2, $3, $4, $5) on conflict do nothing",
                               actor, actor_name, action, conv, detail or {})
        await self._store.run("bot_audit", txn)

    async def positions(self) -> dict[str, int]:
        async def txn(conn: asyncpg.Connection) -> dict[str, int]:
            return {r["conv"]: r["seq"] for r in await conn.fetch(f"select conv, seq from {self.schema}.positions")}
        return await self._store.run("bot_positions", txn, transaction=False)

    async def save(self, positions: dict[str, int]) -> None:
        """Record positions (never moving one back)."""
        async def txn(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"insert into {self.schema}.positions as p (conv, seq)"
                " select * from unnest($1::text[], $2::bigint[])"
                " on conflict (conv) do update set seq = greatest(p.seq, excluded.seq), updated_at = now()",
                list(positions), list(positions.values()),
            )
        await self._store.run("bot_save_positions", txn)
