"""Care teams (MSG-3): groups of staff accounts that share team quick replies; managed by admins, audited."""

from __future__ import annotations

import asyncpg

from imserver import visibility
from imserver.actions.base import Actor, Context, Tx, transact
from imserver.model import User
from imserver.store import quickreplies
from protocol import ErrorCode, ProtocolError
from protocol.frames import MAX_TEAM_MEMBERS


async def team_id_txn(db: asyncpg.Connection, name: str) -> int:
    """Error handling: NOT_FOUND (``team``) if there is no team of that name."""
    team_id = await quickreplies.team_id_txn(db, name)
    if team_id is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no team {name}", field="team")
    return team_id


async def do_create_team(ctx: Context, actor: Actor, name: str) -> None:
    """Error handling: BAD_REQUEST (``name``) if a team of that name exists."""
    async def body(tx: Tx) -> None:
        if await quickreplies.create_team_txn(tx.db, name) is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "a team of that name exists", field="name")
        await tx.audit("team_create", detail={"team": name})
    await transact(ctx, actor, "team_create", body)


async def do_set_team_member(ctx: Context, actor: Actor, team: str, user: User, member: bool) -> None:
    """Add a staff account to a team (``member``) or remove one.

    Error handling: BAD_REQUEST (``user``) to add an account that is not staff; NOT_FOUND
    (``team``) for no such team; BAD_REQUEST (``team``) to add one more to a team of ``MAX_TEAM_MEMBERS``;
    NOT_FOUND (``user``) to remove someone not in it.
    """
    if member and user.role not in visibility.CARE_TEAM:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "care teams are of staff accounts", field="user")
    action = "team_add" if member else "team_remove"

    async def body(tx: Tx) -> None:
        team_id = await team_id_txn(tx.db, team)
        if member and await quickreplies.team_size_txn(tx.db, team_id, besides=user.id) >= MAX_TEAM_MEMBERS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"a team has at most {MAX_TEAM_MEMBERS} members",
                                field="team")
        if not await quickreplies.set_team_member_txn(tx.db, team_id, user.id, member) and not member:
            raise ProtocolError(ErrorCode.NOT_FOUND, "not a member of the team", field="user")
        await tx.audit(action, target_id=user.id, detail={"team": team})
    await transact(ctx, actor, action, body)
