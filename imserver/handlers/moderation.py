"""Moderation: group switches, isolation, bans, the word list and the audit log (IM-4, IM-5, IM-9,
IM-11..IM-15, SEC-1; SPEC.md §5.9–§5.12, §5.15, §5.16).

The changes are actions (``imserver.actions``): checked, audited and announced there. Their live
effects (closing a banned account's sessions, retracting an isolated member's messages, the
``group`` push) follow from the events, the same whichever node or operator made the change.
"""

from __future__ import annotations

from datetime import UTC, datetime

from imserver import views
from imserver.access import access_managed_group, access_member, access_user, actor_of, require_role
from imserver.actions.accounts import do_ban_user
from imserver.actions.conversations import do_ban_group, do_isolate, do_set_group
from imserver.actions.words import do_set_word
from imserver.connection import Connection
from imserver.handlers.base import route
from imserver.services import Services
from imserver.store import moderation
from imserver.visibility import ADMINS
from imserver.words import Policy
from protocol.frames import (
    Audit,
    AuditAnswer,
    AuditEntry,
    GroupBan,
    GroupBanAnswer,
    GroupSet,
    GroupSetAnswer,
    GroupUnban,
    Isolate,
    IsolateAnswer,
    Unisolate,
    UserBan,
    UserBanAnswer,
    UserUnban,
    WordAnswer,
    WordEntry,
    WordsList,
    WordsListAnswer,
    WordsRemove,
    WordsSet,
)


async def group_set(s: Services, client: Connection, req: GroupSet) -> GroupSetAnswer:
    roster = await access_managed_group(s, client, req.conv)
    await do_set_group(s.actions, actor_of(client), roster.conv_id, muted=req.muted,
                       allow_friends=req.allow_friends, family_can_speak=req.family_can_speak)
    updated = await s.directory.roster(roster.conv_id)
    assert updated is not None
    return GroupSetAnswer(rid=req.rid, conv=roster.address, **updated.settings())


async def isolate(s: Services, client: Connection, req: Isolate | Unisolate) -> IsolateAnswer:
    roster = await access_managed_group(s, client, req.conv)
    member = access_member(s, client, roster, req.member, field="member")
    on = isinstance(req, Isolate)
    await do_isolate(s.actions, actor_of(client), roster.conv_id, member, on)
    return IsolateAnswer(rid=req.rid, conv=roster.address, member=req.member, isolated=on)


async def group_ban(s: Services, client: Connection, req: GroupBan | GroupUnban) -> GroupBanAnswer:
    require_role(client, ADMINS, "administrators only")
    roster = await access_managed_group(s, client, req.conv)
    banned = isinstance(req, GroupBan)
    await do_ban_group(s.actions, actor_of(client), roster.conv_id, banned)
    return GroupBanAnswer(rid=req.rid, conv=roster.address, banned=banned)


async def user_ban(s: Services, client: Connection, req: UserBan | UserUnban) -> UserBanAnswer:
    require_role(client, ADMINS, "administrators only")
    target = await access_user(s, req.user, field="user")
    banned = isinstance(req, UserBan)
    await do_ban_user(s.actions, actor_of(client), target.id, banned)
    return UserBanAnswer(rid=req.rid, user=target.username, banned=banned)


async def words_set(s: Services, client: Connection, req: WordsSet | WordsRemove) -> WordAnswer:
    require_role(client, ADMINS, "administrators only")
    policy = req.policy if isinstance(req, WordsSet) else None
    await do_set_word(s.actions, actor_of(client), req.word, None if policy is None else Policy(policy))
    return WordAnswer(rid=req.rid, word=req.word, policy=policy)


async def words_list(s: Services, client: Connection, req: WordsList) -> WordsListAnswer:
    require_role(client, ADMINS, "administrators only")
    found = sorted(await moderation.words(s.store))
    pager: views.Pager[WordEntry] = views.Pager(req.cursor)
    pager.fill(((word,), WordEntry(word, policy)) for word, policy in found)
    return WordsListAnswer(rid=req.rid, words=pager.items, cursor=pager.cursor)


async def audit(s: Services, client: Connection, req: Audit) -> AuditAnswer:
    require_role(client, ADMINS, "administrators only")
    since = datetime.fromtimestamp(req.since / 1000, UTC) if req.since is not None else None
    found = await moderation.audit_entries(s.store, since=since, actor=req.actor, limit=req.limit)
    # Fewer than ``limit`` when they would not fit; the client reads on from the last one (SPEC.md §5.16).
    entries = views.Pager[AuditEntry](None).fill(((e["id"],), AuditEntry(**e)) for e in found)
    return AuditAnswer(rid=req.rid, entries=entries)


ROUTES = dict([
    route(GroupSet).to(group_set), route(Isolate).to(isolate), route(Unisolate).to(isolate),
    route(GroupBan).to(group_ban), route(GroupUnban).to(group_ban), route(UserBan).to(user_ban),
    route(UserUnban).to(user_ban), route(WordsSet).to(words_set), route(WordsRemove).to(words_set),
    route(WordsList).to(words_list), route(Audit).to(audit),
])
