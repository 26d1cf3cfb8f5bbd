"""Who acts, with what, and the one transaction every action runs in (``transact``)."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from imserver import bus
from imserver.model import Role, User
from imserver.store import moderation
from pgtrio.bridge import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who performs an action, as the audit log records them (SEC-1)."""

    id: int | None
    """Their account; None for an operator at the command line."""
    name: str
    """A username, or ``cli:<os user>`` for an operator."""
    role: Role
    remote: str
    """Where the request came from: a client's address, or ``cli``."""

    @classmethod
    def of(cls, user: User, remote: str) -> Actor:
        return cls(user.id, user.username, user.role, remote)

    @classmethod
    def operator(cls) -> Actor:
        """Whoever runs an ``imserver`` command: they hold the database, so they act as an admin."""
        return cls(None, f"cli:{getpass.getuser()}", Role.ADMIN, "cli")


async def _nothing(events: Sequence[bus.Event]) -> None:
    """A process without caches (the command line, the console) has nothing to bring up to date."""


@dataclass(frozen=True)
class Context:
    """What actions run with: the database, and what this process does with its own events once committed."""

    store: Store
    committed: Callable[[Sequence[bus.Event]], Awaitable[None]] = _nothing


@dataclass
class Tx:
    """One action's transaction: the database connection, the actor, and the events to announce."""

    db: asyncpg.Connection
    actor: Actor
    events: list[bus.Event] = field(default_factory=list)

    def emit(self, event: bus.Event) -> None:
        """Announce ``event`` to every node once (and only if) this transaction commits."""
        self.events.append(event)

    async def audit(
        self, action: str, *, target_id: int | None = None, conv_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record the action in the audit log (SEC-1), in this transaction: the change and its record are one."""
        await moderation.audit_txn(
            self.db, actor_id=self.actor.id, actor=self.actor.name, action=action, target_id=target_id,
            conv_id=conv_id, detail=detail, remote=self.actor.remote,
        )


async def transact(ctx: Context, actor: Actor, desc: str, body: Callable[[Tx], Awaitable[T]]) -> T:
    """Run ``body`` in one transaction; queue its events for the bus in it; after the commit, apply them here.

    Error handling: whatever ``body`` raises rolls the whole transaction back, its audit entry and
    events included, and reaches the caller unchanged.
    """
    async def txn(db: asyncpg.Connection) -> tuple[T, list[bus.Event]]:
        tx = Tx(db, actor)
        result = await body(tx)
        for event in tx.events:
            await bus.publish_txn(db, event)
        return result, tx.events
    result, events = await ctx.store.run(desc, txn)
    if events:
        await ctx.committed(events)
    return result
