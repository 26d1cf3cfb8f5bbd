"""SQL of the event bus: NOTIFY on a channel, delivered to the listeners when the transaction commits."""

from __future__ import annotations

import asyncpg


async def notify_txn(db: asyncpg.Connection, channel: str, payload: str) -> None:
    await db.execute("select pg_notify($1, $2)", channel, payload)
