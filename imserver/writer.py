"""The batch writer: group commit of messages (DESIGN rule 1, NFR-3).

Senders hand drafts to one writer task. While a batch is being committed the
next one gathers, so under load each commit carries many messages and at low
load a message waits for nothing but its own commit. Only after the commit
does the writer hand the new messages to ``Delivery``, which fans them out, and
then call each sender's ``done``: nothing is visible before it is durable.

A client id already in flight joins the in-flight draft instead of making a
second one, so a fast resend cannot race its original into two rows.

A draft the database refuses (data it cannot hold, a constraint) fails alone:
its batch is halved until it is, and its neighbours are stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import asyncpg
import trio

from imserver import metrics
from imserver.connection import Connection
from imserver.delivery import Delivery
from imserver.store.messages import Draft, Stored, write_batch
from pgtrio.bridge import Store
from protocol import ErrorCode, ProtocolError

log = logging.getLogger(__name__)

Outcome = Stored | ProtocolError
"""What became of a draft: where it is stored, or what its sender is told (without the request's ``rid``)."""


@dataclass(eq=False)
class Pending:
    """A draft, the connection it came from (which gets the answer, not the push), and whoever waits for it."""

    draft: Draft
    done: Callable[[Outcome], None]
    origin: Connection | None
    followers: list[Callable[[Outcome], None]] = field(default_factory=list)


class WriterClosed(Exception):
    """The writer no longer accepts drafts (the server is shutting down)."""


_RETRYABLE = (asyncpg.PostgresConnectionError, asyncpg.UniqueViolationError, OSError,
              asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_REFUSED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
"""The database will not store this data (SQLSTATE classes 22 and 23; asyncpg's own encoding errors are DataError)."""


class MessageWriter:
    """The one task that stores messages: it gathers drafts into batches, commits each, then hands the batch to
    delivery and answers the senders."""

    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        *,
        max_batch: int = 500,
        queue: int = 10_000,
        retries: int = 3,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._max_batch = max_batch
        self._retries = retries
        self._send, self._recv = trio.open_memory_channel[Pending](queue)
        self._inflight: dict[tuple[int, str], Pending] = {}
        self.finished = trio.Event()
        """Set when ``run`` has written everything queued before ``close``."""
        metrics.WRITER_QUEUE.set_function(lambda: self._recv.statistics().current_buffer_used)

    async def submit(self, draft: Draft, done: Callable[[Outcome], None], origin: Connection | None = None) -> None:
        """Queue a draft from ``origin``; ``done`` is called once with its outcome. Waits only if the queue is full.

        Error handling: raises WriterClosed after ``close``.
        """
        key = (draft.sender_id, draft.cid)
        leader = self._inflight.get(key)
        if leader is not None:
            leader.followers.append(done)
            return
        pending = Pending(draft, done, origin)
        try:
            await self._send.send(pending)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise WriterClosed from None
        self._inflight[key] = pending

    def close(self) -> None:
        """Stop accepting drafts; ``run`` returns once everything queued is written."""
        self._send.close()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self._recv:
            async for first in self._recv:
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._recv.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._write(batch)
        self.finished.set()

    async def _write(self, batch: list[Pending]) -> None:
        drafts = [p.draft for p in batch]
        outcomes: list[Stored] | Exception
        for attempt in range(self._retries + 1):
            started = time.perf_counter()
            try:
                outcomes = await self._store.run("write_batch", write_batch, drafts, transaction=False)
                break
            except _RETRYABLE as exc:
                log.warning("batch write failed, attempt %d: %r", attempt + 1, exc)
                outcomes = exc
                await trio.sleep(0.05 * 2**attempt)
            except Exception as exc:  # refused data, or a bug: fail this batch, keep serving
                outcomes = exc
                break
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        if isinstance(outcomes, Exception) and not isinstance(outcomes, _RETRYABLE) and len(batch) > 1:
            # What the database refused in one draft must not fail the others: halve the batch until the
            # draft it refuses is alone (a few more commits), and store its neighbours in their order.
            half = len(batch) // 2
            await self._write(batch[:half])
            await self._write(batch[half:])
            return
        for pending in batch:
            del self._inflight[(pending.draft.sender_id, pending.draft.cid)]
        if isinstance(outcomes, Exception):
            error = _failure(outcomes, batch[0].draft)
            for pending in batch:
                for done in (pending.done, *pending.followers):
                    done(error)
            return
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.MESSAGES_IN.inc(sum(not s.dup for s in outcomes))
        self._delivery.committed([(p.draft, s, p.origin) for p, s in zip(batch, outcomes, strict=True) if not s.dup])
        for pending, stored in zip(batch, outcomes, strict=True):
            pending.done(stored)
            for follower in pending.followers:
                follower(replace(stored, dup=True))


def _failure(exc: Exception, draft: Draft) -> ProtocolError:
    """What a sender is told when her draft could not be stored; ``draft`` is the one refused, if alone.

    Only a database out of reach is worth retrying (``unavailable``); a draft the database refuses fails
    the same way every time, so its sender must not resend it (``bad_request``), nor after a bug (``internal``).
    """
    if isinstance(exc, _RETRYABLE):
        return ProtocolError(ErrorCode.UNAVAILABLE)
    where = {"conv_id": draft.conv_id, "sender_id": draft.sender_id, "cid": draft.cid}
    if isinstance(exc, _REFUSED):  # its text may quote the message: neither logged nor told
        why = f"{type(exc).__name__} (SQLSTATE {exc.sqlstate})"
        log.warning("the database refused a message: %s", why, extra=where)
        return ProtocolError(ErrorCode.BAD_REQUEST, f"the database cannot store this message: {why}")
    log.error("storing a message failed", exc_info=exc, extra=where)
    return ProtocolError(ErrorCode.INTERNAL)
