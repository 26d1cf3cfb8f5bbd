"""SQL for conversations, members and read markers."""

from __future__ import annotations

from typing import Any

import asyncpg

from imserver.bus import MembersChanged, notify_txn
from imserver.model import MemberRole, Roster
from imserver.store.bridge import Store

_SUMMARY = """
    select c.id, c.kind, c.last_seq, m.role, m.read_seq,
           case when c.kind = 'group' then c.name else coalesce((
               select u.display_name from members o join users u on u.id = o.user_id
               where o.conv_id = c.id and o.user_id <> $1 limit 1), '') end as name,
           (select count(*) from messages x
             where x.conv_id = c.id and x.seq > m.read_seq and x.sender_id <> $1) as unread
    from members m join conversations c on c.id = m.conv_id
    where m.user_id = $1
"""


def address(kind: str, conv_id: int) -> str:
    return f"{'g' if kind == 'group' else 'd'}:{conv_id}"


def summary(row: asyncpg.Record) -> dict[str, Any]:
    """A conversation as the ``convs`` and ``sync`` answers show it (SPEC.md §5.5)."""
    return {
        "conv": address(row["kind"], row["id"]), "kind": row["kind"], "name": row["name"],
        "role": row["role"], "last_seq": row["last_seq"], "read_seq": row["read_seq"],
        "unread": row["unread"],
    }


async def summaries_txn(conn: asyncpg.Connection, user_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(_SUMMARY + " order by c.id", user_id)


async def summaries(store: Store, user_id: int) -> list[dict[str, Any]]:
    rows = await store.run("conv_summaries", summaries_txn, user_id, transaction=False)
    return [summary(r) for r in rows]


async def roster(store: Store, conv_id: int) -> Roster | None:
    async def txn(conn: asyncpg.Connection) -> Roster | None:
        conv = await conn.fetchrow("select kind, name from conversations where id = $1", conv_id)
        if conv is None:
            return None
        rows = await conn.fetch("select user_id, role from members where conv_id = $1", conv_id)
        return Roster(conv_id, conv["kind"], conv["name"], {r["user_id"]: MemberRole(r["role"]) for r in rows})
    return await store.run("roster", txn)


async def set_members_txn(
    conn: asyncpg.Connection, conv_id: int, members: list[tuple[int, MemberRole]]
) -> None:
    """Add members or change their roles, and announce it."""
    await conn.execute(
        "insert into members (conv_id, user_id, role) select $1, u, r from unnest($2::bigint[], $3::text[]) x(u, r)"
        " on conflict (conv_id, user_id) do update set role = excluded.role",
        conv_id, [u for u, _ in members], [str(r) for _, r in members],
    )
    await notify_txn(conn, MembersChanged(conv_id, [(u, str(r)) for u, r in members]))


async def remove_member_txn(conn: asyncpg.Connection, conv_id: int, user_id: int) -> bool:
    """Remove a member and announce it; False if they were not a member."""
    removed = await conn.fetchval(
        "delete from members where conv_id = $1 and user_id = $2 returning true", conv_id, user_id
    )
    if removed:
        await notify_txn(conn, MembersChanged(conv_id, [(user_id, None)]))
    return bool(removed)


async def create_group_txn(
    conn: asyncpg.Connection, name: str, owner_id: int, member_ids: list[int]
) -> int:
    conv_id: int = await conn.fetchval(
        "insert into conversations (kind, name) values ('group', $1) returning id", name
    )
    members = [(owner_id, MemberRole.OWNER)]
    members += [(u, MemberRole.MEMBER) for u in dict.fromkeys(member_ids) if u != owner_id]
    await set_members_txn(conn, conv_id, members)
    return conv_id


async def direct_conv_txn(conn: asyncpg.Connection, a: int, b: int) -> int:
    """The direct chat of two users, created with both as members on first use."""
    key = f"{min(a, b)}:{max(a, b)}"
    conv_id: int | None = await conn.fetchval(
        "insert into conversations (kind, direct_key) values ('direct', $1)"
        " on conflict (direct_key) do nothing returning id", key,
    )
    if conv_id is None:
        existing: int = await conn.fetchval("select id from conversations where direct_key = $1", key)
        return existing
    await set_members_txn(conn, conv_id, [(a, MemberRole.MEMBER), (b, MemberRole.MEMBER)])
    return conv_id


async def mark_read(store: Store, conv_id: int, user_id: int, seq: int) -> tuple[int, int] | None:
    """Move the read marker forward (never back, never past the last seq); return it and the unread count."""
    async def txn(conn: asyncpg.Connection) -> tuple[int, int] | None:
        read_seq = await conn.fetchval(
            "update members m set read_seq = greatest(m.read_seq, least($3, c.last_seq))"
            " from conversations c where c.id = m.conv_id and m.conv_id = $1 and m.user_id = $2"
            " returning m.read_seq",
            conv_id, user_id, seq,
        )
        if read_seq is None:
            return None
        unread = await conn.fetchval(
            "select count(*) from messages where conv_id = $1 and seq > $2 and sender_id <> $3",
            conv_id, read_seq, user_id,
        )
        return read_seq, unread
    return await store.run("mark_read", txn)
