"""SQL for conversations, members and read markers."""

from __future__ import annotations

import asyncpg

from imserver.model import MemberRole, MemberState, Roster
from pgtrio.bridge import Store

_SUMMARY = """
    select c.id, c.kind, c.name, c.last_seq, m.role, m.read_seq,
           (select o.user_id from members o where o.conv_id = c.id and o.user_id <> $1 limit 1) as peer_id
    from members m join conversations c on c.id = m.conv_id
    where m.user_id = $1
"""


async def summaries_txn(db: asyncpg.Connection, user_id: int) -> list[asyncpg.Record]:
    """The user's conversations (a direct chat's name is its peer's, which the views mask as needed)."""
    return await db.fetch(_SUMMARY + " order by c.id", user_id)


async def summaries(store: Store, user_id: int) -> list[asyncpg.Record]:
    return await store.run("conv_summaries", summaries_txn, user_id, transaction=False)


async def roster(store: Store, conv_id: int) -> Roster | None:
    return (await rosters(store, [conv_id])).get(conv_id)


async def rosters(store: Store, conv_ids: list[int]) -> dict[int, Roster]:
    """Conversations with their members and member state, three queries however many (missing ones left out)."""
    async def txn(db: asyncpg.Connection) -> dict[int, Roster]:
        convs = await db.fetch(
            "select id, kind, name, muted, allow_friends, family_can_speak, banned_at is not null as banned"
            " from conversations where id = any($1)", conv_ids,
        )
        found = {
            c["id"]: Roster(
                c["id"], c["kind"], c["name"], muted=c["muted"], allow_friends=c["allow_friends"],
                family_can_speak=c["family_can_speak"], banned=c["banned"],
            )
            for c in convs
        }
        for r in await db.fetch("select conv_id, user_id, role from members where conv_id = any($1)", conv_ids):
            found[r["conv_id"]].members[r["user_id"]] = MemberRole(r["role"])
        for r in await db.fetch(
            "select conv_id, user_id, alias_no, isolated, hidden_through from member_state where conv_id = any($1)",
            conv_ids,
        ):
            found[r["conv_id"]].states[r["user_id"]] = MemberState(r["alias_no"], r["isolated"], r["hidden_through"])
        return found
    return await store.run("rosters", txn)


async def group_by_name(store: Store, name: str) -> int | None:
    """The first group of that name, if any."""
    async def txn(db: asyncpg.Connection) -> int | None:
        found: int | None = await db.fetchval(
            "select id from conversations where kind = 'group' and name = $1 order by id limit 1", name
        )
        return found
    return await store.run("group_by_name", txn, transaction=False)


async def recently_active(store: Store, messages: int) -> list[int]:
    """Conversations among the last ``messages`` messages, most recent first (an index range scan on ids)."""
    async def txn(db: asyncpg.Connection) -> list[int]:
        rows = await db.fetch(
            "select conv_id, max(id) as last from messages"
            " where id > (select coalesce(max(id), 0) from messages) - $1 group by conv_id order by last desc",
            messages,
        )
        return [r["conv_id"] for r in rows]
    return await store.run("recently_active", txn, transaction=False)


async def set_members_txn(
    db: asyncpg.Connection, conv_id: int, members: list[tuple[int, MemberRole]], *,
    via: int | None = None, follow: bool = True,
) -> list[tuple[int, MemberRole]]:
    """Add members or change their roles; everyone added or changed, followers included.

    With ``follow`` (groups) a patient brings her linked husband along, who follows
    her in and out (IM-8); everyone gets a pseudonym number in the conversation on
    first joining (IM-6).
    """
    await db.execute("select 1 from conversations where id = $1 for update", conv_id)  # serialises alias numbers
    ids = [u for u, _ in members]
    followers = [] if not follow else await db.fetch(
        "select f.family_id, f.patient_id from family_links f join users p on p.id = f.patient_id"
        " where f.patient_id = any($1) and f.relation = 'husband' and p.role = 'patient'"
        " and not exists (select 1 from members m where m.conv_id = $2 and m.user_id = f.family_id)",
        ids, conv_id,
    )
    rows = [(u, r, via) for u, r in members]
    rows += [(f["family_id"], MemberRole.MEMBER, f["patient_id"]) for f in followers if f["family_id"] not in ids]
    await db.execute(
        "insert into members (conv_id, user_id, role, via_user_id)"
        " select $1, u, r, v from unnest($2::bigint[], $3::text[], $4::bigint[]) x(u, r, v)"
        " on conflict (conv_id, user_id) do update set role = excluded.role",
        conv_id, [r[0] for r in rows], [str(r[1]) for r in rows], [r[2] for r in rows],
    )
    await db.execute(
        "insert into member_state (conv_id, user_id, alias_no)"
        " select $1, u, (select coalesce(max(alias_no), 0) from member_state where conv_id = $1)"
        "   + row_number() over (order by ord)"
        " from unnest($2::bigint[]) with ordinality x(u, ord)"
        " where not exists (select 1 from member_state s where s.conv_id = $1 and s.user_id = x.u)",
        conv_id, [r[0] for r in rows],
    )
    return [(u, r) for u, r, _ in rows]


