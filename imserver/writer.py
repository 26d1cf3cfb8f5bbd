"""The batch writer: group commit of messages (DESIGN rule 1, NFR-3), fair to every sender (DESIGN rule 6).

Senders hand drafts to one writer task. While a batch is being committed the
next one gathers, so under load each commit carries many messages and at low
load a message waits for nothing but its own commit. Only after the commit
does the writer hand the new messages to ``Delivery``, which fans them out, and
then call each sender's ``done``: nothing is visible before it is durable.

Each sender has a queue of her own, and a batch takes one draft from each
sender in turn (round robin): a quiet sender's message goes into the next
batch however deep a flooding sender's backlog is. Nothing waits to be queued:
a sender with ``sender_queue`` drafts queued, or one over her fair share while
``queue`` drafts are queued in all, is told ``unavailable`` with a
``retry_after_ms`` at once and nothing is stored (SPEC.md §7.6).

A client id already in flight joins the in-flight draft instead of making a
second one, so a fast resend cannot race its original into two rows.

A draft the database refuses (data it cannot hold, a constraint) fails alone:
its batch is halved until it is, and its neighbours are stored.
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict, deque
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


_RETRYABLE = (asyncpg.PostgresConnectionError, asyncpg.UniqueViolationError, OSError,
              asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_REFUSED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
"""The database will not store this data (SQLSTATE classes 22 and 23; asyncpg's own encoding errors are DataError)."""


RETRY_AFTER_MS = (100, 1000)
"""A shed sender is told to retry after this many milliseconds: the first with the writer's queues empty, growing
linearly to the second with ``queue`` drafts queued (before ±25 % jitter, so shed clients do not come back at once)."""


class Overloaded(ProtocolError):
    """A send shed because the writer's queues are full (SPEC.md §7.6): ``unavailable`` with ``retry_after_ms``."""

    def __init__(self, detail: str, retry_after_ms: int) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, detail, retry_after_ms=retry_after_ms)


class MessageWriter:
    """The one task that stores messages: it gathers drafts into batches, one from each sender in turn, commits
    each, then hands the batch to delivery and answers the senders."""

    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        *,
        max_batch: int = 100,
        queue: int = 10_000,
        sender_queue: int = 500,
        retries: int = 3,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._max_batch = max_batch
        self._bound = queue
        self._sender_bound = sender_queue
        self._retries = retries
        self._jitter = jitter
        self._queues: OrderedDict[int, deque[Pending]] = OrderedDict()
        """Drafts waiting, by sender id; the order of the senders is the order they are served in."""
        self._queued = 0
        self._wakeup = trio.Event()
        self._committed = trio.Event()
        self._closed = False
        self._inflight: dict[tuple[int, str], Pending] = {}
        self.finished = trio.Event()
        """Set when ``run`` has written everything queued before ``close``."""
        metrics.WRITER_QUEUE.set_function(lambda: self._queued)

    def admit(self, sender_id: int) -> None:
        """Return if a new draft of this sender would be queued now: a handler asks before the work of making it.

        Error handling: raises Overloaded (``unavailable`` with ``retry_after_ms``) when her queue is full, or
        when all are and she has her fair share queued (SPEC.md §7.6); ProtocolError ``unavailable`` without it
        after ``close`` (the server is shutting down: reconnect).
        """
        if self._closed:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "shutting down")
        mine = len(self._queues.get(sender_id, ()))
        if mine >= self._sender_bound:
            bound = "sender"
        elif self._queued >= self._bound and mine * len(self._queues) >= self._bound:
            bound = "total"  # a sender below her share (bound / senders queued) still gets in: the heaviest are shed
        else:
            return
        metrics.SENDS_SHED.labels(bound).inc()
        low, high = RETRY_AFTER_MS
        wait = low + (high - low) * min(self._queued / self._bound, 1)
        raise Overloaded(f"overloaded: {mine} of your messages are queued", round(wait * (0.75 + 0.5 * self._jitter())))

    def submit(self, draft: Draft, done: Callable[[Outcome], None], origin: Connection | None = None) -> None:
        """Queue a draft from ``origin``, or join the draft of the same client id in flight; ``done`` is called
        once with its outcome. Never waits.

        Error handling: as ``admit`` (then nothing is queued and ``done`` is never called).
        """
        key = (draft.sender_id, draft.cid)
        leader = self._inflight.get(key)
        if leader is not None:
            leader.followers.append(done)
            return
        self.admit(draft.sender_id)
        pending = Pending(draft, done, origin)
        self._queues.setdefault(draft.sender_id, deque()).append(pending)
        self._queued += 1
        self._inflight[key] = pending
        self._wakeup.set()

    def close(self) -> None:
        """Stop accepting drafts; ``run`` returns once everything queued is written."""
        self._closed = True
        self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while self._queued or not self._closed:
            if not self._queued:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                continue
            await self._write(self._next_batch())
            self._committed.set()
            self._committed = trio.Event()
        self._committed.set()
        self.finished.set()

    async def wait_committed(self) -> None:
        """Until the writer has written its next batch (or stopped)."""
        await self._committed.wait()

    def _next_batch(self) -> list[Pending]:
        """Up to ``max_batch`` drafts, one from each sender in turn; a sender served goes to the back of the line,
        so the next batch goes on where this one stopped."""
        batch: list[Pending] = []
        queues = self._queues
        while queues and len(batch) < self._max_batch:
            sender, queue = queues.popitem(last=False)
            batch.append(queue.popleft())
            if queue:
                queues[sender] = queue
        self._queued -= len(batch)
        return batch

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
