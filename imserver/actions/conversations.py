"""Groups and direct chats: creating them, members in and out, switches, bans and isolation.

Requirements: IM-3 (owners and admins), IM-4 (mute), IM-5 and IM-9 (friends, family may
speak), IM-8 (a husband follows his wife in and out), IM-12 and IM-13 (isolation and its
lift), IM-15 (banned groups); SPEC.md §5.6, §5.9–§5.11.
"""

from __future__ import annotations

from collections.abc import Sequence

from imserver import visibility
from imserver.actions.base import Actor, Context, Tx, transact
from imserver.bus import GroupChanged, MembersChanged
from imserver.model import MemberRole, Role
from imserver.store import accounts, conversations, moderation
from imserver.visibility import Viewer
from protocol import ErrorCode, ProtocolError


async def _join_txn(
    tx: Tx, conv_id: int, members: list[tuple[int, MemberRole]], *, via: int | None = None, follow: bool = True
) -> None:
    """Add members (or change their roles) and announce who joined, followers included (IM-8)."""
    joined = await conversations.set_members_txn(tx.db, conv_id, members, via=via, follow=follow)
    tx.emit(_joined(conv_id, joined))


async def direct_chat_txn(tx: Tx, a: int, b: int) -> int:
    """The direct chat of two people, created on first use (announcing its two members)."""
    conv_id, joined = await conversations.direct_conv_txn(tx.db, a, b)
    if joined:
        tx.emit(_joined(conv_id, joined))
    return conv_id


def _joined(conv_id: int, joined: list[tuple[int, MemberRole]]) -> MembersChanged:
    return MembersChanged(conv_id, [(user_id, str(role)) for user_id, role in joined])


async def do_create_group(ctx: Context, actor: Actor, name: str, owner_id: int, member_ids: Sequence[int]) -> int:
    """A new group with its owner and members; its id."""
    async def body(tx: Tx) -> int:
        conv_id, joined = await conversations.create_group_txn(tx.db, name, owner_id, list(member_ids))
        tx.emit(_joined(conv_id, joined))
        return conv_id
    return await transact(ctx, actor, "group_create", body)


async def do_add_member(ctx: Context, actor: Actor, conv_id: int, user_id: int, role: MemberRole) -> None:
    """Add a member to a group, or change a member's role (IM-3)."""
    async def body(tx: Tx) -> None:
        await _join_txn(tx, conv_id, [(user_id, role)])
    await transact(ctx, actor, "group_add", body)


async def do_remove_member(ctx: Context, actor: Actor, conv_id: int, user_id: int) -> list[int]:
    """Remove a member and the family who came in with her (IM-8); everyone who left.

    Error handling: NOT_FOUND (``user``) if she is not a member.
    """
    async def body(tx: Tx) -> list[int]:
        left = await conversations.remove_member_txn(tx.db, conv_id, user_id)
        if not left:
            raise ProtocolError(ErrorCode.NOT_FOUND, "not a member", field="user")
        tx.emit(MembersChanged(conv_id, [(u, None) for u in left]))
        return left
    return await transact(ctx, actor, "group_remove", body)


async def do_invite_family(ctx: Context, actor: Actor, conv_id: int, family_id: int) -> None:
    """A patient brings her own linked family member into a group she is in (IM-8).

    Error handling: FORBIDDEN unless the actor is a patient linked to that family account.
    """
    async def body(tx: Tx) -> None:
        if actor.role is not Role.PATIENT or actor.id is None or not await accounts.linked_txn(tx.db, actor.id,
                                                                                                  family_id):
            raise ProtocolError(ErrorCode.FORBIDDEN, "a patient invites her own linked family")
        await _join_txn(tx, conv_id, [(family_id, MemberRole.MEMBER)], via=actor.id)
    await transact(ctx, actor, "family_invite", body)


async def do_open_direct_chat(ctx: Context, actor: Actor, me: Viewer, them: Viewer) -> int:
    """The direct chat of ``me`` (the actor) and ``them``, created on first use.

    Error handling: FORBIDDEN between patients and family who are neither friends nor linked (IM-5).
    """
    needs_friends = not visibility.may_chat_directly(me, them, friends=False)

    async def body(tx: Tx) -> int:
        if needs_friends and not await moderation.are_friends_txn(tx.db, me.id, them.id):
            raise ProtocolError(ErrorCode.FORBIDDEN, "patients chat one to one only as friends")
        return await direct_chat_txn(tx, me.id, them.id)
    return await transact(ctx, actor, "direct_conv", body)


async def do_set_group(
    ctx: Context, actor: Actor, conv_id: int, *, muted: bool | None = None, allow_friends: bool | None = None,
    family_can_speak: bool | None = None,
) -> dict[str, bool]:
    """Switch a group's settings (IM-4, IM-5, IM-9); the switches changed.

    Error handling: BAD_REQUEST if nothing is to change.
    """
    changes = {k: v for k, v in (("muted", muted), ("allow_friends", allow_friends),
                                 ("family_can_speak", family_can_speak)) if v is not None}
    if not changes:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "nothing to change")

    async def body(tx: Tx) -> None:
        await conversations.update_group_txn(tx.db, conv_id, changes)
        await tx.audit("group_set", conv_id=conv_id, detail=changes)
        tx.emit(GroupChanged(conv_id))
    await transact(ctx, actor, "group_set", body)
    return changes


async def do_ban_group(ctx: Context, actor: Actor, conv_id: int, banned: bool) -> None:
    """Ban a group, or lift the ban (IM-15): while banned nobody reads or sends in it."""
    action = "group_ban" if banned else "group_unban"

    async def body(tx: Tx) -> None:
        await conversations.update_group_txn(tx.db, conv_id, {"banned": banned})
        await tx.audit(action, conv_id=conv_id)
        tx.emit(GroupChanged(conv_id))
    await transact(ctx, actor, action, body)


async def do_isolate(ctx: Context, actor: Actor, conv_id: int, member_id: int, isolated: bool) -> None:
    """Isolate a member of a group, or lift it (IM-12, IM-13).

    Error handling: NOT_FOUND (``member``) if not a member; BAD_REQUEST (``member``) to isolate
    an owner or admin of the group (lifting stays possible after a promotion).
    """
    action = "isolate" if isolated else "unisolate"

    async def body(tx: Tx) -> None:
        role = await conversations.member_role_txn(tx.db, conv_id, member_id)
        if role is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "not a member of the group", field="member")
        if isolated and role in visibility.MANAGERS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "owners and admins cannot be isolated", field="member")
        await conversations.isolate_txn(tx.db, conv_id, member_id, isolated)
        await tx.audit(action, target_id=member_id, conv_id=conv_id)
        # An isolation is not announced to the members: she must notice nothing (IM-12).
        tx.emit(GroupChanged(conv_id, settings=False, isolated=[member_id] if isolated else []))
    await transact(ctx, actor, action, body)
