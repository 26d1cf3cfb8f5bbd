"""Care teams, staff quick replies and facts about patients (SPEC.md §5.19, §5.20; MSG-3, SEC-1).

Quick replies are for staff and admin accounts. Who uses and who manages one
follows from its scope:

    scope      used by                 managed by
    personal   its owner               its owner
    team       the team's members      the team's members
    shared     every staff account     admin accounts

The server fills a reply in for one conversation, since it alone may know the
values: the patient's name as every reader of that conversation may see it
(``views.name_for_readers``), so a quick reply never carries a real name into a
group where she goes by her pseudonym; the facts bots recorded about her. The
client sends the result with the ordinary ``send``. Managing teams and quick replies,
and recording facts, are actions (``imserver.actions``), audited where SEC-1 asks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import reduce
from operator import or_
from typing import Any
from zoneinfo import ZoneInfo

from imserver import templating, views
from imserver.actions.facts import do_set_fact
from imserver.actions.quickreplies import Scope, do_delete_quick_reply, do_save_quick_reply
from imserver.actions.teams import do_create_team, do_set_team_member
from imserver.attachments import Grant
from imserver.connection import Connection
from imserver.handlers import Handler, Handlers, Reply, session_of
from imserver.model import Role, Roster, User
from imserver.store import facts, quickreplies
from imserver.store.attachments import File
from imserver.store.quickreplies import QuickReply
from imserver.templating import Needs
from protocol import ErrorCode, ProtocolError
from protocol.frames import (
    FactsSet,
    MemberId,
    QrDelete,
    QrList,
    QrRender,
    QrSave,
    QrSearch,
    Request,
    TeamAdd,
    TeamCreate,
    TeamRemove,
    Teams,
)

_STAFF = frozenset({Role.STAFF, Role.ADMIN})
_FACT_WRITERS = frozenset({Role.STAFF, Role.ADMIN, Role.BOT})
SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai_today() -> date:
    return datetime.now(SHANGHAI).date()


class QuickReplyHandlers:
    def __init__(self, core: Handlers, today: Callable[[], date] = shanghai_today) -> None:
        self.core = core
        self.today = today
        self.table: dict[type[Request], Handler] = {
            TeamCreate: self.team_create, TeamAdd: self.team_member, TeamRemove: self.team_member, Teams: self.teams,
            QrSave: self.save, QrDelete: self.delete, QrList: self.listing, QrSearch: self.search,
            QrRender: self.render, FactsSet: self.facts_set,
        }
        core.attachments.rules.append(self._in_a_quick_reply)

    async def _in_a_quick_reply(self, user: User, file: File) -> Grant | None:
        """Staff may fetch the files of the quick replies they may use, before any message carries them."""
        if await quickreplies.may_use_attachment(self.core.store, user.id, file.id):
            return Grant("quick_reply")
        return None

    def _staff(self, conn: Connection, rid: int) -> User:
        user = session_of(conn).user
        if user.role not in _STAFF:
            raise ProtocolError(ErrorCode.FORBIDDEN, "quick replies are for staff accounts", rid=rid)
        return user

    def _admin(self, conn: Connection, rid: int) -> User:
        user = session_of(conn).user
        if user.role is not Role.ADMIN:
            raise ProtocolError(ErrorCode.FORBIDDEN, "administrators only", rid=rid)
        return user

    # -- teams ------------------------------------------------------------------------------

    async def team_create(self, conn: Connection, req: TeamCreate) -> Reply:
        self._admin(conn, req.rid)
        await do_create_team(self.core.ctx, self.core.actor(conn), req.name)
        return {"team": req.name}

    async def team_member(self, conn: Connection, req: TeamAdd | TeamRemove) -> Reply:
        self._admin(conn, req.rid)
        member = await self.core.user(req.user, req.rid, field="user")
        await do_set_team_member(self.core.ctx, self.core.actor(conn), req.team, member, isinstance(req, TeamAdd))
        return {"team": req.team, "user": member.username}

    async def teams(self, conn: Connection, req: Teams) -> Reply:
        user = self._staff(conn, req.rid)
        found = await quickreplies.teams(self.core.store, None if user.role is Role.ADMIN else user.id)
        people = await self.core.directory.users(list({i for _, ids in found for i in ids}))
        return {"teams": [
            {"name": name, "members": [people[i].public() for i in ids if i in people]} for name, ids in found
        ]}

    # -- managing quick replies -------------------------------------------------------------

    async def save(self, conn: Connection, req: QrSave) -> Reply:
        user = self._staff(conn, req.rid)
        scope = Scope.of(req.scope, req.team)
        text, body = self.core.content(req)
        try:
            templating.needs(*((text, "text") if body is None else (body, "body")))
        except ProtocolError as exc:
            exc.rid = req.rid
            raise
        if body is not None:  # the files it carries exist and are the sender's to send (MSG-4)
            await self.core.attachments.bind(user, self.core.kinds, req.kind, body, req.rid)
        reply_id = await do_save_quick_reply(
            self.core.ctx, self.core.actor(conn), req.id, scope, shortcut=req.shortcut, title=req.title,
            kind=req.kind, text=text, body=body,
        )
        saved = (await quickreplies.usable(self.core.store, user.id, [reply_id])).get(reply_id)
        if saved is None:  # deleted the moment it was saved
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such quick reply", rid=req.rid, field="id")
        return self._entry(saved, user)

    async def delete(self, conn: Connection, req: QrDelete) -> Reply:
        self._staff(conn, req.rid)
        await do_delete_quick_reply(self.core.ctx, self.core.actor(conn), req.id)
        return {"id": req.id}

    # -- listing and search -----------------------------------------------------------------

    async def listing(self, conn: Connection, req: QrList) -> Reply:
        user = self._staff(conn, req.rid)
        found = await quickreplies.listing(self.core.store, user.id, req.scope)
        return {"replies": [self._entry(r, user) for r in found]}

    async def search(self, conn: Connection, req: QrSearch) -> Reply:
        user = self._staff(conn, req.rid)
        found = await quickreplies.search(self.core.store, user.id, req.q.strip(), req.limit)
        return {"replies": [self._entry(r, user) for r in found]}

    def _entry(self, reply: QuickReply, user: User) -> dict[str, Any]:
        """A quick reply as ``qr_list`` and ``qr_search`` show it, with what filling it in needs."""
        needs = _needs(reply)
        entry: dict[str, Any] = {
            "id": reply.id, "scope": reply.scope, "shortcut": reply.shortcut, "title": reply.title,
            "kind": reply.kind, "text": reply.text, "variables": list(needs.variables), "prompts": list(needs.prompts),
            "uses": reply.uses, "editable": reply.scope != "shared" or user.role is Role.ADMIN,
        }
        if reply.team is not None:
            entry["team"] = reply.team
        if reply.body is not None:
            entry["body"] = reply.body
        return entry

    # -- using ------------------------------------------------------------------------------

    async def render(self, conn: Connection, req: QrRender) -> Reply:
        user = self._staff(conn, req.rid)
        roster = await self.core.resolve(user, req.conv, req.rid)
        found = await quickreplies.usable(self.core.store, user.id, list(set(req.ids)))
        for index, reply_id in enumerate(req.ids):
            if reply_id not in found:
                raise ProtocolError(ErrorCode.NOT_FOUND, "no such quick reply", rid=req.rid, field=f"ids[{index}]")
        replies = [found[i] for i in req.ids]
        needs: Needs = reduce(or_, map(_needs, replies), Needs())
        missing = [p for p in needs.prompts if p not in req.fill]
        if missing:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"fill in: {', '.join(missing)}", rid=req.rid, field="fill")
        values = await self._values(user, roster, needs, req.member, req.rid)
        ready = self._messages(replies, values, req.fill, req.rid)
        await quickreplies.count_uses(self.core.store, user.id, list(found))
        return {"conv": roster.address, "messages": ready}

    async def _values(
        self, user: User, roster: Roster, needs: Needs, member: MemberId | None, rid: int
    ) -> dict[str, str]:
        """The variables' values in this conversation (SPEC.md §5.19)."""
        values = {"me": user.display_name, "me.title": user.title, "today": templating.day_text(self.today())}
        if "group" in needs.variables:
            if roster.kind != "group":
                raise ProtocolError(ErrorCode.BAD_REQUEST, "{{group}} is for groups", rid=rid, field="conv")
            values["group"] = roster.name
        if needs.patient:
            patient = await self._patient(user, roster, member, rid)
            readers = [self.core.directory.viewer(u) for u in roster.members]
            values["patient"] = views.name_for_readers(patient, roster, readers)
            known = await facts.facts(self.core.store, patient.id, list(needs.facts))
            unknown = [k for k in needs.facts if k not in known]
            if unknown:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"not recorded for this patient: {', '.join(unknown)}",
                                    rid=rid, field="member")
            values |= {f"{templating.FACT}{k}": v for k, v in known.items()}
        return values

    async def _patient(self, user: User, roster: Roster, member: MemberId | None, rid: int) -> User:
        """The patient a reply is for: the member named, or the other person of a direct chat."""
        if member is not None:
            patient_id = self.core.member_id(roster, self.core.directory.viewer(user.id), member, rid, field="member")
        elif roster.kind != "group":
            patient_id = next((u for u in roster.members if u != user.id), 0)
        else:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "say which patient (member) it is for", rid=rid,
                                field="member")
        patient = (await self.core.directory.users([patient_id])).get(patient_id)
        if patient is None or patient.role is not Role.PATIENT:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a patient", rid=rid, field="member")
        return patient

    def _messages(
        self, replies: list[QuickReply], values: dict[str, str], fill: dict[str, str], rid: int
    ) -> list[dict[str, Any]]:
        """The filled-in replies as messages: the texts joined into one, each other kind a message of its own."""
        ready: list[dict[str, Any]] = []
        texts: list[str] = []
        for index, reply in enumerate(replies):
            filled = templating.render(reply.template, values, fill)
            if reply.body is None:
                if not texts:
                    ready.append({"kind": "text"})
                texts.append(filled)
                continue
            try:
                body, _ = self.core.kinds.validate(reply.kind, filled)
            except ProtocolError as exc:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"filled in, it is not a valid {reply.kind}: {exc.detail}",
                                    rid=rid, field=f"ids[{index}]") from None
            ready.append({"kind": reply.kind, "body": body})
        if texts:
            text = "\n".join(texts)
            if len(text) > self.core.settings.max_text:
                raise ProtocolError(ErrorCode.TEXT_TOO_LONG, f"at most {self.core.settings.max_text} characters",
                                    rid=rid, field="ids")
            next(m for m in ready if m["kind"] == "text")["text"] = text
        return ready

    # -- facts ------------------------------------------------------------------------------

    async def facts_set(self, conn: Connection, req: FactsSet) -> Reply:
        if session_of(conn).user.role not in _FACT_WRITERS:
            raise ProtocolError(ErrorCode.FORBIDDEN, "facts are recorded by bots and staff", rid=req.rid)
        patient = await self.core.user(req.user, req.rid, field="user")
        await do_set_fact(self.core.ctx, self.core.actor(conn), patient, req.key, req.value)
        return {"user": patient.username, "key": req.key, "value": req.value}


def _needs(reply: QuickReply) -> Needs:
    return templating.needs(reply.template, "text" if reply.body is None else "body")
