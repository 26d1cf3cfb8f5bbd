"""Saving and deleting staff quick replies (MSG-3, SPEC.md §5.19); team and shared ones are audited (SEC-1).

Who uses and who manages a quick reply follows from its scope:

    scope      used by                 managed by
    personal   its owner               its owner
    team       the team's members      the team's members
    shared     every staff account     admin accounts

The caller checks the content first (its kind's body, its template, the files it
carries: the node's kinds and attachment rules); these actions check who may manage
it, write it and record the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from imserver import templating
from imserver.actions.base import Actor, Context, Tx, transact
from imserver.actions.teams import team_id_txn
from imserver.model import Role
from imserver.store import quickreplies
from imserver.store.quickreplies import QuickReply
from protocol import ErrorCode, ProtocolError


@dataclass(frozen=True)
class Scope:
    """Whose a quick reply is: ``personal``, ``shared``, or ``team`` with the team's name."""

    name: str
    team: str | None = None

    @classmethod
    def of(cls, name: str, team: str | None) -> Scope:
        """Error handling: BAD_REQUEST (``team``) unless exactly a team quick reply names its team."""
        if (name == "team") != (team is not None):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "a team quick reply names its team, no other does",
                                field="team")
        return cls(name, team)


async def do_save_quick_reply(
    ctx: Context, actor: Actor, reply_id: int | None, scope: Scope, *, shortcut: str, title: str, kind: str,
    text: str, body: dict[str, Any] | None,
) -> int:
    """Save a new quick reply (``reply_id`` None) or replace one the actor manages; its id.

    Error handling: FORBIDDEN if the actor may not manage quick replies of that scope (or the one
    replaced); NOT_FOUND (``id``) if there is no such reply they may use; BAD_REQUEST
    (``shortcut``) if the shortcut is taken in the scope.
    """
    shortcut = shortcut.lower()

    async def run(tx: Tx) -> int:
        if reply_id is not None:
            await _managed_txn(tx.db, actor, reply_id)
        team_id = await team_id_txn(tx.db, scope.team) if scope.team is not None else None
        owner_id = actor.id if scope.name == "personal" else None
        if not (await _access_txn(tx.db, actor, scope.name, owner_id, team_id))[1]:
            raise ProtocolError(ErrorCode.FORBIDDEN, f"you may not manage {scope.name} quick replies here",
                                field="scope")
        assert actor.id is not None, "quick replies are saved by staff accounts"
        try:
            saved = await quickreplies.save_txn(
                tx.db, reply_id, scope=scope.name, owner_id=owner_id, team_id=team_id, shortcut=shortcut,
                title=title, kind=kind, text=text, body=body, attachment_ids=templating.attachments(body),
                by=actor.id,
            )
        except asyncpg.UniqueViolationError:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"the shortcut {shortcut} is taken in this scope",
                                field="shortcut") from None
        await _audit_txn(tx, "quick_reply_save", scope.name, {
            "id": saved, "scope": scope.name, "team": scope.team, "shortcut": shortcut, "title": title,
        })
        return saved
    return await transact(ctx, actor, "qr_save", run)


async def do_delete_quick_reply(ctx: Context, actor: Actor, reply_id: int) -> None:
    """Error handling: as replacing one in ``do_save_quick_reply``."""
    async def run(tx: Tx) -> None:
        old = await _managed_txn(tx.db, actor, reply_id)
        await quickreplies.delete_txn(tx.db, reply_id)
        await _audit_txn(tx, "quick_reply_delete", old.scope, {
            "id": old.id, "scope": old.scope, "team": old.team, "shortcut": old.shortcut, "title": old.title,
        })
    await transact(ctx, actor, "qr_delete", run)


async def _managed_txn(db: asyncpg.Connection, actor: Actor, reply_id: int) -> QuickReply:
    """A quick reply ``actor`` manages, locked. NOT_FOUND if they may not even use it, else FORBIDDEN."""
    old = await quickreplies.locked_txn(db, reply_id)
    uses, manages = (False, False) if old is None else await _access_txn(
        db, actor, old.scope, old.owner_id, old.team_id
    )
    if old is None or not uses:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such quick reply", field="id")
    if not manages:
        raise ProtocolError(ErrorCode.FORBIDDEN, "shared quick replies are managed by administrators")
    return old


async def _access_txn(
    db: asyncpg.Connection, actor: Actor, scope: str, owner_id: int | None, team_id: int | None
) -> tuple[bool, bool]:
    """(may use, may manage) a quick reply of this scope; team membership is held until the commit."""
    if scope == "personal":
        return owner_id == actor.id, owner_id == actor.id
    if scope == "team":
        assert team_id is not None and actor.id is not None
        member = await quickreplies.is_team_member_txn(db, team_id, actor.id)
        return member, member
    return True, actor.role is Role.ADMIN


async def _audit_txn(tx: Tx, action: str, scope: str, detail: dict[str, Any]) -> None:
    """Changes to team and shared quick replies are audited like moderation actions (SEC-1)."""
    if scope != "personal":
        await tx.audit(action, detail=detail)