async def remove_member_txn(db: asyncpg.Connection, conv_id: int, user_id: int) -> list[int]:
    """Remove a member, and the family who came in with her (IM-8, SPEC.md §5.6: family leave with her).

    Returns everyone removed, her family included (empty if she was not a member).
    """
    removed = await db.fetch(
        "delete from members where conv_id = $1 and (user_id = $2 or via_user_id = $2"
        "   and exists (select 1 from members m where m.conv_id = $1 and m.user_id = $2))"
        " returning user_id",
        conv_id, user_id,
    )
    return [r["user_id"] for r in removed]


async def member_role_txn(db: asyncpg.Connection, conv_id: int, user_id: int) -> MemberRole | None:
    """A member's role in a conversation, or None if not a member."""
    role: str | None = await db.fetchval(
        "select role from members where conv_id = $1 and user_id = $2", conv_id, user_id
    )
    return None if role is None else MemberRole(role)


async def update_group_txn(db: asyncpg.Connection, conv_id: int, changes: dict[str, bool]) -> None:
    """Switch group settings (muted, allow_friends, family_can_speak, banned)."""
    columns = {"muted": "muted", "allow_friends": "allow_friends", "family_can_speak": "family_can_speak"}
    sets = [f"{columns[k]} = ${i + 2}" for i, k in enumerate(k for k in changes if k in columns)]
    values = [v for k, v in changes.items() if k in columns]
    if "banned" in changes:
        sets.append(f"banned_at = case when ${len(values) + 2} then coalesce(banned_at, now()) end")
        values.append(changes["banned"])
    await db.execute(f"update conversations set {', '.join(sets)} where id = $1", conv_id, *values)


async def isolate_txn(db: asyncpg.Connection, conv_id: int, user_id: int, isolated: bool) -> None:
    """Isolate a member, or lift it: what she sent before the lift stays hidden (IM-12, IM-13).

    Takes the conversation's lock, as the batch writer does to hand out seqs, so every message
    is stored either wholly before or wholly after the change.
    """
    await db.execute("select 1 from conversations where id = $1 for update", conv_id)
    await db.execute(
        "update member_state s set isolated = $3,"
        " hidden_through = case when not $3 and s.isolated then c.last_seq else s.hidden_through end"
        " from conversations c where c.id = s.conv_id and s.conv_id = $1 and s.user_id = $2",
        conv_id, user_id, isolated,
    )


async def create_group_txn(
    db: asyncpg.Connection, name: str, owner_id: int, member_ids: list[int]
) -> tuple[int, list[tuple[int, MemberRole]]]:
    """A new group with its owner and members; its id, and everyone who joined (followers included)."""
    conv_id: int = await db.fetchval(
        "insert into conversations (kind, name) values ('group', $1) returning id", name
    )
    members = [(owner_id, MemberRole.OWNER)]
    members += [(u, MemberRole.MEMBER) for u in dict.fromkeys(member_ids) if u != owner_id]
    return conv_id, await set_members_txn(db, conv_id, members)


def _direct_key(a: int, b: int) -> str:
    return f"{min(a, b)}:{max(a, b)}"


async def direct_conv_id(store: Store, a: int, b: int) -> int | None:
    """The direct chat of two users if it exists (a read-only session opens none, IM-17)."""
    async def txn(db: asyncpg.Connection) -> int | None:
        found: int | None = await db.fetchval("select id from conversations where direct_key = $1", _direct_key(a, b))
        return found
    return await store.run("direct_conv_id", txn, transaction=False)


async def direct_conv_txn(db: asyncpg.Connection, a: int, b: int) -> tuple[int, list[tuple[int, MemberRole]]]:
    """The direct chat of two users, created with both as members on first use; who joined (none if it existed)."""
    key = _direct_key(a, b)
    conv_id: int | None = await db.fetchval(
        "insert into conversations (kind, direct_key) values ('direct', $1)"
        " on conflict (direct_key) do nothing returning id", key,
    )
    if conv_id is None:
        existing: int = await db.fetchval("select id from conversations where direct_key = $1", key)
        return existing, []
    return conv_id, await set_members_txn(db, conv_id, [(a, MemberRole.MEMBER), (b, MemberRole.MEMBER)],
                                          follow=False)


async def mark_read(store: Store, conv_id: int, user_id: int, seq: int) -> int | None:
    """Move the read marker forward (never back, never past the last seq) and return it; None if not a member."""
    async def txn(db: asyncpg.Connection) -> int | None:
        read_seq: int | None = await db.fetchval(
            "update members m set read_seq = greatest(m.read_seq, least($3, c.last_seq))"
            " from conversations c where c.id = m.conv_id and m.conv_id = $1 and m.user_id = $2"
            " returning m.read_seq",
            conv_id, user_id, seq,
        )
        return read_seq
    return await store.run("mark_read", txn)


async def read_markers(store: Store, conv_id: int) -> tuple[int, dict[int, int]]:
    """The conversation's last seq and each member's read marker."""
    async def txn(db: asyncpg.Connection) -> tuple[int, dict[int, int]]:
        rows = await db.fetch(
            "select c.last_seq, m.user_id, m.read_seq from conversations c join members m on m.conv_id = c.id"
            " where c.id = $1", conv_id,
        )
        return (rows[0]["last_seq"] if rows else 0), {r["user_id"]: r["read_seq"] for r in rows}
    return await store.run("read_markers", txn, transaction=False)
