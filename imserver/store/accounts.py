"""SQL for users, sessions and server keys."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from functools import partial

import asyncpg

from imserver.model import Role, User
from pgtrio.bridge import Store

_USER_COLUMNS = "id, username, display_name, role, title, banned_at is not null as banned"


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["username"], row["display_name"], Role(row["role"]), row["title"], row["banned"])


async def create_user_txn(
    db: asyncpg.Connection, username: str, display_name: str, role: Role, password_hash: str,
    *, title: str = "", phone_enc: bytes | None = None,
) -> User:
    """Error handling: raises asyncpg.UniqueViolationError if the username is taken."""
    row = await db.fetchrow(
        f"insert into users (username, display_name, role, password_hash, title, phone_enc)"
        f" values ($1, $2, $3, $4, $5, $6) returning {_USER_COLUMNS}",
        username, display_name, str(role), password_hash, title, phone_enc,
    )
    return _user(row)


async def create_user(
    store: Store, username: str, display_name: str, role: Role, password_hash: str,
    *, title: str = "", phone_enc: bytes | None = None,
) -> User:
    """``create_user_txn`` on its own, for seeding test and demo accounts."""
    return await store.run("create_user", partial(create_user_txn, title=title, phone_enc=phone_enc),
                           username, display_name, role, password_hash)


async def credentials(store: Store, username: str) -> tuple[User, str] | None:
    """The user and their password hash, for login."""
    async def txn(db: asyncpg.Connection) -> tuple[User, str] | None:
        row = await db.fetchrow(
            f"select {_USER_COLUMNS}, password_hash from users where username = $1", username
        )
        return None if row is None else (_user(row), row["password_hash"])
    return await store.run("credentials", txn, transaction=False)


async def users_by_id(store: Store, ids: list[int]) -> list[User]:
    async def txn(db: asyncpg.Connection) -> list[User]:
        rows = await db.fetch(f"select {_USER_COLUMNS} from users where id = any($1)", ids)
        return [_user(r) for r in rows]
    return await store.run("users_by_id", txn, transaction=False)


async def user_by_name(store: Store, username: str) -> User | None:
    async def txn(db: asyncpg.Connection) -> User | None:
        row = await db.fetchrow(f"select {_USER_COLUMNS} from users where username = $1", username)
        return None if row is None else _user(row)
    return await store.run("user_by_name", txn, transaction=False)


async def create_session(
    store: Store, user_id: int, device: str, readonly: bool, expires_at: datetime
) -> uuid.UUID:
    return await store.run("create_session", create_session_txn, user_id, device, readonly, expires_at)


async def create_session_txn(
    db: asyncpg.Connection, user_id: int, device: str, readonly: bool, expires_at: datetime
) -> uuid.UUID:
    session_id = uuid.uuid4()
    await db.execute(
        "insert into sessions (id, user_id, device, readonly, expires_at) values ($1, $2, $3, $4, $5)",
        session_id, user_id, device, readonly, expires_at,
    )
    return session_id


async def live_session(store: Store, session_id: uuid.UUID, now: datetime) -> tuple[User, str, bool] | None:
    """The session's user, device and read-only flag, if it is neither revoked nor expired at ``now``."""
    async def txn(db: asyncpg.Connection) -> tuple[User, str, bool] | None:
        row = await db.fetchrow(
            "select u.id, u.username, u.display_name, u.role, u.title, u.banned_at is not null as banned,"
            " s.device, s.readonly"
            " from sessions s join users u on u.id = s.user_id"
            " where s.id = $1 and s.revoked_at is null and s.expires_at > $2",
            session_id, now,
        )
        return None if row is None else (_user(row), row["device"], row["readonly"])
    return await store.run("live_session", txn, transaction=False)


async def revoke_sessions_txn(
    db: asyncpg.Connection, *, session_id: uuid.UUID | None = None, user_id: int | None = None
) -> list[uuid.UUID]:
    """Revoke one session or all of a user's; return the ids revoked."""
    rows = await db.fetch(
        "update sessions set revoked_at = now() where revoked_at is null"
        " and (id = $1 or user_id = $2) returning id",
        session_id, user_id,
    )
    return [r["id"] for r in rows]


async def set_banned_txn(db: asyncpg.Connection, user_id: int, banned: bool) -> list[uuid.UUID]:
    """Ban (revoking every session) or unban an account; return the sessions revoked."""
    await db.execute(
        "update users set banned_at = case when $2 then coalesce(banned_at, now()) end where id = $1",
        user_id, banned,
    )
    return await revoke_sessions_txn(db, user_id=user_id) if banned else []


async def set_role_txn(db: asyncpg.Connection, user_id: int, role: Role) -> None:
    await db.execute("update users set role = $2 where id = $1", user_id, str(role))


async def family_of(store: Store, user_ids: list[int]) -> dict[int, frozenset[int]]:
    """Each user's linked family (in both directions: a patient's family, a family member's patients)."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            "select patient_id, family_id from family_links where patient_id = any($1) or family_id = any($1)",
            user_ids,
        )
    links: dict[int, set[int]] = {u: set() for u in user_ids}
    for row in await store.run("family_of", txn, transaction=False):
        for me, other in ((row["patient_id"], row["family_id"]), (row["family_id"], row["patient_id"])):
            if me in links:
                links[me].add(other)
    return {u: frozenset(v) for u, v in links.items()}


async def link_family_txn(
    db: asyncpg.Connection, patient_id: int, family_id: int, relation: str, most: int
) -> bool:
    """Link or relink; False, changing nothing, for a new link of a patient who has ``most`` already."""
    done: bool | None = await db.fetchval(
        "insert into family_links (patient_id, family_id, relation) select $1, $2, $3"
        " where (select count(*) from family_links where patient_id = $1 and family_id <> $2) < $4"
        " on conflict (patient_id, family_id) do update set relation = excluded.relation returning true",
        patient_id, family_id, relation, most,
    )
    return bool(done)


async def linked_txn(db: asyncpg.Connection, patient_id: int, family_id: int) -> bool:
    """Is this family account linked to this patient?"""
    return bool(await db.fetchval(
        "select true from family_links where patient_id = $1 and family_id = $2", patient_id, family_id
    ))


async def phone_txn(db: asyncpg.Connection, user_id: int) -> bytes | None:
    """An account's phone number, encrypted (SEC-2)."""
    found: bytes | None = await db.fetchval("select phone_enc from users where id = $1", user_id)
    return found


async def server_key(store: Store, name: str, size: int = 32) -> bytes:
    """A secret shared by every node, created on first use."""
    async def txn(db: asyncpg.Connection) -> bytes:
        await db.execute(
            "insert into server_keys (name, secret) values ($1, $2) on conflict (name) do nothing",
            name, os.urandom(size),
        )
        secret: bytes = await db.fetchval("select secret from server_keys where name = $1", name)
        return secret
    return await store.run("server_key", txn)
