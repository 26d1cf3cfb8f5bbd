"""Moderation and care-team requests (IM-4, IM-5, IM-8, IM-11..IM-15, SEC-1): who may ask, and the answers.

What each change does, its audit entry and its bus event are the actions' (``imserver.actions``).
Live effects (closing a banned account's sessions, retracting an isolated member's messages, the
``group`` push) follow from those events, so they happen the same way whichever node or operator
command made the change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from imserver import views, visibility
from imserver.actions.accounts import do_ban_user, do_link_family
from imserver.actions.audit import do_read_phone
from imserver.actions.conversations import do_ban_group, do_invite_family, do_isolate, do_set_group
from imserver.actions.friends import do_answer_friend, do_request_friend
from imserver.actions.words import do_set_word
from imserver.connection import Connection, framed
from imserver.handlers import Handler, Handlers, Reply, session_of
from imserver.model import Role, Roster, User
from imserver.store import moderation
from imserver.words import Policy
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
        await do_set_group(self.core.ctx, self.core.actor(conn), roster.conv_id, muted=req.muted,
                           allow_friends=req.allow_friends, family_can_speak=req.family_can_speak)
        updated = await self.core.directory.roster(roster.conv_id)
        assert updated is not None
        return {"conv": roster.address, **updated.settings()}

    async def isolate(self, conn: Connection, req: Isolate | Unisolate) -> Reply:
        roster = await self.core.managed_group(conn, req.conv, req.rid)
        viewer = self.core.directory.viewer(session_of(conn).user.id)
        member = self.core.member_id(roster, viewer, req.member, req.rid, field="member")
        on = isinstance(req, Isolate)
        await do_isolate(self.core.ctx, self.core.actor(conn), roster.conv_id, member, on)
        return {"conv": roster.address, "member": req.member, "isolated": on}

    async def group_ban(self, conn: Connection, req: GroupBan | GroupUnban) -> Reply:
        self._admin_only(conn, req.rid)
        roster = await self.core.managed_group(conn, req.conv, req.rid)
        banned = isinstance(req, GroupBan)
        await do_ban_group(self.core.ctx, self.core.actor(conn), roster.conv_id, banned)
        return {"conv": roster.address, "banned": banned}

    async def user_ban(self, conn: Connection, req: UserBan | UserUnban) -> Reply:
        self._admin_only(conn, req.rid)
        target = await self.core.user(req.user, req.rid, field="user")
        banned = isinstance(req, UserBan)
        await do_ban_user(self.core.ctx, self.core.actor(conn), target.id, banned)
        return {"user": target.username, "banned": banned}

    # -- family and friends -----------------------------------------------------------------

    async def family_link(self, conn: Connection, req: FamilyLink) -> Reply:
        if session_of(conn).user.role not in _CARE_TEAM:
            raise ProtocolError(ErrorCode.FORBIDDEN, "staff only", rid=req.rid)
        patient = await self.core.user(req.patient, req.rid, field="patient")
        family = await self.core.user(req.family, req.rid, field="family")
        await do_link_family(self.core.ctx, self.core.actor(conn), patient, family, req.relation)
        return {"patient": patient.username, "family": family.username, "relation": req.relation}

    async def family_invite(self, conn: Connection, req: FamilyInvite) -> Reply:
        user = session_of(conn).user
        roster = await self.core.resolve(user, req.conv, req.rid)
        family = await self.core.user(req.family, req.rid, field="family")
        if roster.kind != "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a group", rid=req.rid, field="conv")
        await do_invite_family(self.core.ctx, self.core.actor(conn), roster.conv_id, family.id)
        return {"conv": roster.address, "family": family.username}

    async def friend_request(self, conn: Connection, req: FriendRequest) -> Reply:
        user = session_of(conn).user
        roster = await self.core.resolve(user, req.conv, req.rid)
        viewer = self.core.directory.viewer(user.id)
        target = self.core.member_id(roster, viewer, req.member, req.rid, field="member")
        them = self.core.directory.viewer(target)
        request_id = await do_request_friend(self.core.ctx, self.core.actor(conn), roster, viewer, them)
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
        conv_id = await do_answer_friend(self.core.ctx, self.core.actor(conn), req.request, req.accept)
        return {"request": req.request, "accepted": req.accept} | ({"conv": f"d:{conv_id}"} if conv_id else {})

    # -- words, audit and profiles ----------------------------------------------------------

    async def words_set(self, conn: Connection, req: WordsSet | WordsRemove) -> Reply:
        self._admin_only(conn, req.rid)
        policy = Policy(req.policy) if isinstance(req, WordsSet) else None
        await do_set_word(self.core.ctx, self.core.actor(conn), req.word, policy)
        return {"word": req.word, "policy": None if policy is None else str(policy)}

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
        # Every staff read of a patient's profile is audited (SEC-1); the read and its record are one transaction.
        blob = await do_read_phone(self.core.ctx, self.core.actor(conn), member, roster.conv_id)
        found: dict[str, Any] = subject.public() | {
            "phone": self.core.cipher.decrypt(blob) if blob else None,
            "family": [linked[i].public() for i in sorted(family) if i in linked],
        }
        return found


def _asking(request_id: int, viewer: visibility.Viewer, requester: User, roster: Roster) -> dict[str, Any]:
    """A friend request as its addressee sees it: the requester by her pseudonym in that group."""
    shown = views.person(viewer, requester, roster)
    return {"request": request_id, "conv": roster.address, "from": {"id": shown.id, "name": shown.name}}
