"""Durable jobs: time-based work kept in Postgres, in the bot's own schema (DESIGN rule 9).

A job is scheduled with a key (scheduling the same key again changes nothing),
a kind, a payload, a due time and a priority. Runners claim due jobs, the most
urgent first, with ``FOR UPDATE SKIP LOCKED``, so any number of instances share
the work and no job is claimed twice at once. A claim is a lease: if the runner dies, the job
becomes claimable again when the lease passes, so a restart loses nothing.
Completing or failing is fenced by the attempt number, so a runner whose lease
passed cannot overwrite the newer attempt. A failed attempt is retried with
exponential backoff until ``max_attempts``, then the job is ``failed``.

What this promises: never two runs at once (a handler is cancelled before its lease
ends), none lost, and a job whose runner dies every time fails after ``max_attempts``. A runner that dies
after a job's effect but before recording it means a second run, so handlers
make their effects idempotent (the job's ``key`` is there for that).

Time (DESIGN rule 10). Every time the table records or compares comes from the ``clock`` the
jobs were given (the machine's clock in production), never from the database's ``now()``, so a
test on a fixed or mock clock sees exactly what production would at that time. What is due is
judged by that clock, or by the ``now`` a caller passes to ``claim``, ``run_due`` or ``fail``:
``imbot run-due --now`` runs exactly what is due by a given time. ``Job.now`` carries that time to
the handler (its clock for whatever it records or schedules); a retry's backoff counts from it.
Leases always run on the clock, not on a given ``now``: they keep two runners apart in real time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import trio

from pgtrio.bridge import Store
from pgtrio.migrate import IDENTIFIER
from protocol.clock import Clock, system_clock

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Job:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    due_at: datetime
    attempt: int
    """1 for the first run; the fence for finishing it."""
    now: datetime
    """The time it was claimed at: the jobs' clock, or the ``now`` the runner was given."""


Handler = Callable[[Job], Awaitable[None]]


@dataclass(frozen=True)
class Attempt:
    """One attempt ``run_due_attempts`` made: the job, and how it ended."""

    job: Job
    error: str | None = None
    """None if it was recorded completed; else why not (a failed attempt is retried after its backoff, or
    failed for good at ``max_attempts``; one whose outcome could not be recorded is retried when its lease passes)."""


LEASE_USE = 0.8
"""Share of the lease a handler may run before it is cancelled, so no two runs of a job overlap."""


