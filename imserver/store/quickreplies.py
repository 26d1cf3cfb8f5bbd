"""SQL for care teams, quick replies and their use counts (MSG-3).

A staff account may use a quick reply that is its own, of a team it is in, or
shared; ``_USABLE`` says so in SQL (the caller's id is always ``$1``), and every
read and the attachment check go through it.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import asyncpg

from imserver.model import Role
from pgtrio.bridge import Store
from protocol.frames import Scope

_USABLE = (
    "(q.scope = 'shared' or q.owner_id = $1"
    " or q.team_id in (select m.team_id from team_members m where m.user_id = $1))"
)
_SELECT = (
    "select q.id, q.scope, q.owner_id, q.team_id, t.name as team, q.shortcut, q.title, q.kind, q.text, q.body,"
    " coalesce(u.uses, 0) as uses"
    " from quick_replies q left join teams t on t.id = q.team_id"
    " left join quick_reply_uses u on u.reply_id = q.id and u.user_id = $1"
)
_SCOPE_ORDER = "array_position(array['personal', 'team', 'shared'], q.scope)"


@dataclass(frozen=True)
class QuickReply:
    """A stored quick reply, and how often the user who asked used it."""

    id: int
    scope: Scope
    owner_id: int | None
    team_id: int | None
    team: str | None
    shortcut: str
    title: str
    kind: str
    text: str
    """The template of a ``text`` reply; the fallback text of another kind's template body."""
    body: dict[str, Any] | None
    uses: int = 0
    """How often the user who asked used it."""

    @property
    def template(self) -> Any:
        return self.text if self.body is None else self.body


def _reply(row: asyncpg.Record) -> QuickReply:
    return QuickReply(**dict(row))


async def listing(store: Store, user_id: int, scope: str | None) -> list[QuickReply]:
    """The quick replies ``user_id`` may use: personal, then team, then shared, each by shortcut."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            f"{_SELECT} where {_USABLE} and ($2::text is null or q.scope = $2)"
            f" order by {_SCOPE_ORDER}, q.shortcut, q.id",
            user_id, scope,
        )
    return [_reply(r) for r in await store.run("qr_list", txn, transaction=False)]


async def search(store: Store, user_id: int, typed: str, limit: int) -> list[QuickReply]:
    """What ``/typed`` offers: shortcuts starting with it, then titles and texts containing it (any case);
    within each, personal before team before shared, the most used first."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            f"{_SELECT} where {_USABLE} and (starts_with(q.shortcut, $2)"
            " or strpos(lower(q.title), $2) > 0 or strpos(lower(q.text), $2) > 0)"
            f" order by not starts_with(q.shortcut, $2), {_SCOPE_ORDER}, coalesce(u.uses, 0) desc, q.shortcut, q.id"
            " limit $3",
            user_id, typed.lower(), limit,
        )
    return [_reply(r) for r in await store.run("qr_search", txn, transaction=False)]


