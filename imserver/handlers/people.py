"""People: family links, friend requests and staff looking up a patient's profile (IM-5, IM-8, SEC-1, SEC-2;
SPEC.md §5.13, §5.14, §5.17)."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from imserver import views, visibility
from imserver.access import access_conversation, access_member, access_user, actor_of, require_role, user_of
from imserver.actions.accounts import do_link_family
from imserver.actions.audit import do_read_phone
from imserver.actions.friends import do_answer_friend, do_request_friend
from imserver.connection import Connection, framed
from imserver.handlers.base import route
from imserver.model import Roster, User
from imserver.services import Services
from imserver.store import moderation
from protocol.frames import (
    FamilyLink,
    FamilyLinkAnswer,
    FriendRequest,
    FriendRequestAnswer,
    FriendRequestEntry,
    FriendRequestPush,
    FriendRequests,
    FriendRequestsAnswer,
    FriendRespond,
    FriendRespondAnswer,
    Profile,
    ProfileAnswer,
    Requester,
)

E = TypeVar("E", bound=FriendRequestEntry)


async def family_link(s: Services, client: Connection, req: FamilyLink) -> FamilyLinkAnswer:
    require_role(client, visibility.CARE_TEAM, "staff only")
    patient = await access_user(s, req.patient, field="patient")
    family = await access_user(s, req.family, field="family")
    await do_link_family(s.actions, actor_of(client), patient, family, req.relation)
    return FamilyLinkAnswer(rid=req.rid, patient=patient.username, family=family.username, relation=req.relation)


async def friend_request(s: Services, client: Connection, req: FriendRequest) -> FriendRequestAnswer:
    user = user_of(client)
    roster = await access_conversation(s, client, req.conv)
    target = access_member(s, client, roster, req.member, field="member")
    viewer, them = s.directory.viewer(user.id), s.directory.viewer(target)
    request_id = await do_request_friend(s.actions, actor_of(client), roster, viewer, them)
    s.hub.deliver([target], framed(_asking(FriendRequestPush, request_id, them, user, roster)))
    return FriendRequestAnswer(rid=req.rid, request=request_id)


async def friend_requests(s: Services, client: Connection, req: FriendRequests) -> FriendRequestsAnswer:
    user = user_of(client)
    viewer = s.directory.viewer(user.id)
    pager: views.Pager[FriendRequestEntry] = views.Pager(req.cursor)
    pending = [p for p in await moderation.pending_friend_requests(s.store, user.id) if pager.wants((p[0],))]
    requesters = await s.directory.users([from_id for _, _, from_id in pending])
    for request_id, conv_id, from_id in pending:
        roster = await s.directory.roster(conv_id)
        if roster is not None and not roster.banned and from_id in requesters and not pager.add(
                (request_id,), _asking(FriendRequestEntry, request_id, viewer, requesters[from_id], roster)):
            break
    return FriendRequestsAnswer(rid=req.rid, requests=pager.items, cursor=pager.cursor)


async def friend_respond(s: Services, client: Connection, req: FriendRespond) -> FriendRespondAnswer:
    conv_id = await do_answer_friend(s.actions, actor_of(client), req.request, req.accept)
    return FriendRespondAnswer(rid=req.rid, request=req.request, accepted=req.accept,
                               conv=f"d:{conv_id}" if conv_id else None)


async def profile(s: Services, client: Connection, req: Profile) -> ProfileAnswer:
    require_role(client, visibility.CARE_TEAM, "staff only")
    roster = await access_conversation(s, client, req.conv)
    member = access_member(s, client, roster, req.member, field="member")
    subject = (await s.directory.users([member]))[member]
    family = s.directory.viewer(member).family
    linked = await s.directory.users(list(family))
    # Every staff read of a patient's profile is audited (SEC-1); the read and its record are one transaction.
    blob = await do_read_phone(s.actions, actor_of(client), member, roster.conv_id)
    return ProfileAnswer(
        rid=req.rid, **msgspec.structs.asdict(views.identity(subject)),
        phone=s.cipher.decrypt(blob) if blob else None,
        family=[views.identity(linked[i]) for i in sorted(family) if i in linked],
    )


def _asking(shape: type[E], request_id: int, viewer: visibility.Viewer, requester: User, roster: Roster) -> E:
    """A friend request as its addressee sees it (the entry of a list, or the push): the requester by her
    pseudonym in that group."""
    shown = views.person(viewer, requester, roster)
    return shape(request=request_id, conv=roster.address, from_=Requester(id=shown.id, name=shown.name))


ROUTES = dict([
    route(FamilyLink).to(family_link), route(FriendRequest).to(friend_request),
    route(FriendRequests).to(friend_requests), route(FriendRespond).to(friend_respond), route(Profile).to(profile),
])
