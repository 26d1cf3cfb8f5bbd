"""Care teams, staff quick replies and facts about patients (SPEC.md §5.19, §5.20; MSG-3, SEC-1).

Quick replies are for staff and admin accounts; who uses and who manages one follows from
its scope (``imserver.actions.quickreplies``). The server fills a reply in for one
conversation, since it alone may know the values: the patient's name as every reader of
that conversation may see it (``views.name_for_readers``), so a quick reply never carries a
real name into a group where she goes by her pseudonym; the facts bots recorded about her.
The client sends the result with the ordinary ``send``. Managing teams and quick replies,
and recording facts, are actions, audited where SEC-1 asks.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

import msgspec

from imserver import templating, views, visibility
from imserver.access import access_conversation, access_member, access_user, actor_of, require_role
from imserver.actions.facts import do_set_fact
from imserver.actions.quickreplies import Scope, do_delete_quick_reply, do_save_quick_reply
from imserver.actions.teams import do_create_team, do_set_team_member
from imserver.connection import Connection
from imserver.handlers.base import route
from imserver.handlers.messaging import content
from imserver.model import Role, Roster, User
from imserver.services import Services
from imserver.store import facts, quickreplies
from imserver.templating import Needs
from imserver.visibility import ADMINS
from protocol import ErrorCode, ProtocolError
from protocol.clock import HOSPITAL_ZONE
from protocol.frames import (
    FactsSet,
    FactsSetAnswer,
    MemberId,
    QrDelete,
    QrDeleteAnswer,
    QrList,
    QrRender,
    QrRenderAnswer,
    QrSave,
    QrSaveAnswer,
    QrSearch,
    QuickRepliesAnswer,
    QuickReply,
    ReadyMessage,
    Team,
    TeamAdd,
    TeamCreate,
    TeamCreateAnswer,
    TeamMemberAnswer,
    TeamRemove,
    Teams,
    TeamsAnswer,
)

STAFF_ONLY = "quick replies are for staff accounts"
SCOPE_ORDER = ("personal", "team", "shared")
"""How ``qr_list`` orders quick replies, each scope by shortcut (SPEC.md §5.19)."""

# -- teams ------------------------------------------------------------------------------------


async def team_create(s: Services, client: Connection, req: TeamCreate) -> TeamCreateAnswer:
    require_role(client, ADMINS, "administrators only")
    await do_create_team(s.actions, actor_of(client), req.name)
    return TeamCreateAnswer(rid=req.rid, team=req.name)


async def team_member(s: Services, client: Connection, req: TeamAdd | TeamRemove) -> TeamMemberAnswer:
    require_role(client, ADMINS, "administrators only")
    member = await access_user(s, req.user, field="user")
    await do_set_team_member(s.actions, actor_of(client), req.team, member, isinstance(req, TeamAdd))
    return TeamMemberAnswer(rid=req.rid, team=req.team, user=member.username)


async def teams(s: Services, client: Connection, req: Teams) -> TeamsAnswer:
    user = require_role(client, visibility.CARE_TEAM, STAFF_ONLY)
    pager: views.Pager[Team] = views.Pager(req.cursor)
    found = sorted(t for t in await quickreplies.teams(s.store, None if user.role is Role.ADMIN else user.id)
                   if pager.wants((t[0],)))
    people = await s.directory.users(list({i for _, ids in found for i in ids}))
    pager.fill(((name,), Team(name=name, members=[views.identity(people[i]) for i in ids if i in people]))
               for name, ids in found)
    return TeamsAnswer(rid=req.rid, teams=pager.items, cursor=pager.cursor)


# -- managing quick replies -------------------------------------------------------------------


async def save(s: Services, client: Connection, req: QrSave) -> QrSaveAnswer:
    user = require_role(client, visibility.CARE_TEAM, STAFF_ONLY)
    scope = Scope.of(req.scope, req.team)
    text, body = content(s, req)
    templating.needs(*((text, "text") if body is None else (body, "body")))
    if body is not None:  # the files it carries exist and are the sender's to send (MSG-4)
        await s.attachments.bind(user, s.kinds, req.kind, body)
    reply_id = await do_save_quick_reply(s.actions, actor_of(client), req.id, scope, shortcut=req.shortcut,
                                         title=req.title, kind=req.kind, text=text, body=body)
    saved = (await quickreplies.usable(s.store, user.id, [reply_id])).get(reply_id)
    if saved is None:  # deleted the moment it was saved
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such quick reply", field="id")
    return QrSaveAnswer(rid=req.rid, **msgspec.structs.asdict(_entry(saved, user)))


async def delete(s: Services, client: Connection, req: QrDelete) -> QrDeleteAnswer:
    require_role(client, visibility.CARE_TEAM, STAFF_ONLY)
    await do_delete_quick_reply(s.actions, actor_of(client), req.id)
    return QrDeleteAnswer(rid=req.rid, id=req.id)


# -- listing and search -----------------------------------------------------------------------


async def listing(s: Services, client: Connection, req: QrList) -> QuickRepliesAnswer:
    user = require_role(client, visibility.CARE_TEAM, STAFF_ONLY)
    pager: views.Pager[QuickReply] = views.Pager(req.cursor)
    keyed = sorted(((SCOPE_ORDER.index(r.scope), r.shortcut, r.id), r)
                   for r in await quickreplies.listing(s.store, user.id, req.scope))
    pager.fill((key, _entry(r, user)) for key, r in keyed if pager.wants(key))
    return QuickRepliesAnswer(rid=req.rid, replies=pager.items, cursor=pager.cursor)


async def search(s: Services, client: Connection, req: QrSearch) -> QuickRepliesAnswer:
    """The best ``limit``, fewer when they would not fit in one answer (SPEC.md §5.19)."""
    user = require_role(client, visibility.CARE_TEAM, STAFF_ONLY)
    found = await quickreplies.search(s.store, user.id, req.q.strip(), req.limit)
    replies = views.Pager[QuickReply](None).fill(((rank,), _entry(r, user)) for rank, r in enumerate(found))
    return QuickRepliesAnswer(rid=req.rid, replies=replies)


def _entry(reply: quickreplies.QuickReply, user: User) -> QuickReply:
    """A quick reply as ``qr_list`` and ``qr_search`` show it, with what filling it in needs."""
    needs = _needs(reply)
    return QuickReply(
        id=reply.id, scope=reply.scope, shortcut=reply.shortcut, title=reply.title, kind=reply.kind, text=reply.text,
        variables=list(needs.variables), prompts=list(needs.prompts), uses=reply.uses,
        editable=reply.scope != "shared" or user.role is Role.ADMIN, team=reply.team, body=reply.body,
    )


# -- using ------------------------------------------------------------------------------------


async def render(s: Services, client: Connection, req: QrRender) -> QrRenderAnswer:
    user = require_role(client, visibility.CARE_TEAM, STAFF_ONLY)
    roster = await access_conversation(s, client, req.conv)
    found = await quickreplies.usable(s.store, user.id, list(set(req.ids)))
    for index, reply_id in enumerate(req.ids):
        if reply_id not in found:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such quick reply", field=f"ids[{index}]")
    replies = [found[i] for i in req.ids]
    needs: Needs = reduce(or_, map(_needs, replies), Needs())
    missing = [p for p in needs.prompts if p not in req.fill]
    if missing:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"fill in: {', '.join(missing)}", field="fill")
    values = await _values(s, client, user, roster, needs, req.member)
    ready = _messages(s, replies, values, req.fill)
    await quickreplies.count_uses(s.store, user.id, list(found))
    return QrRenderAnswer(rid=req.rid, conv=roster.address, messages=ready)


async def _values(
    s: Services, client: Connection, user: User, roster: Roster, needs: Needs, member: MemberId | None
) -> dict[str, str]:
    """The variables' values in this conversation (SPEC.md §5.19)."""
    today = s.clock().astimezone(HOSPITAL_ZONE).date()
    values = {"me": user.display_name, "me.title": user.title, "today": templating.day_text(today)}
    if "group" in needs.variables:
        if roster.kind != "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "{{group}} is for groups", field="conv")
        values["group"] = roster.name
    if needs.patient:
        patient = await _patient(s, client, user, roster, member)
        readers = [s.directory.viewer(u) for u in roster.members]
        values["patient"] = views.name_for_readers(patient, roster, readers)
        known = await facts.facts(s.store, patient.id, list(needs.facts))
        unknown = [k for k in needs.facts if k not in known]
        if unknown:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"not recorded for this patient: {', '.join(unknown)}",
                                field="member")
        values |= {f"{templating.FACT}{k}": v for k, v in known.items()}
    return values