class Jobs:
    """The jobs table of one bot's schema (made by ``BotState.migrate``)."""

    def __init__(
        self, store: Store, schema: str, *, lease_s: float = 300.0, backoff_s: float = 30.0,
        clock: Clock = system_clock,
    ) -> None:
        if not IDENTIFIER.match(schema):
            raise ValueError(f"not a schema name: {schema!r}")
        self._store = store
        self.clock = clock
        self._table = f"{schema}.jobs"
        self.schema = schema
        self.lease_s = lease_s
        self.backoff_s = backoff_s

    async def schedule(
        self, key: str, kind: str, due_at: datetime, payload: Mapping[str, Any] | None = None, *,
        max_attempts: int = 5, priority: int = 0,
    ) -> bool:
        """Add a job unless one with ``key`` exists; True if it was added. Higher ``priority`` is claimed first."""
        async def txn(conn: asyncpg.Connection) -> bool:
            return await self.schedule_txn(conn, key, kind, due_at, payload, max_attempts=max_attempts,
                                           priority=priority)
        return await self._store.run("jobs_schedule", txn)

    async def schedule_txn(
        self, conn: asyncpg.Connection, key: str, kind: str, due_at: datetime,
        payload: Mapping[str, Any] | None = None, *, max_attempts: int = 5, priority: int = 0,
    ) -> bool:
        """``schedule`` inside the caller's transaction, so a job exists exactly when the change it follows does."""
        added = await conn.fetchval(
            f"insert into {self._table} (key, kind, payload, due_at, max_attempts, priority)"
            " values ($1, $2, $3, $4, $5, $6) on conflict (key) do nothing returning true",
            key, kind, dict(payload or {}), due_at, max_attempts, priority,
        )
        return bool(added)

    async def cancel(self, key: str) -> bool:
        """Cancel a job that has not finished; True if it was cancelled."""
        async def txn(conn: asyncpg.Connection) -> bool:
            return await self.cancel_txn(conn, [key]) == 1
        return await self._store.run("jobs_cancel", txn)

    async def cancel_txn(self, conn: asyncpg.Connection, keys: list[str]) -> int:
        """``cancel`` of several jobs inside the caller's transaction; how many were cancelled."""
        status: str = await conn.execute(
            f"update {self._table} set state = 'cancelled', finished_at = $2"
            " where key = any($1::text[]) and state in ('requested', 'in-progress')", keys, self.clock(),
        )
        return int(status.rsplit(" ", 1)[1])

    async def claim(self, limit: int, *, now: datetime | None = None) -> list[Job]:
        """Take up to ``limit`` jobs due by ``now`` (default: the clock), or whose lease passed."""
        real = self.clock()
        due = real if now is None else now

        async def txn(conn: asyncpg.Connection) -> list[Job]:
            rows = await conn.fetch(
                f"update {self._table} j set state = 'in-progress', attempts = j.attempts + 1,"
                "   lease_until = $4 + make_interval(secs => $2)"
                f" where j.id in (select id from {self._table}"
                "   where due_at <= $3 and (state = 'requested'"
                "     or state = 'in-progress' and lease_until < $4 and attempts < max_attempts)"
                "   order by priority desc, due_at limit $1 for update skip locked)"
                " returning j.id, j.key, j.kind, j.payload, j.due_at, j.attempts",
                limit, self.lease_s, due, real,
            )
            await conn.execute(  # runners kept dying on it: give up rather than claim it for ever
                f"update {self._table} set state = 'failed', finished_at = $1, lease_until = null,"
                "   last_error = coalesce(last_error, 'the runner stopped during every attempt')"
                " where state = 'in-progress' and lease_until < $1 and attempts >= max_attempts", real,
            )
            return [Job(r["id"], r["key"], r["kind"], r["payload"], r["due_at"], r["attempts"], due) for r in rows]
        return await self._store.run("jobs_claim", txn)

    async def complete(self, job: Job) -> bool:
        """Record success; False if this attempt no longer owns the job (its lease passed and it was re-claimed)."""
        async def txn(conn: asyncpg.Connection) -> bool:
            status: str = await conn.execute(
                f"update {self._table} set state = 'completed', finished_at = $3, lease_until = null"
                " where id = $1 and attempts = $2 and state = 'in-progress'", job.id, job.attempt, self.clock(),
            )
            return status.endswith(" 1")
        return await self._store.run("jobs_complete", txn)

    async def fail(self, job: Job, error: str, *, now: datetime | None = None) -> bool:
        """Record a failed attempt: retry after a backoff (30 s, 60 s, 120 s… from ``now``, default the
        clock) or give up at ``max_attempts``."""
        real = self.clock()

        async def txn(conn: asyncpg.Connection) -> bool:
            status: str = await conn.execute(
                f"update {self._table} set last_error = $3, lease_until = null,"
                "   state = case when attempts >= max_attempts then 'failed' else 'requested' end,"
                "   finished_at = case when attempts >= max_attempts then $6::timestamptz end,"
                "   due_at = case when attempts >= max_attempts then due_at"
                "            else $5::timestamptz + make_interval(secs => $4 * 2 ^ (attempts - 1)) end"
                " where id = $1 and attempts = $2 and state = 'in-progress'",
                job.id, job.attempt, error[:2000], self.backoff_s, real if now is None else now, real,
            )
            return status.endswith(" 1")
        return await self._store.run("jobs_fail", txn)

    async def state(self, key: str) -> dict[str, Any] | None:
        async def txn(conn: asyncpg.Connection) -> dict[str, Any] | None:
            row = await conn.fetchrow(
                f"select state, attempts, last_error, due_at from {self._table} where key = $1", key,
            )
            return dict(row) if row is not None else None
        return await self._store.run("jobs_state", txn, transaction=False)

    async def run(
        self, handlers: Mapping[str, Handler], batch: int = 20, poll_s: float = 1.0, *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Claim and run jobs due by the clock until cancelled, ``batch`` at a time, polling every ``poll_s`` when
        idle.

        A handler's exception fails that attempt (retried later); a job of an
        unknown kind fails too, so it is seen rather than left waiting.
        """
        task_status.started()
        while True:
            try:
                ran = len(await self._run_batch(handlers, batch, None))
            except (asyncpg.PostgresError, OSError):  # the database is away: the jobs wait for it
                log.exception("claiming jobs failed; retrying")
                ran = 0
            if not ran:
                await trio.sleep(poll_s)

    async def run_due(self, handlers: Mapping[str, Handler], *, now: datetime | None = None, batch: int = 20) -> int:
        """Run every job due by ``now`` (default: the clock), then return how many attempts ran.

        A failed attempt is retried only when its backoff is due, so by a later ``now``. Jobs another
        runner holds are left to it.
        """
        return len(await self.run_due_attempts(handlers, now=now, batch=batch))

    async def run_due_attempts(
        self, handlers: Mapping[str, Handler], *, now: datetime | None = None, batch: int = 20,
    ) -> list[Attempt]:
        """``run_due``, returning each attempt it made (what ran, what failed and why), in no set order."""
        attempts: list[Attempt] = []
        while ran := await self._run_batch(handlers, batch, now):
            attempts += ran
        return attempts

    async def _run_batch(self, handlers: Mapping[str, Handler], batch: int, now: datetime | None) -> list[Attempt]:
        jobs = await self.claim(batch, now=now)
        attempts: list[Attempt] = []

        async def run_one(job: Job) -> None:
            attempts.append(await self._run_one(handlers, job, now))
        async with trio.open_nursery() as nursery:
            for job in jobs:
                nursery.start_soon(run_one, job)
        return attempts

    async def _run_one(self, handlers: Mapping[str, Handler], job: Job, now: datetime | None) -> Attempt:
        """Run one attempt within its lease (after it another runner may take the job), then record it."""
        handler = handlers.get(job.kind)
        try:
            try:
                if handler is None:
                    raise LookupError(f"no handler for job kind {job.kind!r}")
                with trio.fail_after(self.lease_s * LEASE_USE):
                    await handler(job)
            except Exception as exc:
                log.warning("job failed", extra={"key": job.key, "kind": job.kind, "attempt": job.attempt})
                error = f"{type(exc).__name__}: {exc}"
                await self.fail(job, error, now=now)
                return Attempt(job, error)
            if not await self.complete(job):
                log.warning("job finished after its lease passed", extra={"key": job.key, "attempt": job.attempt})
                return Attempt(job, "finished after its lease passed; another runner holds the job")
            return Attempt(job)
        except (asyncpg.PostgresError, OSError) as exc:  # recording failed: the lease runs out and the job is retried
            log.exception("recording a job's outcome failed", extra={"key": job.key})
            return Attempt(job, f"recording the outcome failed: {type(exc).__name__}: {exc}")
