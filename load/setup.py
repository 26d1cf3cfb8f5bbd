"""Bulk set-up of a scenario's accounts, conversations, old messages and sessions (NFR-3).

Thousands of users and groups are made with a few array statements, not one
request each, and every step skips what exists, so ``imload setup`` can be run
again. Sessions are minted here the way the server mints them (a session row
and a token signed with the servers' key): a load run of 10,000 clients cannot
wait for 10,000 argon2 password checks.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from imserver import auth
from imserver.model import MemberRole, address
from imserver.store import accounts
from imserver.store.conversations import direct_conv_txn, set_members_txn
from load.scenario import Scenario
from pgtrio.bridge import Store

LOAD_PASSWORD = "imload-pass-1"
"""Every load account's password, so a person can log in as one and look around."""

FILLER = "今天促排第八天医生说卵泡发育得不错明天再来抽血看激素水平大家移植后都注意休息保持心情愉快"


def chat_text(size_bytes: int) -> str:
    """Chinese chat text of about ``size_bytes`` in UTF-8 (3 bytes a character), at least one character."""
    chars = max(size_bytes // 3, 1)
    return (FILLER * (chars // len(FILLER) + 1))[:chars]


@dataclass(frozen=True)
class Layout:
    """What exists in the database for a scenario, by user number and conversation index."""

    user_ids: list[int]
    groups: list[int]
    pairs: list[int]

    def group_address(self, group: int) -> str:
        return address("group", self.groups[group])

    def pair_address(self, pair: int) -> str:
        return address("direct", self.pairs[pair])

    def conv_ids(self) -> list[int]:
        return self.groups + self.pairs


async def setup(store: Store, scenario: Scenario) -> Layout:
    """Create what is missing and return the layout (idempotent)."""
    password_hash = await auth.hash_password(LOAD_PASSWORD)
    await store.run("load_users", _create_users_txn, scenario, password_hash)
    staff = await accounts.user_by_name(store, _staff(scenario))
    assert staff is not None
    ids = await _user_ids(store, scenario)
    await store.run("load_groups", _create_groups_txn, scenario, ids, staff.id)
    await store.run("load_pairs", _create_pairs_txn, scenario, ids)
    layout = await layout_of(store, scenario, ids)
    if scenario.prefill_messages:
        await store.run("load_prefill", _prefill_txn, scenario, layout)
    return layout


async def layout_of(store: Store, scenario: Scenario, ids: list[int] | None = None) -> Layout:
    """The layout ``setup`` made (``ids``: the users', if already known). Error handling: LookupError if it
    has not been run."""
    ids = ids if ids is not None else await _user_ids(store, scenario)

    async def txn(conn: asyncpg.Connection) -> tuple[list[int], list[int]]:
        rows = await conn.fetch(
            "select name, min(id) as id from conversations where kind = 'group' and name = any($1) group by name",
            [scenario.group_name(g) for g in range(scenario.groups)],
        )
        by_name = {r["name"]: r["id"] for r in rows}
        keys = [_pair_key(ids, p) for p in range(scenario.dm_pairs)]
        pairs = {r["direct_key"]: r["id"] for r in await conn.fetch(
            "select direct_key, id from conversations where direct_key = any($1)", keys,
        )}
        if len(by_name) < scenario.groups or len(pairs) < scenario.dm_pairs:
            raise LookupError(f"scenario {scenario.name!r} is not set up: run `imload setup` first")
        return [by_name[scenario.group_name(g)] for g in range(scenario.groups)], [pairs[k] for k in keys]
    groups, pairs = await store.run("load_layout", txn, transaction=False)
    return Layout(ids, groups, pairs)


async def mint_tokens(store: Store, user_ids: list[int], *, device: str = "imload", hours: float = 12) -> list[str]:
    """A new session and its token for each user, in one statement."""
    signer = auth.TokenSigner(await accounts.server_key(store, "token_hmac"))
    sessions = [uuid.uuid4() for _ in user_ids]
    expires = datetime.now(UTC) + timedelta(hours=hours)

    async def txn(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "insert into sessions (id, user_id, device, readonly, expires_at)"
            " select s, u, $3, false, $4 from unnest($1::uuid[], $2::bigint[]) x(s, u)",
            sessions, user_ids, device, expires,
        )
    await store.run("load_sessions", txn)
    return [signer.issue(s, expires.timestamp()) for s in sessions]


async def conv_positions(store: Store, conv_ids: list[int]) -> dict[int, int]:
    """The last seq of each conversation (where a run starts counting)."""
    async def txn(conn: asyncpg.Connection) -> dict[int, int]:
        rows = await conn.fetch("select id, last_seq from conversations where id = any($1)", conv_ids)
        return {r["id"]: r["last_seq"] for r in rows}
    return await store.run("load_positions", txn, transaction=False)


async def stored_since(store: Store, start: dict[int, int]) -> dict[int, dict[int, int]]:
    """Messages stored after ``start``, per conversation and sender: the durable truth a run is checked against."""
    async def txn(conn: asyncpg.Connection) -> dict[int, dict[int, int]]:
        rows = await conn.fetch(
            "select m.conv_id, m.sender_id, count(*) as n from messages m"
            " join unnest($1::bigint[], $2::bigint[]) x(c, s) on m.conv_id = x.c and m.seq > x.s"
            " group by m.conv_id, m.sender_id",
            list(start), list(start.values()),
        )
        found: dict[int, dict[int, int]] = {c: {} for c in start}
        for r in rows:
            found[r["conv_id"]][r["sender_id"]] = r["n"]
        return found
    return await store.run("load_count", txn, transaction=False)


def _staff(scenario: Scenario) -> str:
    return f"ld-{scenario.name}-staff"


async def _user_ids(store: Store, scenario: Scenario) -> list[int]:
    names = [scenario.username(n) for n in range(scenario.users)]

    async def txn(conn: asyncpg.Connection) -> dict[str, int]:
        rows = await conn.fetch("select username, id from users where username = any($1)", names)
        return {r["username"]: r["id"] for r in rows}
    found = await store.run("load_user_ids", txn, transaction=False)
    if len(found) < len(names):
        raise LookupError(f"scenario {scenario.name!r} is not set up: run `imload setup` first")
    return [found[name] for name in names]


async def _create_users_txn(conn: asyncpg.Connection, scenario: Scenario, password_hash: str) -> None:
    names = [scenario.username(n) for n in range(scenario.users)]
    await conn.execute(
        "insert into users (username, display_name, role, password_hash)"
        " select u, '压测患者' || lpad(n::text, 6, '0'), 'patient', $3"
        " from unnest($1::text[], $2::int[]) x(u, n) on conflict (username) do nothing",
        names, list(range(scenario.users)), password_hash,
    )
    await conn.execute(
        "insert into users (username, display_name, role, password_hash, title)"
        " values ($1, '压测护士', 'staff', $2, '护士') on conflict (username) do nothing",
        _staff(scenario), password_hash,
    )


async def _create_groups_txn(conn: asyncpg.Connection, scenario: Scenario, ids: list[int], staff_id: int) -> None:
    names = [scenario.group_name(g) for g in range(scenario.groups)]
    existing = {r["name"] for r in await conn.fetch(
        "select name from conversations where kind = 'group' and name = any($1)", names,
    )}
    for group, name in enumerate(names):
        if name in existing:
            continue
        conv_id = await conn.fetchval("insert into conversations (kind, name) values ('group', $1) returning id", name)
        members = [(staff_id, MemberRole.OWNER)]
        members += [(ids[scenario.member(n)], MemberRole.MEMBER) for n in scenario.group_members(group)]
        await set_members_txn(conn, conv_id, members)


async def _create_pairs_txn(conn: asyncpg.Connection, scenario: Scenario, ids: list[int]) -> None:
    for pair in range(scenario.dm_pairs):
        await direct_conv_txn(conn, ids[2 * pair], ids[2 * pair + 1])


def _pair_key(ids: list[int], pair: int) -> str:
    a, b = ids[2 * pair], ids[2 * pair + 1]
    return f"{min(a, b)}:{max(a, b)}"


async def _prefill_txn(conn: asyncpg.Connection, scenario: Scenario, layout: Layout) -> None:
    """Old messages up to ``prefill_messages`` in all, spread evenly, written with COPY."""
    convs = layout.conv_ids()
    have = await conn.fetchval("select count(*) from messages where conv_id = any($1)", convs)
    missing = scenario.prefill_messages - have
    if missing <= 0 or not convs:
        return
    members = {r["conv_id"]: r["ids"] for r in await conn.fetch(
        "select conv_id, array_agg(user_id order by user_id) as ids from members where conv_id = any($1)"
        " group by conv_id", convs,
    )}
    last = {r["id"]: r["last_seq"] for r in await conn.fetch(
        "select id, last_seq from conversations where id = any($1) for update", convs,
    )}
    text = chat_text(scenario.body_bytes)
    day = 86400.0
    now = time.time()
    batch = 200_000
    done = 0
    while done < missing:
        records = []
        for i in range(done, min(missing, done + batch)):
            conv = convs[i % len(convs)]
            last[conv] += 1
            sender = members[conv][last[conv] % len(members[conv])]
            at = datetime.fromtimestamp(now - 180 * day * (1 - i / missing), UTC)
            records.append((conv, last[conv], sender, "text", text, f"prefill-{conv}-{last[conv]}", at))
        await conn.copy_records_to_table(
            "messages", records=records,
            columns=["conv_id", "seq", "sender_id", "kind", "text", "client_id", "created_at"],
        )
        done += len(records)
    await conn.execute(
        "update conversations c set last_seq = x.s from unnest($1::bigint[], $2::bigint[]) x(c, s) where c.id = x.c",
        list(last), list(last.values()),
    )
