"""Groups: ``group_create``, ``group_add``, ``group_remove``, ``members``, ``family_invite`` (SPEC.md §5.6, §5.13).

Membership changes are actions; every node hears of them on the bus and tells the
members (``conv`` pushes), this one before it answers.
"""

from __future__ import annotations

from imserver import views, visibility
from imserver.access import (
    access_conversation,
    access_managed_group,
    access_user,
    actor_of,
    require_group,
    require_role,
    user_of,
)
from imserver.actions.conversations import do_add_member, do_create_group, do_invite_family, do_remove_member
from imserver.connection import Connection
from imserver.handlers.base import route
from imserver.model import MemberRole
from imserver.services import Services
from protocol.frames import (
    FamilyInvite,
    FamilyInviteAnswer,
    GroupAdd,
    GroupAddAnswer,
    GroupCreate,
    GroupCreateAnswer,
    GroupRemove,
    GroupRemoveAnswer,
    Member,
    Members,
    MembersAnswer,
)


async def group_create(s: Services, client: Connection, req: GroupCreate) -> GroupCreateAnswer:
    user = require_role(client, visibility.HOSPITAL, "only staff, bots and admins create groups")
    members = [await access_user(s, name, field=f"members[{i}]") for i, name in enumerate(req.members)]
    conv_id = await do_create_group(s.actions, actor_of(client), req.name, user.id, [m.id for m in members])
    return GroupCreateAnswer(rid=req.rid, conv=f"g:{conv_id}")


async def group_add(s: Services, client: Connection, req: GroupAdd) -> GroupAddAnswer:
    roster = await access_managed_group(s, client, req.conv)
    member = await access_user(s, req.user, field="user")
    role = MemberRole(req.role)
    await do_add_member(s.actions, actor_of(client), roster.conv_id, member.id, role)
    return GroupAddAnswer(rid=req.rid, conv=roster.address, user=member.username, role=str(role))


async def group_remove(s: Services, client: Connection, req: GroupRemove) -> GroupRemoveAnswer:
    """Someone leaves a group, or a manager removes them; the family who came in with her leave too (IM-8)."""
    member = await access_user(s, req.user, field="user")
    leaving = member.id == user_of(client).id
    roster = await (access_conversation if leaving else access_managed_group)(s, client, req.conv)
    require_group(roster)
    await do_remove_member(s.actions, actor_of(client), roster.conv_id, member.id)
    return GroupRemoveAnswer(rid=req.rid, conv=roster.address, user=member.username)


async def members(s: Services, client: Connection, req: Members) -> MembersAnswer:
    """The members in the order they first joined (their pseudonyms' numbers), a page at a time."""
    roster = await access_conversation(s, client, req.conv)
    pager: views.Pager[Member] = views.Pager(req.cursor)
    page = sorted((key, uid) for uid in roster.members if pager.wants(key := views.joined(roster, uid)))
    users = await s.directory.users([uid for _, uid in page])
    viewer = s.directory.viewer(user_of(client).id)
    pager.fill((key, views.member(viewer, users[uid], str(roster.members[uid]), roster))
               for key, uid in page if uid in users)
    return MembersAnswer(rid=req.rid, conv=roster.address, members=pager.items, cursor=pager.cursor)


async def family_invite(s: Services, client: Connection, req: FamilyInvite) -> FamilyInviteAnswer:
    roster = await access_conversation(s, client, req.conv)
    family = await access_user(s, req.family, field="family")
    require_group(roster)
    await do_invite_family(s.actions, actor_of(client), roster.conv_id, family.id)
    return FamilyInviteAnswer(rid=req.rid, conv=roster.address, family=family.username)


ROUTES = dict([
    route(GroupCreate).to(group_create), route(GroupAdd).to(group_add), route(GroupRemove).to(group_remove),
    route(Members).to(members), route(FamilyInvite).to(family_invite),
])