async def usable(store: Store, user_id: int, ids: list[int]) -> dict[int, QuickReply]:
    """Those of ``ids`` that ``user_id`` may use."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(f"{_SELECT} where {_USABLE} and q.id = any($2)", user_id, ids)
    return {r["id"]: _reply(r) for r in await store.run("qr_usable", txn, transaction=False)}


async def locked_txn(db: asyncpg.Connection, reply_id: int) -> QuickReply | None:
    """A quick reply, locked until the transaction ends (for changing or deleting it)."""
    row = await db.fetchrow(
        "select q.id, q.scope, q.owner_id, q.team_id, t.name as team, q.shortcut, q.title, q.kind, q.text, q.body"
        " from quick_replies q left join teams t on t.id = q.team_id where q.id = $1 for update of q",
        reply_id,
    )
    return None if row is None else _reply(row)


async def save_txn(
    db: asyncpg.Connection, reply_id: int | None, *, scope: str, owner_id: int | None, team_id: int | None,
    shortcut: str, title: str, kind: str, text: str, body: dict[str, Any] | None, attachment_ids: list[str],
    by: int,
) -> int:
    """Insert a quick reply (``reply_id`` None) or replace one; its id.

    Error handling: asyncpg.UniqueViolationError if the shortcut is taken in that scope.
    """
    values = (scope, owner_id, team_id, shortcut, title, kind, text, body, attachment_ids, by)
    if reply_id is None:
        found: int = await db.fetchval(
            "insert into quick_replies (scope, owner_id, team_id, shortcut, title, kind, text, body,"
            " attachment_ids, updated_by) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning id",
            *values,
        )
        return found
    await db.execute(
        "update quick_replies set scope = $1, owner_id = $2, team_id = $3, shortcut = $4, title = $5, kind = $6,"
        " text = $7, body = $8, attachment_ids = $9, updated_by = $10, updated_at = now() where id = $11",
        *values, reply_id,
    )
    return reply_id


async def delete_txn(db: asyncpg.Connection, reply_id: int) -> None:
    await db.execute("delete from quick_replies where id = $1", reply_id)  # its use counts go with it


async def count_uses(store: Store, user_id: int, ids: list[int]) -> None:
    """One more use of each of ``ids`` by ``user_id`` (those deleted meanwhile are skipped)."""
    async def txn(db: asyncpg.Connection) -> None:
        await db.execute(
            "insert into quick_reply_uses (user_id, reply_id, uses)"
            " select $1, q.id, 1 from quick_replies q where q.id = any($2) order by q.id"
            " on conflict (user_id, reply_id) do update"
            " set uses = quick_reply_uses.uses + 1, last_at = now()",
            user_id, ids,
        )
    with suppress(asyncpg.ForeignKeyViolationError):  # deleted between the select and the insert: a use of nothing
        await store.run("qr_uses", txn)


async def may_use_attachment(store: Store, user_id: int, attachment_id: str, roles: frozenset[Role]) -> bool:
    """May ``user_id``, an unbanned account of one of ``roles``, fetch this attachment because a quick reply
    it may use carries it?

    For the attachment access check (MSG-4): a PDF instruction sheet in a shared quick
    reply is every staff member's to send, before any message carries it.
    """
    async def txn(db: asyncpg.Connection) -> bool:
        return bool(await db.fetchval(
            "select exists (select 1 from quick_replies q join users me on me.id = $1"
            f" where $2 = any(q.attachment_ids) and {_USABLE}"
            " and me.role = any($3) and me.banned_at is null)",
            user_id, attachment_id, [str(r) for r in roles],
        ))
    return await store.run("qr_attachment", txn, transaction=False)


# -- teams ------------------------------------------------------------------------------------


async def team_id_txn(db: asyncpg.Connection, name: str) -> int | None:
    found: int | None = await db.fetchval("select id from teams where name = $1", name)
    return found


async def is_team_member_txn(db: asyncpg.Connection, team_id: int, user_id: int) -> bool:
    """Membership, held (``for key share``) until the transaction ends: a removal waits for it."""
    return bool(await db.fetchval(
        "select true from team_members where team_id = $1 and user_id = $2 for key share", team_id, user_id
    ))


async def create_team_txn(db: asyncpg.Connection, name: str) -> int | None:
    """The new team's id; None if the name is taken."""
    found: int | None = await db.fetchval(
        "insert into teams (name) values ($1) on conflict (name) do nothing returning id", name
    )
    return found


async def team_size_txn(db: asyncpg.Connection, team_id: int, *, besides: int) -> int:
    """The members of a team but one."""
    size: int = await db.fetchval(
        "select count(*) from team_members where team_id = $1 and user_id <> $2", team_id, besides
    )
    return size


async def set_team_member_txn(db: asyncpg.Connection, team_id: int, user_id: int, member: bool) -> bool:
    """Add or remove a member; False if there was nothing to change."""
    if member:
        sql = "insert into team_members (team_id, user_id) values ($1, $2) on conflict do nothing returning true"
    else:
        sql = "delete from team_members where team_id = $1 and user_id = $2 returning true"
    return bool(await db.fetchval(sql, team_id, user_id))


async def teams(store: Store, member_id: int | None) -> list[tuple[str, list[int]]]:
    """(name, member ids) of every team, or of those ``member_id`` is in; by name."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            "select t.name, coalesce(array_agg(m.user_id order by m.user_id)"
            " filter (where m.user_id is not null), '{}') as members"
            " from teams t left join team_members m on m.team_id = t.id"
            " where $1::bigint is null or t.id in (select team_id from team_members where user_id = $1)"
            " group by t.id order by t.name",
            member_id,
        )
    return [(r["name"], list(r["members"])) for r in await store.run("teams", txn, transaction=False)]