async def _patient(s: Services, client: Connection, me: User, roster: Roster, member: MemberId | None) -> User:
    """The patient a reply is for: the member named, or the other person of a direct chat."""
    if member is not None:
        patient_id = access_member(s, client, roster, member, field="member")
    elif roster.kind != "group":
        patient_id = next((u for u in roster.members if u != me.id), 0)
    else:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "say which patient (member) it is for", field="member")
    patient = (await s.directory.users([patient_id])).get(patient_id)
    if patient is None or patient.role is not Role.PATIENT:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "not a patient", field="member")
    return patient


def _messages(s: Services, replies: list[quickreplies.QuickReply], values: dict[str, str], fill: dict[str, str]
              ) -> list[ReadyMessage]:
    """The filled-in replies as messages: the texts joined into one, each other kind a message of its own."""
    ready: list[ReadyMessage] = []
    texts: list[str] = []
    joined = ReadyMessage(kind="text")
    for index, reply in enumerate(replies):
        filled = templating.render(reply.template, values, fill)
        if reply.body is None:
            if not texts:
                ready.append(joined)
            texts.append(filled)
            continue
        try:
            body, _ = s.kinds.validate(reply.kind, filled)
        except ProtocolError as exc:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"filled in, it is not a valid {reply.kind}: {exc.detail}",
                                field=f"ids[{index}]") from None
        ready.append(ReadyMessage(kind=reply.kind, body=body))
    if texts:
        joined.text = "\n".join(texts)
        if len(joined.text) > s.settings.max_text:
            raise ProtocolError(ErrorCode.TEXT_TOO_LONG, f"at most {s.settings.max_text} characters", field="ids")
    if sum(map(views.size, ready)) > views.LIST_BUDGET:  # each fits a message; ten together may not fit an answer
        raise ProtocolError(ErrorCode.BAD_REQUEST, "too large together for one answer: fill in fewer at once",
                            field="ids")
    return ready


def _needs(reply: quickreplies.QuickReply) -> Needs:
    return templating.needs(reply.template, "text" if reply.body is None else "body")


# -- facts ------------------------------------------------------------------------------------


async def facts_set(s: Services, client: Connection, req: FactsSet) -> FactsSetAnswer:
    require_role(client, visibility.HOSPITAL, "facts are recorded by bots and staff")
    patient = await access_user(s, req.user, field="user")
    await do_set_fact(s.actions, actor_of(client), patient, req.key, req.value)
    return FactsSetAnswer(rid=req.rid, user=patient.username, key=req.key, value=req.value)


ROUTES = dict([
    route(TeamCreate).to(team_create), route(TeamAdd).to(team_member), route(TeamRemove).to(team_member),
    route(Teams).to(teams), route(QrSave).to(save), route(QrDelete).to(delete), route(QrList).to(listing),
    route(QrSearch).to(search), route(QrRender).to(render), route(FactsSet).to(facts_set),
])
