"""SQL for setting up many accounts and conversations at once, and for counting what was stored (imserver/admin.py).

A few array statements each, not one statement per row: a load database of 10,000 users, hundreds of groups and a
million old messages is made in seconds (NFR-3). Every ``*_txn`` that creates skips what exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from imserver.store.conversations import create_group_txn, direct_conv_txn


async def create_users_txn(
    db: asyncpg.Connection, users: Sequence[tuple[str, str, str, str]], password_hash: str
) -> None:
    """Accounts (username, display name, role, title) sharing one password; usernames that exist are kept."""
    await db.execute(
        "insert into users (username, display_name, role, title, password_hash)"
        " select u, n, r, t, $5 from unnest($1::text[], $2::text[], $3::text[], $4::text[]) x(u, n, r, t)"
        " on conflict (username) do nothing",
        [u[0] for u in users], [u[1] for u in users], [u[2] for u in users], [u[3] for u in users], password_hash,
    )


async def user_ids_txn(db: asyncpg.Connection, usernames: Sequence[str]) -> dict[str, int]:
    rows = await db.fetch("select username, id from users where username = any($1)", list(usernames))
    return {r["username"]: r["id"] for r in rows}


async def group_ids_txn(db: asyncpg.Connection, names: Sequence[str]) -> dict[str, int]:
    """The first group of each name (groups are not unique by name)."""
    rows = await db.fetch(
        "select name, min(id) as id from conversations where kind = 'group' and name = any($1) group by name",
        list(names),
    )
    return {r["name"]: r["id"] for r in rows}


async def create_groups_txn(db: asyncpg.Connection, groups: Sequence[tuple[str, int, Sequence[int]]]) -> None:
    """Groups (name, owner, members) whose name is not taken yet."""
    existing = await group_ids_txn(db, [name for name, _, _ in groups])
    for name, owner, members in groups:
        if name not in existing:
            await create_group_txn(db, name, owner, list(members))


async def direct_ids_txn(db: asyncpg.Connection, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
    keys = {f"{min(a, b)}:{max(a, b)}": (a, b) for a, b in pairs}
    rows = await db.fetch("select direct_key, id from conversations where direct_key = any($1)", list(keys))
    return {keys[r["direct_key"]]: r["id"] for r in rows}


async def create_directs_txn(db: asyncpg.Connection, pairs: Sequence[tuple[int, int]]) -> None:
    for a, b in pairs:
        await direct_conv_txn(db, a, b)


async def prefill_txn(
    db: asyncpg.Connection, conv_ids: Sequence[int], total: int, text: str, until: datetime, span: timedelta
) -> int:
    """Old messages up to ``total`` in all over ``conv_ids``, spread evenly over them and over ``span`` before
    ``until``, each member sending in turn; written with COPY. Returns how many were written."""
    convs = list(conv_ids)
    have = await db.fetchval("select count(*) from messages where conv_id = any($1)", convs)
    missing = total - have
    if missing <= 0 or not convs:
        return 0
    members = {r["conv_id"]: r["ids"] for r in await db.fetch(
        "select conv_id, array_agg(user_id order by user_id) as ids from members where conv_id = any($1)"
        " group by conv_id", convs,
    )}
    last = {r["id"]: r["last_seq"] for r in await db.fetch(
        "select id, last_seq from conversations where id = any($1) for update", convs,
    )}
    batch = 200_000
    done = 0
    while done < missing:
        records = []
        for i in range(done, min(missing, done + batch)):
            conv = convs[i % len(convs)]
            last[conv] += 1
            sender = members[conv][last[conv] % len(members[conv])]
            at = until - span * (1 - i / missing)
            records.append((conv, last[conv], sender, "text", text, f"prefill-{conv}-{last[conv]}", at))
        await db.copy_records_to_table(
            "messages", records=records,
            columns=["conv_id", "seq", "sender_id", "kind", "text", "client_id", "created_at"],
        )
        done += len(records)
    await db.execute(
        "update conversations c set last_seq = x.s from unnest($1::bigint[], $2::bigint[]) x(c, s) where c.id = x.c",
        list(last), list(last.values()),
    )
    return missing


async def create_sessions_txn(
    db: asyncpg.Connection, user_ids: Sequence[int], device: str, expires_at: datetime
) -> list[uuid.UUID]:
    """A new session for each user, in one statement."""
    sessions = [uuid.uuid4() for _ in user_ids]
    await db.execute(
        "insert into sessions (id, user_id, device, readonly, expires_at)"
        " select s, u, $3, false, $4 from unnest($1::uuid[], $2::bigint[]) x(s, u)",
        sessions, list(user_ids), device, expires_at,
    )
    return sessions


async def last_seqs_txn(db: asyncpg.Connection, conv_ids: Sequence[int]) -> dict[int, int]:
    rows = await db.fetch("select id, last_seq from conversations where id = any($1)", list(conv_ids))
    return {r["id"]: r["last_seq"] for r in rows}


async def stored_since_txn(db: asyncpg.Connection, start: dict[int, int]) -> dict[int, dict[int, int]]:
    """Messages stored after ``start`` (conversation: seq), per conversation and sender."""
    rows = await db.fetch(
        "select m.conv_id, m.sender_id, count(*) as n from messages m"
        " join unnest($1::bigint[], $2::bigint[]) x(c, s) on m.conv_id = x.c and m.seq > x.s"
        " group by m.conv_id, m.sender_id",
        list(start), list(start.values()),
    )
    found: dict[int, dict[int, int]] = {c: {} for c in start}
    for r in rows:
        found[r["conv_id"]][r["sender_id"]] = r["n"]
    return found

