"""Accounts: creating them, banning them, linking family, ending a session (IM-8, IM-14, SEC-1, SEC-2)."""

from __future__ import annotations

import re
import uuid

import asyncpg

from imserver import auth
from imserver.actions.base import Actor, Context, Tx, transact
from imserver.bus import SessionsEnded, UserChanged
from imserver.model import Role, User
from imserver.store import accounts
from protocol import ErrorCode, ProtocolError
from protocol.frames import MAX_FAMILY, USERNAME_PATTERN

MIN_PASSWORD = 8
MAX_NAME = 64
"""Characters of a display name (the database checks it too) and of a title: what every view of a person holds."""


async def do_create_user(
    ctx: Context, actor: Actor, username: str, display_name: str, role: Role, password: str, *,
    title: str = "", phone: str | None = None,
) -> User:
    """A new account; its phone number, if given, is stored encrypted (SEC-2).

    Error handling: BAD_REQUEST for a username that does not fit the protocol's pattern or is
    taken (``username``), a password shorter than ``MIN_PASSWORD`` (``password``), or a display name or title
    longer than ``MAX_NAME`` (``display_name``, ``title``).
    """
    if not re.match(USERNAME_PATTERN, username):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "username: lowercase letters, digits, '_', '.', '-';"
                            " at most 64 characters", field="username")
    for field, value in (("display_name", display_name), ("title", title)):
        if len(value) > MAX_NAME:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"at most {MAX_NAME} characters", field=field)
    if len(password) < MIN_PASSWORD:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"the password must have at least {MIN_PASSWORD} characters",
                            field="password")
    password_hash = await auth.hash_password(password)
    phone_enc = None
    if phone:
        phone_enc = auth.FieldCipher(await accounts.server_key(ctx.store, auth.FIELD_KEY)).encrypt(phone)

    async def body(tx: Tx) -> User:
        try:
            return await accounts.create_user_txn(
                tx.db, username, display_name, role, password_hash, title=title, phone_enc=phone_enc
            )
        except asyncpg.UniqueViolationError:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"user {username} already exists", field="username") from None
    return await transact(ctx, actor, "create_user", body)


async def do_ban_user(ctx: Context, actor: Actor, user_id: int, banned: bool) -> None:
    """Ban an account, ending every session at once, or lift the ban (IM-14).

    Error handling: BAD_REQUEST (``user``) for the actor's own account.
    """
    if user_id == actor.id:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "cannot ban yourself", field="user")
    action = "user_ban" if banned else "user_unban"

    async def body(tx: Tx) -> None:
        revoked = await accounts.set_banned_txn(tx.db, user_id, banned)
        if revoked:
            tx.emit(SessionsEnded([str(s) for s in revoked], reason=str(ErrorCode.ACCOUNT_BANNED)))
        tx.emit(UserChanged(user_id))
        await tx.audit(action, target_id=user_id)
    await transact(ctx, actor, action, body)


async def do_set_role(ctx: Context, actor: Actor, user: User, role: Role) -> None:
    """Change an account's role. Its sessions end at once, so it logs in again with the rights and the
    masking of its new role (SPEC.md §11.1) and no connection keeps the old ones.

    Error handling: BAD_REQUEST (``user``) for the actor's own account.
    """
    if user.id == actor.id:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "cannot change your own role", field="user")

    async def body(tx: Tx) -> None:
        await accounts.set_role_txn(tx.db, user.id, role)
        revoked = await accounts.revoke_sessions_txn(tx.db, user_id=user.id)
        if revoked:
            tx.emit(SessionsEnded([str(s) for s in revoked]))
        tx.emit(UserChanged(user.id))
        await tx.audit("user_role", target_id=user.id, detail={"role": str(role), "was": str(user.role)})
    await transact(ctx, actor, "user_role", body)


async def do_link_family(ctx: Context, actor: Actor, patient: User, family: User, relation: str) -> None:
    """Link a family account to a patient's (IM-8): they see each other for real; a husband follows her.

    Error handling: BAD_REQUEST unless ``patient`` is a patient's account and ``family`` a family account;
    BAD_REQUEST (``family``) for a new link of a patient who has ``MAX_FAMILY`` already.
    """
    if patient.role is not Role.PATIENT or family.role is not Role.FAMILY:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "links a patient account to a family account")

    async def body(tx: Tx) -> None:
        if not await accounts.link_family_txn(tx.db, patient.id, family.id, relation, MAX_FAMILY):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"a patient has at most {MAX_FAMILY} family accounts",
                                field="family")
        tx.emit(UserChanged(patient.id))
        tx.emit(UserChanged(family.id))
        await tx.audit("family_link", target_id=patient.id,
                       detail={"family": family.username, "relation": relation})
    await transact(ctx, actor, "family_link", body)


async def do_end_session(ctx: Context, actor: Actor, session_id: uuid.UUID) -> None:
    """Log a session out: its token stops working and its connections close (SPEC.md §5, ``logout``)."""
    async def body(tx: Tx) -> None:
        revoked = await accounts.revoke_sessions_txn(tx.db, session_id=session_id)
        tx.emit(SessionsEnded([str(s) for s in revoked]))
    await transact(ctx, actor, "logout", body)
