"""The server's one public admin interface for tools outside ``imserver/`` (the load harness ``imload``, the web
front door ``webadmin``).

A tool that must set up or inspect a server's database in bulk (thousands of accounts, groups and direct chats,
a million old messages, a session for each of 10,000 clients, the count of what was stored) opens an
:class:`Admin` on the database URL and uses it, and nothing else of the server (docs/architecture.md,
"Packages and their dependencies"). It speaks the protocol's names: usernames, user ids (``u<id>`` on the wire),
conversation addresses (``g:12``, ``d:7``; SPEC.md §1). What it creates it creates the way the server does
(accounts with an argon2 password hash, members with their pseudonym numbers, sessions and tokens signed with the
server's key), and only what is missing, so a set-up can be run again. It takes no time from a clock: the caller
says when.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from imserver import auth
from imserver.model import Role, address
from imserver.store import accounts, bulk, moderation
from imserver.store.migrate import migrate
from pgtrio.bridge import Store, open_store

VIEW_DEVICE = "mini-program view"
"""The device name of sessions made by ``Admin.view_token``, as a user's list of sessions shows it."""


@dataclass(frozen=True)
class NewUser:
    username: str
    display_name: str
    role: str = "patient"
    """One of the account roles of SPEC.md §1.2: patient, family, staff, admin, bot."""
    title: str = ""
    """A staff member's title, e.g. 护士."""


@dataclass(frozen=True)
class NewGroup:
    name: str
    owner: int
    """The owner's user id."""
    members: Sequence[int]
    """User ids of the other members; a patient's husband follows her in (IM-8)."""


class Admin:
    """Bulk set-up and inspection of one server's database (module docstring)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def migrate(self) -> list[int]:
        """Apply the schema migrations not applied yet; their versions."""
        return await migrate(self._store)

    async def add_users(self, users: Sequence[NewUser], password: str) -> None:
        """Create the accounts whose username is free, all with ``password``; existing ones are left as they are.

        Error handling: ValueError for a role that is not one."""
        rows = [(u.username, u.display_name, str(Role(u.role)), u.title) for u in users]  # (ValueError for a typo)
        await self._store.run("admin_users", bulk.create_users_txn, rows, await auth.hash_password(password))

    async def user_ids(self, usernames: Sequence[str]) -> dict[str, int]:
        """The id of each of these usernames that exists."""
        return await self._store.run("admin_user_ids", bulk.user_ids_txn, usernames, transaction=False)

    async def add_groups(self, groups: Sequence[NewGroup]) -> None:
        """Create the groups whose name no group has yet."""
        rows = [(g.name, g.owner, g.members) for g in groups]
        await self._store.run("admin_groups", bulk.create_groups_txn, rows)

    async def group_addresses(self, names: Sequence[str]) -> dict[str, str]:
        """The address of the first group of each of these names that exists."""
        found = await self._store.run("admin_group_ids", bulk.group_ids_txn, names, transaction=False)
        return {name: address("group", conv_id) for name, conv_id in found.items()}

    async def add_direct_chats(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Open the direct chat of each pair of user ids that has none yet."""
        await self._store.run("admin_directs", bulk.create_directs_txn, pairs)

    async def direct_addresses(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """The address of each pair's direct chat that exists."""
        found = await self._store.run("admin_direct_ids", bulk.direct_ids_txn, pairs, transaction=False)
        return {pair: address("direct", conv_id) for pair, conv_id in found.items()}

    async def add_old_messages(
        self, addresses: Sequence[str], total: int, text: str, *, until: datetime, span: timedelta
    ) -> int:
        """Fill these conversations up to ``total`` messages in all with ``text``, dated evenly over ``span``
        before ``until``, their members sending in turn; how many were added."""
        conv_ids = [_conv_id(a) for a in addresses]
        return await self._store.run("admin_prefill", bulk.prefill_txn, conv_ids, total, text, until, span)

    async def issue_tokens(self, user_ids: Sequence[int], *, device: str, expires_at: datetime) -> list[str]:
        """A new session for each user and its token, as a client gets on login (SPEC.md §3), in order."""
        signer = auth.TokenSigner(await accounts.server_key(self._store, auth.TOKEN_KEY))
        sessions = await self._store.run("admin_sessions", bulk.create_sessions_txn, user_ids, device, expires_at)
        return [signer.issue(s, expires_at.timestamp()) for s in sessions]

    async def view_token(self, username: str, *, expires_at: datetime, issuer: str) -> str | None:
        """A token for a read-only session of a patient or family account (IM-17), as the hospital's mini-program
        back end asks for one (webadmin's ``POST /api/view-tokens``); None when there is no such active account.
        The audit log records it (``view_token``, by ``issuer``), since it opens her conversations to whoever
        holds it (SEC-1).

        The session itself is read-only: a client that says ``hello`` with this token gets a read-only session
        whatever its ``readonly`` says, and cannot send, upload or change anything (SPEC.md §4.4)."""
        user = await accounts.user_by_name(self._store, username)
        if user is None or user.banned or user.role not in (Role.PATIENT, Role.FAMILY):
            return None
        signer = auth.TokenSigner(await accounts.server_key(self._store, auth.TOKEN_KEY))

        async def txn(db: asyncpg.Connection) -> uuid.UUID:
            session = await accounts.create_session_txn(db, user.id, VIEW_DEVICE, True, expires_at)
            await moderation.audit_txn(db, actor_id=None, actor=issuer, action="view_token", target_id=user.id,
                                       detail={"expires_at": expires_at.isoformat()})
            return session
        return signer.issue(await self._store.run("admin_view_token", txn), expires_at.timestamp())

    async def last_seqs(self, addresses: Sequence[str]) -> dict[str, int]:
        """The seq of each conversation's last message (0 for none)."""
        by_id = {_conv_id(a): a for a in addresses}
        found = await self._store.run("admin_last_seqs", bulk.last_seqs_txn, list(by_id), transaction=False)
        return {by_id[conv_id]: seq for conv_id, seq in found.items()}

    async def stored_since(self, start: Mapping[str, int]) -> dict[str, dict[int, int]]:
        """How many messages each sender (user id) stored in each conversation after the seq given for it."""
        by_id = {_conv_id(a): a for a in start}
        since = {conv_id: start[a] for conv_id, a in by_id.items()}
        found = await self._store.run("admin_stored", bulk.stored_since_txn, since, transaction=False)
        return {by_id[conv_id]: senders for conv_id, senders in found.items()}


@asynccontextmanager
async def open_admin(database_url: str) -> AsyncIterator[Admin]:
    """An :class:`Admin` on the server's database, for the duration of the ``async with``."""
    async with open_store(database_url, min_size=1, max_size=4) as store:
        yield Admin(store)


def _conv_id(conv: str) -> int:
    """The id in a group's or direct chat's address (``g:12``, ``d:7``)."""
    kind, _, number = conv.partition(":")
    if kind not in ("g", "d") or not number.isdigit():
        raise ValueError(f"not a conversation address: {conv!r}")
    return int(number)
