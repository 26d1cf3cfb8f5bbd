"""The one place where trio meets asyncpg (docs/architecture.md, "Measured findings": asyncpg inside trio).

asyncpg is an asyncio library; trio-asyncio runs an asyncio loop inside trio.
The rules that keep this safe are kept here so no other module needs them:
the loop and the pool live for the whole process; each interaction with the
database (acquire, whole transaction, release) is a single asyncio coroutine,
so a trio cancellation cancels that coroutine and asyncio's own clean-up rolls
the transaction back and returns the connection. Each bridge hop costs tens of
microseconds, so callers batch.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import msgspec
import sniffio
import trio
import trio_asyncio
from prometheus_client import Histogram

T = TypeVar("T")

INTERACTION_SECONDS = Histogram(
    "imserver_db_interaction_seconds",
    "Time of one database interaction, by its label",
    ["desc"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5),
)



async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog",
        encoder=lambda v: msgspec.json.encode(v).decode(), decoder=msgspec.json.decode,
        format="text",
    )


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (``RESET ALL; UNLISTEN *; …``), a full round trip per interaction.

    Nothing here changes session state on a pooled connection: no SET, no advisory locks,
    no LISTEN (``listen`` has a connection of its own). asyncpg still rolls back a
    transaction left open before calling this.
    """


class Store:
    """A pool of Postgres connections usable from trio."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self.dsn = dsn

    async def run(
        self, desc: str, fn: Callable[..., Awaitable[T]], *args: Any, transaction: bool = True
    ) -> T:
        """Run ``fn(conn, *args)`` (an asyncio coroutine function) on a pooled connection.

        ``desc`` labels the interaction in metrics. With ``transaction`` the whole
        call is one transaction: committed if ``fn`` returns, rolled back if it
        raises or the caller is cancelled.

        Error handling: RuntimeError when called from inside another interaction's ``fn``
        (asyncio code): that crashes trio-asyncio, so pass the connection on instead (the
        ``*_txn`` functions).
        """
        if sniffio.current_async_library() != "trio":
            raise RuntimeError(f"store.run({desc!r}) inside a database interaction: use the *_txn variant")

        async def interaction() -> T:
            async with self._pool.acquire() as conn:
                if not transaction:
                    return await fn(conn, *args)
                async with conn.transaction():
                    return await fn(conn, *args)

        started = time.perf_counter()
        try:
            return await trio_asyncio.aio_as_trio(interaction)()
        finally:
            INTERACTION_SECONDS.labels(desc).observe(time.perf_counter() - started)

    async def listen(
        self, channel: str, sink: trio.MemorySendChannel[str],
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Forward every NOTIFY on ``channel`` to ``sink`` until cancelled.

        Started (``task_status``) once LISTEN is in effect, so no event
        committed after that point is missed.

        Error handling: if the listening connection is lost the method raises,
        and its owner decides whether to start it again.
        """
        lost = trio.Event()

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            sink.send_nowait(payload)  # the sink is unbounded: notifications are rare and small

        def on_lost(_conn: Any) -> None:
            lost.set()

        conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(self.dsn)
        try:
            await trio_asyncio.aio_as_trio(conn.add_listener)(channel, on_notify)
            conn.add_termination_listener(on_lost)
            task_status.started()
            await lost.wait()
            raise ConnectionError(f"lost the LISTEN connection for {channel}")
        finally:
            with trio.CancelScope(shield=True):
                await trio_asyncio.aio_as_trio(conn.close)()


@asynccontextmanager
async def open_store(dsn: str, *, min_size: int = 2, max_size: int = 8) -> AsyncIterator[Store]:
    """Open the asyncio loop and the pool for the lifetime of the block."""
    async with trio_asyncio.open_loop():
        pool = await trio_asyncio.aio_as_trio(asyncpg.create_pool)(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_no_session_reset,
            # No idle-connection timer: asyncpg arms a 300 s timer on every release and cancels it on the next
            # acquire; the trio-asyncio loop keeps cancelled timers until they are due, hundreds of thousands
            # under load, and the garbage collector's full passes over them stalled the server (NFR-3).
            max_inactive_connection_lifetime=0,
        )
        try:
            yield Store(pool, dsn)
        finally:
            with trio.CancelScope(shield=True):
                await trio_asyncio.aio_as_trio(pool.close)()
