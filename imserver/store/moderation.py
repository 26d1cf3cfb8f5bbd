"""SQL for the audit log, the sensitive-word list and friend requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from imserver.model import address
from pgtrio.bridge import Store
from protocol.frames import Policy


async def audit_txn(
    db: asyncpg.Connection, *, actor_id: int | None, actor: str, action: str, target_id: int | None = None,
    conv_id: int | None = None, detail: dict[str, Any] | None = None, remote: str = "",
) -> None:
    """Record one moderation action or staff access (SEC-1), in the transaction that does it."""
    await db.execute(
        "insert into audit_log (actor_id, actor, action, target_id, conv_id, detail, remote)"
        " values ($1, $2, $3, $4, $5, $6, $7)",
        actor_id, actor, action, target_id, conv_id, detail or {}, remote,
    )


async def audit_entries(
    store: Store, *, since: datetime | None, actor: str | None, limit: int
) -> list[dict[str, Any]]:
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            "select a.id, a.at, a.actor, a.action, t.username as target, a.conv_id, c.kind as conv_kind,"
            " a.detail, a.remote"
            " from audit_log a left join users t on t.id = a.target_id left join conversations c on c.id = a.conv_id"
            " where ($1::timestamptz is null or a.at >= $1) and ($2::text is null or a.actor = $2)"
            " order by a.id limit $3",
            since, actor, limit,
        )
    return [
        {"id": r["id"], "at": r["at"].isoformat(), "actor": r["actor"], "action": r["action"],
         "target": r["target"], "conv": None if r["conv_id"] is None else address(r["conv_kind"], r["conv_id"]),
         "detail": r["detail"], "remote": r["remote"]}
        for r in await store.run("audit_entries", txn, transaction=False)
    ]


async def words(store: Store) -> list[tuple[str, Policy]]:
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch("select word, policy from sensitive_words order by word")
    return [(r["word"], r["policy"]) for r in await store.run("words", txn, transaction=False)]


async def set_word_txn(db: asyncpg.Connection, word: str, policy: str | None, actor_id: int | None) -> bool:
    """Add or change a word (``policy``), or remove it (None); False if there was nothing to remove."""
    if policy is None:
        changed = await db.fetchval("delete from sensitive_words where word = $1 returning true", word)
    else:
        changed = await db.fetchval(
            "insert into sensitive_words (word, policy, created_by) values ($1, $2, $3)"
            " on conflict (word) do update set policy = excluded.policy returning true",
            word, policy, actor_id,
        )
    return bool(changed)


async def are_friends_txn(db: asyncpg.Connection, a: int, b: int) -> bool:
    return bool(await db.fetchval(
        "select true from friendships where low_id = $1 and high_id = $2", min(a, b), max(a, b)
    ))


async def request_friend_txn(db: asyncpg.Connection, conv_id: int, from_id: int, to_id: int) -> int:
    """A pending request (the existing one if asked twice)."""
    found: int | None = await db.fetchval(
        "insert into friend_requests (conv_id, from_id, to_id) values ($1, $2, $3)"
        " on conflict (from_id, to_id) where status = 'requested' do nothing returning id",
        conv_id, from_id, to_id,
    )
    if found is None:
        found = await db.fetchval(
            "select id from friend_requests where from_id = $1 and to_id = $2 and status = 'requested'",
            from_id, to_id,
        )
    assert found is not None
    return found


async def pending_friend_requests(store: Store, to_id: int) -> list[tuple[int, int, int]]:
    """(request id, conversation, requester) of the requests waiting for ``to_id``'s answer, oldest first."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            "select id, conv_id, from_id from friend_requests where to_id = $1 and status = 'requested' order by id",
            to_id,
        )
    return [(r["id"], r["conv_id"], r["from_id"]) for r in await store.run("pending_friends", txn, transaction=False)]


async def answer_friend_txn(db: asyncpg.Connection, request_id: int, to_id: int, accept: bool) -> int | None:
    """Accept (and record the friendship) or reject a request addressed to ``to_id``; the requester, or None if
    there is no such request."""
    from_id: int | None = await db.fetchval(
        "update friend_requests set status = $3 where id = $1 and to_id = $2 and status = 'requested'"
        " returning from_id",
        request_id, to_id, "accepted" if accept else "rejected",
    )
    if from_id is not None and accept:
        a, b = sorted((from_id, to_id))
        await db.execute("insert into friendships (low_id, high_id) values ($1, $2) on conflict do nothing", a, b)
    return from_id
