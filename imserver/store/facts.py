"""SQL for facts about patients that templates use, such as ``next_visit`` (SPEC.md §5.20)."""

from __future__ import annotations

import asyncpg

from pgtrio.bridge import Store


async def set_fact_txn(db: asyncpg.Connection, patient_id: int, key: str, value: str | None, by: int) -> bool:
    """Record a fact, or remove it (``value`` None); False if there was nothing to remove."""
    if value is None:
        return bool(await db.fetchval(
            "delete from patient_facts where patient_id = $1 and key = $2 returning true", patient_id, key
        ))
    await db.execute(
        "insert into patient_facts (patient_id, key, value, set_by) values ($1, $2, $3, $4)"
        " on conflict (patient_id, key) do update"
        " set value = excluded.value, set_by = excluded.set_by, updated_at = now()",
        patient_id, key, value, by,
    )
    return True


async def facts(store: Store, patient_id: int, keys: list[str]) -> dict[str, str]:
    """The recorded facts among ``keys``."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            "select key, value from patient_facts where patient_id = $1 and key = any($2)", patient_id, keys
        )
    return {r["key"]: r["value"] for r in await store.run("facts", txn, transaction=False)}
