"""Moderation and care-team operations (IM-4, IM-5, IM-8, IM-11..IM-15, SEC-1): who may do them and what they do.

Every action here is written to the audit log in the same transaction that
performs it. Live effects (closing a banned account's sessions, retracting an
isolated member's messages, the ``group`` push) follow from the bus events the
store sends on commit, so they happen the same way whichever node or operator
command made the change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg

from imserver import views, visibility
from imserver.bus import SessionsEnded, UserChanged, notify_txn
from imserver.connection import Connection, framed
from imserver.handlers import Handler, Handlers, Reply, session_of
from imserver.model import MemberRole, Role, Roster, User
from imserver.store import accounts, conversations, moderation
from imserver.words import Policy, WordFilter, normalise
from protocol import ErrorCode, ProtocolError
from protocol.frames import (
    Audit,
    FamilyInvite,
    FamilyLink,
    FriendRequest,
    FriendRequests,
    FriendRespond,
    GroupBan,
    GroupSet,
    GroupUnban,
    Isolate,
    Profile,
    Request,
    Unisolate,
    UserBan,
    UserUnban,
    WordsList,
    WordsRemove,
    WordsSet,
)

_CARE_TEAM = frozenset({Role.STAFF, Role.ADMIN})


class ModerationHandlers:
    def __init__(self, core: Handlers) -> None:
        self.core = core
        self.table: dict[type[Request], Handler] = {
            GroupSet: self.group_set, Isolate: self.isolate, Unisolate: self.isolate,
            GroupBan: self.group_ban, GroupUnban: self.group_ban, UserBan: self.user_ban, UserUnban: self.user_ban,
            FamilyLink: self.family_link, FamilyInvite: self.family_invite,
            FriendRequest: self.friend_request, FriendRequests: self.friend_requests,
            FriendRespond: self.friend_respond,
            WordsSet: self.words_set, WordsRemove: self.words_set, WordsList: self.words_list,
            Audit: self.audit_query, Profile: self.profile,
        }

    def _admin_only(self, conn: Connection, rid: int) -> None:
        if session_of(conn).user.role is not Role.ADMIN:
            raise ProtocolError(ErrorCode.FORBIDDEN, "administrators only", rid=rid)

    # -- group switches, isolation and bans -------------------------------------------------

    async def group_set(self, conn: Connection, req: GroupSet) -> Reply:
        roster = await self.core.managed_group(conn, req.conv, req.rid)
        changes = {k: v for k, v in (("muted", req.muted), ("allow_friends", req.allow_friends),
                                     ("family_can_speak", req.family_can_speak)) if v is not None}
        if not changes:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "nothing to change", rid=req.rid)

        async def txn(c: asyncpg.Connection) -> None:
            await conversations.update_group_txn(c, roster.conv_id, changes)
        await self.core.audit(conn, "group_set", conv_id=roster.conv_id, detail=changes, txn=txn)
        updated = await self.core.directory.reload(roster.conv_id)
        assert updated is not None
        return {"conv": roster.address, **updated.settings()}

    async def isolate(self, conn: Connection, req: Isolate | Unisolate) -> Reply:
        roster = await self.core.managed_group(conn, req.conv, req.rid)
        viewer = self.core.directory.viewer(session_of(conn).user.id)
        member = self.core.member_id(roster, viewer, req.member, req.rid, field="member")
        on = isinstance(req, Isolate)
        if on and roster.members.get(member) in visibility.MANAGERS:  # lifting stays possible after a promotion
            raise ProtocolError(ErrorCode.BAD_REQUEST, "owners and admins cannot be isolated", rid=req.rid,
                                field="member")

        async def txn(c: asyncpg.Connection) -> None:
            await conversations.isolate_txn(c, roster.conv_id, member, on)
        await self.core.audit(conn, "isolate" if on else "unisolate", target_id=member, conv_id=roster.conv_id,
                              txn=txn)
        await self.core.directory.reload(roster.conv_id)
        return {"conv": roster.address, "member": req.member, "isolated": on}

    async def group_ban(self, conn: Connection, req: GroupBan | GroupUnban) -> Reply:
        self._admin_only(conn, req.rid)
        roster = await self.core.managed_group(conn, req.conv, req.rid)
        banned = isinstance(req, GroupBan)

        async def txn(c: asyncpg.Connection) -> None:
            await conversations.update_group_txn(c, roster.conv_id, {"banned": banned})
        await self.core.audit(conn, "group_ban" if banned else "group_unban", conv_id=roster.conv_id, txn=txn)
        await self.core.directory.reload(roster.conv_id)
        return {"conv": roster.address, "banned": banned}

    async def user_ban(self, conn: Connection, req: UserBan | UserUnban) -> Reply:
        self._admin_only(conn, req.rid)
        target = await self.core.user(req.user, req.rid, field="user")
        if target.id == session_of(conn).user.id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "cannot ban yourself", rid=req.rid, field="user")
        banned = isinstance(req, UserBan)

        async def txn(c: asyncpg.Connection) -> None:
            await ban_txn(c, target.id, banned)
        await self.core.audit(conn, "user_ban" if banned else "user_unban", target_id=target.id, txn=txn)
        return {"user": target.username, "banned": banned}

    # -- family and friends -----------------------------------------------------------------

    async def family_link(self, conn: Connection, req: FamilyLink) -> Reply:
        if session_of(conn).user.role not in _CARE_TEAM:
            raise ProtocolError(ErrorCode.FORBIDDEN, "staff only", rid=req.rid)
        patient = await self.core.user(req.patient, req.rid, field="patient")
        family = await self.core.user(req.family, req.rid, field="family")
        if patient.role is not Role.PATIENT or family.role is not Role.FAMILY:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "links a patient account to a family account", rid=req.rid)

        async def txn(c: asyncpg.Connection) -> None:
            await link_family_txn(c, patient.id, family.id, req.relation)
        await self.core.audit(conn, "family_link", target_id=patient.id, txn=txn,
                              detail={"family": family.username, "relation": req.relation})
        for user_id in (patient.id, family.id):  # this node knows the link before answering
            self.core.directory.forget_user(user_id)
        await self.core.directory.users([patient.id, family.id])
        return {"patient": patient.username, "family": family.username, "relation": req.relation}

    async def family_invite(self, conn: Connection, req: FamilyInvite) -> Reply:
        user = session_of(conn).user
        roster = await self.core.resolve(user, req.conv, req.rid)
        family = await self.core.user(req.family, req.rid, field="family")
        if roster.kind != "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a group", rid=req.rid, field="conv")
        if user.role is not Role.PATIENT or family.id not in self.core.directory.viewer(user.id).family:
            raise ProtocolError(ErrorCode.FORBIDDEN, "a patient invites her own linked family", rid=req.rid)
        await self.core.store.run(
            "family_invite", partial(conversations.set_members_txn, via=user.id), roster.conv_id,
            [(family.id, MemberRole.MEMBER)],
        )
        await self.core.directory.reload(roster.conv_id)
        return {"conv": roster.address, "family": family.username}

    async def friend_request(self, conn: Connection, req: FriendRequest) -> Reply:
        user = session_of(conn).user
        roster = await self.core.resolve(user, req.conv, req.rid)
        viewer = self.core.directory.viewer(user.id)
        target = self.core.member_id(roster, viewer, req.member, req.rid, field="member")
        if target == user.id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "a friend request to yourself", rid=req.rid, field="member")
        them = self.core.directory.viewer(target)
        if visibility.may_chat_directly(viewer, them, friends=False):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "you can message them directly", rid=req.rid)
        if not roster.allow_friends or user.role is Role.FAMILY:
            raise ProtocolError(ErrorCode.FORBIDDEN, "this group does not allow friend requests", rid=req.rid)
        request_id = await self.core.store.run(
            "friend_request", moderation.request_friend_txn, roster.conv_id, user.id, target
        )
        self.core.hub.deliver([target], framed({"op": "friend_request", **_asking(request_id, them, user, roster)}))
        return {"request": request_id}

    async def friend_requests(self, conn: Connection, req: FriendRequests) -> Reply:
        user = session_of(conn).user
        viewer = self.core.directory.viewer(user.id)
        pending = await moderation.pending_friend_requests(self.core.store, user.id)
        requesters = await self.core.directory.users([from_id for _, _, from_id in pending])
        found = []
        for request_id, conv_id, from_id in pending:
            roster = await self.core.directory.roster(conv_id)
            if roster is not None and not roster.banned and from_id in requesters:
                found.append(_asking(request_id, viewer, requesters[from_id], roster))
        return {"requests": found}

    async def friend_respond(self, conn: Connection, req: FriendRespond) -> Reply:
        user = session_of(conn).user
        conv_id = await self.core.store.run("friend_respond", moderation.answer_friend_txn, req.request, user.id,
                                            req.accept)
        if conv_id is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such friend request", rid=req.rid, field="request")
        return {"request": req.request, "accepted": req.accept} | ({"conv": f"d:{conv_id}"} if conv_id else {})

    # -- words, audit and profiles ----------------------------------------------------------

    async def words_set(self, conn: Connection, req: WordsSet | WordsRemove) -> Reply:
        self._admin_only(conn, req.rid)
        if not normalise(req.word):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "the word has no letters", rid=req.rid, field="word")
        policy = str(Policy(req.policy)) if isinstance(req, WordsSet) else None
        user_id = session_of(conn).user.id

        async def txn(c: asyncpg.Connection) -> bool:
            return await moderation.set_word_txn(c, req.word, policy, user_id)
        changed = await self.core.audit(conn, "words_set" if policy else "words_remove",
                                        detail={"word": req.word, "policy": policy}, txn=txn)
        if not changed:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such word", rid=req.rid, field="word")
        self.core.words = WordFilter(await moderation.words(self.core.store))  # this node, before answering
        return {"word": req.word, "policy": policy}

    async def words_list(self, conn: Connection, req: WordsList) -> Reply:
        self._admin_only(conn, req.rid)
        return {"words": [{"word": w, "policy": p} for w, p in await moderation.words(self.core.store)]}

    async def audit_query(self, conn: Connection, req: Audit) -> Reply:
        self._admin_only(conn, req.rid)
        since = datetime.fromtimestamp(req.since / 1000, UTC) if req.since is not None else None
        return {"entries": await moderation.audit_entries(self.core.store, since=since, actor=req.actor,
                                                          limit=req.limit)}

    async def profile(self, conn: Connection, req: Profile) -> Reply:
        user = session_of(conn).user
        if user.role not in _CARE_TEAM:
            raise ProtocolError(ErrorCode.FORBIDDEN, "staff only", rid=req.rid)
        roster = await self.core.resolve(user, req.conv, req.rid)
        member = self.core.member_id(roster, self.core.directory.viewer(user.id), req.member, req.rid,
                                     field="member")
        subject = (await self.core.directory.users([member]))[member]
        family = self.core.directory.viewer(member).family
        linked = await self.core.directory.users(list(family))

        async def phone(c: asyncpg.Connection) -> bytes | None:
            found: bytes | None = await c.fetchval("select phone_enc from users where id = $1", member)
            return found
        # Every staff read of a patient's profile is audited (SEC-1); the read and its record are one transaction.
        blob = await self.core.audit(conn, "profile_read", target_id=member, conv_id=roster.conv_id, txn=phone)
        found: dict[str, Any] = subject.public() | {
            "phone": self.core.cipher.decrypt(blob) if blob else None,
            "family": [linked[i].public() for i in sorted(family) if i in linked],
        }
        return found


def _asking(request_id: int, viewer: visibility.Viewer, requester: User, roster: Roster) -> dict[str, Any]:
    """A friend request as its addressee sees it: the requester by her pseudonym in that group."""
    shown = views.person(viewer, requester, roster)
    return {"request": request_id, "conv": roster.address, "from": {"id": shown.id, "name": shown.name}}


async def ban_txn(conn: asyncpg.Connection, user_id: int, banned: bool) -> None:
    """Ban or unban an account; a ban ends every session at once (IM-14)."""
    revoked = await accounts.set_banned_txn(conn, user_id, banned)
    if revoked:
        await notify_txn(conn, SessionsEnded([str(s) for s in revoked], reason=str(ErrorCode.ACCOUNT_BANNED)))
    await notify_txn(conn, UserChanged(user_id))


async def link_family_txn(conn: asyncpg.Connection, patient_id: int, family_id: int, relation: str) -> None:
    await accounts.link_family_txn(conn, patient_id, family_id, relation)
    await notify_txn(conn, UserChanged(patient_id))
    await notify_txn(conn, UserChanged(family_id))
