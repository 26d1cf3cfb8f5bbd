"""Numbered migrations in a schema of their own, as each bot keeps its state (pgtrio; DESIGN rule 9)."""

from __future__ import annotations

import trio

from imserver.store.migrate import available as server_migrations
from pgtrio.bridge import open_store
from pgtrio.migrate import available, migrate

PACKAGE = "tests.pgtrio.sample_migrations"


async def test_a_bot_schema_is_made_and_each_file_applied_once_even_by_racing_processes(db: str) -> None:
    assert [(m.version, m.name) for m in available(PACKAGE)] == [(1, "notes"), (2, "seed")]
    results: list[list[int]] = []
    async with open_store(db, min_size=1, max_size=4) as store:
        async def run() -> None:
            results.append(await migrate(store, PACKAGE, schema="sample_bot"))
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(run)
        assert sorted(results) == [[], [], [1, 2]]
        assert await migrate(store, PACKAGE, schema="sample_bot") == []
        notes = await store.run("notes", lambda conn: conn.fetch("select body from sample_bot.notes"))
        assert [n["body"] for n in notes] == ["第一条"]
        # the same files make the same tables in another bot's schema, recorded there
        assert await migrate(store, PACKAGE, schema="other_bot") == [1, 2]
        # the server's own record is untouched by a bot's migrations
        server = await store.run("server", lambda conn: conn.fetchval("select count(*) from schema_migrations"))
        assert server == len(server_migrations())
