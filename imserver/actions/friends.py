"""Friend requests between patients met in a group that allows them (IM-5, SPEC.md §5.14)."""

from __future__ import annotations

from imserver import visibility
from imserver.actions.base import Actor, Context, Tx, transact
from imserver.actions.conversations import direct_chat_txn
from imserver.model import Role, Roster
from imserver.store import moderation
from imserver.visibility import Viewer
from protocol import ErrorCode, ProtocolError


async def do_request_friend(ctx: Context, actor: Actor, roster: Roster, requester: Viewer, target: Viewer) -> int:
    """Ask ``target``, met in ``roster``'s group, to be friends; the request's id (the pending one if asked twice).

    Error handling: BAD_REQUEST (``member``) to ask yourself; BAD_REQUEST if the two may already chat
    directly; FORBIDDEN if the group does not allow friend requests or the requester is family.
    """
    if target.id == requester.id:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a friend request to yourself", field="member")
    if visibility.may_chat_directly(requester, target, friends=False):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "you can message them directly")
    if not roster.allow_friends or requester.role is Role.FAMILY:
        raise ProtocolError(ErrorCode.FORBIDDEN, "this group does not allow friend requests")

    async def body(tx: Tx) -> int:
        return await moderation.request_friend_txn(tx.db, roster.conv_id, requester.id, target.id)
    return await transact(ctx, actor, "friend_request", body)


async def do_answer_friend(ctx: Context, actor: Actor, request_id: int, accept: bool) -> int | None:
    """Accept or reject a friend request addressed to the actor; on accepting, their direct chat.

    Error handling: NOT_FOUND (``request``) if there is no such pending request for the actor.
    """
    assert actor.id is not None, "people answer their own friend requests"
    me = actor.id

    async def body(tx: Tx) -> int | None:
        requester = await moderation.answer_friend_txn(tx.db, request_id, me, accept)
        if requester is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such friend request", field="request")
        return await direct_chat_txn(tx, *sorted((requester, me))) if accept else None
    return await transact(ctx, actor, "friend_respond", body)
