"""What each request does (SPEC.md §4–§5). Business rules live here; SQL lives in ``store``.

Each handler either answers at once (returns the ``ok`` fields) or, for
``send``, arranges for the answer to be pushed after the commit (returns None).
Handlers raise ProtocolError for anything the client did wrong. Who may see
what is decided by ``visibility`` and rendered by ``views``; the moderation
operations are in ``moderation``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from imserver import auth, filetypes, views, visibility
from imserver.actions.accounts import do_end_session
from imserver.actions.audit import do_record
from imserver.actions.base import Actor, Context
from imserver.actions.conversations import do_add_member, do_create_group, do_open_direct_chat, do_remove_member
from imserver.attachments import AttachmentRules
from imserver.config import Settings
from imserver.connection import Connection, TokenBucket, framed
from imserver.directory import Directory
from imserver.hub import Hub
from imserver.model import MemberRole, Role, Roster, Session, User
from imserver.store import accounts, conversations, messages
from imserver.visibility import Audience, Viewer
from imserver.words import Verdict, WordFilter
from imserver.writer import MessageWriter, Outcome, WriterClosed
from pgtrio.bridge import Store
from protocol import ErrorCode, ProtocolError, negotiate
from protocol.frames import (
    Convs,
    GroupAdd,
    GroupCreate,
    GroupRemove,
    Hello,
    History,
    Logout,
    Members,
    Ping,
    QrSave,
    Read,
    Receipt,
    Request,
    Send,
    Sender,
    Sync,
)
from protocol.kinds import KindRegistry

Reply = dict[str, Any] | None
Handler = Callable[[Connection, Any], Awaitable[Reply]]
_STAFF_AND_BOTS = frozenset({Role.STAFF, Role.BOT, Role.ADMIN})


def now_ms() -> int:
    return int(time.time() * 1000)


def session_of(conn: Connection) -> Session:
    assert conn.session is not None, "handlers run only after the handshake"
    return conn.session


class Handlers:
    def __init__(
        self, settings: Settings, store: Store, directory: Directory, hub: Hub, writer: MessageWriter,
        signer: auth.TokenSigner, cipher: auth.FieldCipher, kinds: KindRegistry, ctx: Context,
    ) -> None:
        self.settings = settings
        self.store = store
        self.directory = directory
        self.hub = hub
        self.writer = writer
        self.signer = signer
        self.cipher = cipher
        self.kinds = kinds
        self.words = WordFilter()
        """Replaced whole when the word list changes (the bus tells the server)."""
        self.attachments = AttachmentRules(store, directory)
        self.ctx = ctx
        """Actions run by this node bring its caches up to date before it answers."""
        self._direct: dict[tuple[int, int], int] = {}
        self.table: dict[type[Request], Handler] = {
            Hello: self.hello, Ping: self.ping, Logout: self.logout, Send: self.send, Sync: self.sync,
            History: self.history, Read: self.read, Receipt: self.receipt, Convs: self.convs,
            GroupCreate: self.group_create, GroupAdd: self.group_add, GroupRemove: self.group_remove,
            Members: self.members,
        }

    async def handle(self, conn: Connection, request: Request) -> Reply:
        return await self.table[type(request)](conn, request)

    # -- handshake (SPEC.md §4) -------------------------------------------------------------

    async def hello(self, conn: Connection, req: Hello) -> Reply:
        version = negotiate(req)
        token = None
        if req.token is not None:
            session_id = self.signer.check(req.token)
            found = await accounts.live_session(self.store, session_id) if session_id else None
            if session_id is None or found is None:
                raise ProtocolError(ErrorCode.TOKEN_INVALID, rid=req.rid, fatal=True)
            user, device, readonly = found
            readonly = readonly or req.readonly
        elif req.username is not None and req.password is not None:
            creds = await accounts.credentials(self.store, req.username)
            if not await auth.verify_password(creds[1] if creds else None, req.password) or creds is None:
                raise ProtocolError(ErrorCode.AUTH_FAILED, rid=req.rid, fatal=True)
            user, device, readonly = creds[0], req.device, req.readonly
            session_id = None
        else:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "hello needs a token or a username and password", rid=req.rid, fatal=True
            )
        if user.banned:  # told only to someone who proved the password or holds a token (IM-14)
            raise ProtocolError(ErrorCode.ACCOUNT_BANNED, rid=req.rid, fatal=True)
        if session_id is None:
            expires = time.time() + self.settings.token_days * 86400
            session_id = await accounts.create_session(
                self.store, user.id, device, readonly, datetime.fromtimestamp(expires, UTC)
            )
            token = self.signer.issue(session_id, expires)
        await self.directory.users([user.id])
        conn.session = Session(session_id, user, device, readonly)
        conn.protocol.open(readonly=readonly)
        s = self.settings
        rate, burst = (s.bot_rate, s.bot_burst) if user.role is Role.BOT else (s.rate, s.burst)
        conn.limiter = TokenBucket(rate, burst)
        self.hub.attach(conn)
        # A ban committed after the account was read revoked only older sessions, and its event may have
        # passed before this attach: look again, now that later events will find this connection (IM-14).
        still = await accounts.live_session(self.store, session_id)
        if still is None or still[0].banned:
            self.hub.detach(conn)
            raise ProtocolError(ErrorCode.ACCOUNT_BANNED, rid=req.rid, fatal=True)
        welcome: dict[str, Any] = {
            "version": version, "session": str(session_id), "user": user.public(), "readonly": readonly,
            "limits": {"max_frame": s.max_frame, "max_text": s.max_text, "rate": rate, "burst": burst,
                       "files": filetypes.limits(s)},
            "server_time": now_ms(),
        }
        if token is not None:
            welcome["token"] = token
        return welcome

    async def ping(self, conn: Connection, req: Ping) -> Reply:
        return {"server_time": now_ms()}

    async def logout(self, conn: Connection, req: Logout) -> Reply:
        session = session_of(conn)
        # The SessionsEnded event closes the session's other connections; this one answers first, then closes.
        self.hub.detach(conn)
        try:
            await do_end_session(self.ctx, Actor.of(session.user, conn.remote), session.id)
        except BaseException:
            self.hub.attach(conn)
            raise
        conn.reply(req.rid)
        conn.finish(1000, ErrorCode.SESSION_ENDED, bye=False)
        return None

    # -- messages (SPEC.md §5.1–§5.4) -------------------------------------------------------

    async def send(self, conn: Connection, req: Send) -> Reply:
        user = session_of(conn).user
        try:
            draft, roster, blocked = await self._draft(conn, user, req)
        except ProtocolError:
            if await self._answer_resend(conn, user, req):  # the rules may have changed since the first try
                return None
            raise
        if blocked:
            if await self._answer_resend(conn, user, req):
                return None
            await do_record(self.ctx, self.actor(conn), "message_refused", conv_id=roster.conv_id,
                            detail={"cid": req.cid, "words": blocked})

        def done(outcome: Outcome) -> None:
            if isinstance(outcome, Exception):
                conn.fail(ProtocolError(ErrorCode.UNAVAILABLE, rid=req.rid))
            elif blocked:
                conn.fail(ProtocolError(ErrorCode.SENSITIVE_WORDS, rid=req.rid))
            else:
                conn.reply(
                    req.rid, conv=roster.address, seq=outcome.seq, id=outcome.id, ts=outcome.ts, dup=outcome.dup
                )
        try:
            await self.writer.submit(draft, done)
        except WriterClosed:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "shutting down", rid=req.rid) from None
        return None

    async def _people_in(self, rows: list[messages.Row]) -> None:
        """Load the senders and mention targets of these rows, members or not any more, before rendering."""
        ids = {r.sender_id for r in rows} | {r.only_user_id for r in rows if r.only_user_id is not None}
        await self.directory.users(list(ids))

    async def _answer_resend(self, conn: Connection, user: User, req: Send) -> bool:
        """A resend of a stored message gets the first answer, whatever the rules say now (DESIGN rule 2)."""
        earlier = await messages.by_client_id(self.store, user.id, req.cid)
        if earlier is None:
            return False
        address, stored, audience = earlier
        if audience == Audience.STAFF:
            conn.fail(ProtocolError(ErrorCode.SENSITIVE_WORDS, rid=req.rid))
        else:
            conn.reply(req.rid, conv=address, seq=stored.seq, id=stored.id, ts=stored.ts, dup=True)
        return True

    async def _draft(self, conn: Connection, user: User, req: Send) -> tuple[messages.Draft, Roster, list[str]]:
        """The message to store, after every rule (IM-4, IM-9, IM-10, IM-11, IM-15); the words that refuse it."""
        text, body = self.content(req)
        roster = await self.resolve(user, req.conv, req.rid)
        viewer = self.directory.viewer(user.id)
        refusal = visibility.send_refusal(viewer, roster)
        if refusal is not None:
            raise ProtocolError(refusal, rid=req.rid)
        only_id = None
        if req.only is not None:
            only_id = self.member_id(roster, viewer, req.only, req.rid, field="only")
            if only_id == user.id:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "a message only for yourself", rid=req.rid, field="only")
        files = None if body is None else await self.attachments.bind(user, self.kinds, req.kind, body, req.rid)
        text, body, verdict = self._screen(user, req.kind, text, body, files or [])
        audience = Audience.STAFF if verdict.blocked else Audience.ONLY if only_id else Audience.ALL
        if verdict.flagged and not verdict.blocked:
            await do_record(self.ctx, self.actor(conn), "message_flagged", conv_id=roster.conv_id,
                            detail={"cid": req.cid, "words": verdict.flagged})
        draft = messages.Draft(
            roster.conv_id, user.id, Sender(user.ref, user.display_name, str(user.role), user.title),
            req.kind, text, body, req.cid, audience=str(audience), only_user_id=only_id,
            flagged=() if verdict.blocked else tuple(verdict.flagged), origin=conn,
            attachments=tuple(dict.fromkeys(f["id"] for f in files)) if files else (),
        )
        return draft, roster, verdict.blocked

    def content(self, req: Send | QrSave) -> tuple[str, dict[str, Any] | None]:
        """The text and the validated body of a message (or of a quick reply's template, SPEC.md §5.19)."""
        if req.kind != "text":
            try:
                body, text = self.kinds.validate(req.kind, req.body)
            except ProtocolError as exc:
                exc.rid = req.rid
                raise
            return text, body
        if req.body is not None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "kind text takes text, not body", rid=req.rid, field="body")
        if not req.text or not req.text.strip():
            raise ProtocolError(ErrorCode.BAD_REQUEST, "text is empty", rid=req.rid, field="text")
        if len(req.text) > self.settings.max_text:
            raise ProtocolError(
                ErrorCode.TEXT_TOO_LONG, f"at most {self.settings.max_text} characters", rid=req.rid, field="text"
            )
        return req.text, None

    def _screen(
        self, sender: User, kind: str, text: str, body: dict[str, Any] | None, files: list[dict[str, Any]]
    ) -> tuple[str, dict[str, Any] | None, Verdict]:
        """The sensitive-word filter (IM-11), applied to what patients and family send.

        In the attachment maps of the body (``files``) only the file's name is words: its id and type are not.
        """
        if sender.role not in visibility.MASKED_ROLES or not self.words.size:
            return text, body, Verdict(text)
        if body is None:
            verdict = self.words.check(text)
            return verdict.text, None, verdict
        total = Verdict(text)
        shielded = {id(f) for f in files}

        def screen(value: Any) -> Any:
            if isinstance(value, str):
                found = self.words.check(value)
                for name in ("blocked", "flagged", "masked"):
                    getattr(total, name).extend(w for w in getattr(found, name) if w not in getattr(total, name))
                return found.text
            if isinstance(value, dict):
                return {k: screen(v) if id(value) not in shielded or k == "name" else v for k, v in value.items()}
            if isinstance(value, list):
                return [screen(v) for v in value]
            return value
        masked = screen(body)
        if total.clean:
            return text, body, total
        masked, fallback = self.kinds.validate(kind, masked)
        return fallback, masked, total

    async def sync(self, conn: Connection, req: Sync) -> Reply:
        user = session_of(conn).user
        after: dict[int, int] = {}
        for addr, seq in req.after.items():
            conv_id = (await self.resolve(user, addr, req.rid)).conv_id if addr.startswith("u:") else int(addr[2:])
            after[conv_id] = seq
        convs, rows, unread = await messages.sync(self.store, user.id, after, req.limit)
        await self._people_in([r for found in rows.values() for r in found])
        viewer = self.directory.viewer(user.id)
        result = []
        for conv in convs:
            roster = await self.directory.roster(conv["id"])
            if roster is None:
                continue
            entry = await self.summary(viewer, conv, roster, unread.get(conv["id"], []))
            found = [] if roster.banned else rows.get(conv["id"], [])
            entry["messages"], entry["hidden"] = views.page(
                found[:req.limit], viewer, roster, self.directory.cached_users()
            )
            entry["more"] = len(found) > req.limit
            result.append(entry)
        return {"convs": result}

    async def summary(
        self, viewer: Viewer, conv: asyncpg.Record, roster: Roster, unread_rows: list[messages.Row]
    ) -> dict[str, Any]:
        """A conversation as ``convs`` and ``sync`` show it (SPEC.md §5.5)."""
        peer = (await self.directory.users([conv["peer_id"]])).get(conv["peer_id"]) if conv["peer_id"] else None
        entry: dict[str, Any] = {
            "conv": roster.address, "kind": roster.kind, "name": views.conversation_name(viewer, roster, peer),
            "role": conv["role"], "last_seq": conv["last_seq"], "read_seq": conv["read_seq"],
            "unread": 0 if roster.banned else views.unread(unread_rows, viewer, roster),
        }
        if roster.kind == "group":
            entry |= roster.settings()
        elif peer is not None and peer.role is Role.BOT:
            entry["service"] = True  # the person's inbox for that bot's service (SPEC.md §5.5)
        return entry

    async def history(self, conn: Connection, req: History) -> Reply:
        if req.before is not None and req.after is not None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "give before or after, not both", rid=req.rid, field="after")
        user = session_of(conn).user
        roster = await self.resolve(user, req.conv, req.rid)
        rows, more = await messages.history(
            self.store, roster.conv_id, before=req.before, after=req.after, limit=req.limit
        )
        await self._people_in(rows)
        shown, hidden = views.page(rows, self.directory.viewer(user.id), roster, self.directory.cached_users())
        return {"conv": roster.address, "messages": shown, "hidden": hidden, "more": more}

    async def read(self, conn: Connection, req: Read) -> Reply:
        user = session_of(conn).user
        roster = await self.resolve(user, req.conv, req.rid)
        read_seq = await conversations.mark_read(self.store, roster.conv_id, user.id, req.seq)
        if read_seq is None:  # removed from the conversation meanwhile
            raise ProtocolError(ErrorCode.FORBIDDEN, rid=req.rid)
        rows = (await messages.unread_rows(self.store, user.id, [(roster.conv_id, read_seq)]))[roster.conv_id]
        unread = views.unread(rows, self.directory.viewer(user.id), roster)
        self.hub.deliver(
            [user.id], framed({"op": "read", "conv": roster.address, "read_seq": read_seq, "unread": unread}), conn
        )
        return {"conv": roster.address, "read_seq": read_seq, "unread": unread}

    async def receipt(self, conn: Connection, req: Receipt) -> Reply:
        """The other person's read marker in a direct chat: a bot stops escalating a notice once it is read."""
        user = session_of(conn).user
        if user.role not in _STAFF_AND_BOTS:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only staff, bots and admins see read receipts", rid=req.rid)
        roster = await self.resolve(user, req.conv, req.rid)
        if roster.kind == "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "read receipts exist in direct chats only", rid=req.rid,
                                field="conv")
        last_seq, markers = await conversations.read_markers(self.store, roster.conv_id)
        peers = [seq for uid, seq in markers.items() if uid != user.id]
        return {"conv": roster.address, "last_seq": last_seq, "read_seq": markers.get(user.id, 0),
                "peer_read_seq": peers[0] if peers else 0}

    async def convs(self, conn: Connection, req: Convs) -> Reply:
        user = session_of(conn).user
        viewer = self.directory.viewer(user.id)
        convs = await conversations.summaries(self.store, user.id)
        unread = await messages.unread_rows(
            self.store, user.id, [(c["id"], c["read_seq"]) for c in convs if c["last_seq"] > c["read_seq"]]
        )
        result = []
        for conv in convs:
            roster = await self.directory.roster(conv["id"])
            if roster is not None:
                result.append(await self.summary(viewer, conv, roster, unread.get(conv["id"], [])))
        return {"convs": result}

    # -- groups (SPEC.md §5.6) --------------------------------------------------------------

    async def group_create(self, conn: Connection, req: GroupCreate) -> Reply:
        user = session_of(conn).user
        if user.role not in _STAFF_AND_BOTS:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only staff, bots and admins create groups", rid=req.rid)
        member_ids = []
        for index, username in enumerate(req.members):
            member = await self.user(username, req.rid, field=f"members[{index}]")
            member_ids.append(member.id)
        conv_id = await do_create_group(self.ctx, self.actor(conn), req.name, user.id, member_ids)
        return {"conv": f"g:{conv_id}"}

    async def group_add(self, conn: Connection, req: GroupAdd) -> Reply:
        roster = await self.managed_group(conn, req.conv, req.rid)
        member = await self.user(req.user, req.rid, field="user")
        role = MemberRole(req.role)
        await do_add_member(self.ctx, self.actor(conn), roster.conv_id, member.id, role)
        return {"conv": roster.address, "user": member.username, "role": str(role)}

    async def group_remove(self, conn: Connection, req: GroupRemove) -> Reply:
        user = session_of(conn).user
        member = await self.user(req.user, req.rid, field="user")
        roster = (await self.resolve(user, req.conv, req.rid) if member.id == user.id
                  else await self.managed_group(conn, req.conv, req.rid))
        if roster.kind != "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a group", rid=req.rid, field="conv")
        # Everyone who left, the family who came in with her too: once answered, this node neither
        # lists them nor delivers to them, whether or not its own bus event has arrived yet.
        await do_remove_member(self.ctx, self.actor(conn), roster.conv_id, member.id)
        return {"conv": roster.address, "user": member.username}

    async def members(self, conn: Connection, req: Members) -> Reply:
        user = session_of(conn).user
        roster = await self.resolve(user, req.conv, req.rid)
        users = await self.directory.users(list(roster.members))
        viewer = self.directory.viewer(user.id)
        return {
            "conv": roster.address,
            "members": [
                views.member(viewer, users[uid], str(role), roster)
                for uid, role in roster.members.items() if uid in users
            ],
        }

    # -- look-ups shared with the moderation handlers ---------------------------------------

    async def resolve(self, user: User, addr: str, rid: int) -> Roster:
        """The conversation an address names, if ``user`` is a member (``u:`` creates the direct chat).

        Error handling: NOT_FOUND, FORBIDDEN (not a member, or no direct chat allowed), GROUP_BANNED.
        """
        prefix, _, ref = addr.partition(":")
        if prefix == "u":
            conv_id = await self._direct_chat(user, ref, rid)
        else:
            conv_id = int(ref)
        roster = await self.directory.roster(conv_id)
        if roster is None or (prefix != "u" and roster.address[0] != prefix):
            raise ProtocolError(ErrorCode.NOT_FOUND, rid=rid, field="conv")
        if user.id not in roster.members:  # the cache may not have heard of a change made elsewhere yet
            roster = await self.directory.reload(conv_id)
            if roster is None or user.id not in roster.members:
                raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this conversation", rid=rid, field="conv")
        if roster.banned:
            raise ProtocolError(ErrorCode.GROUP_BANNED, rid=rid)
        return roster

    async def _direct_chat(self, user: User, username: str, rid: int) -> int:
        other = await self.user(username, rid, field="conv")
        if other.id == user.id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "cannot chat with yourself", rid=rid, field="conv")
        key = (min(user.id, other.id), max(user.id, other.id))
        conv_id = self._direct.get(key)
        if conv_id is None:
            me, them = self.directory.viewer(user.id), self.directory.viewer(other.id)
            conv_id = await do_open_direct_chat(self.ctx, Actor(user.id, user.username, user.role, ""), me, them)
            self._direct[key] = conv_id
        return conv_id

    async def managed_group(self, conn: Connection, addr: str, rid: int) -> Roster:
        """A group the caller manages (owner or admin of it, or an admin account)."""
        user = session_of(conn).user
        if user.role is Role.ADMIN and not addr.startswith("u:"):
            roster = await self.directory.roster(int(addr[2:]))
            if roster is None or roster.address[0] != addr[0]:
                raise ProtocolError(ErrorCode.NOT_FOUND, rid=rid, field="conv")
        else:
            roster = await self.resolve(user, addr, rid)
        if roster.kind != "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a group", rid=rid, field="conv")
        if user.role is not Role.ADMIN and roster.members.get(user.id) not in visibility.MANAGERS:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only the group's owner or admins", rid=rid)
        return roster

    def member_id(self, roster: Roster, viewer: Viewer, ref: str, rid: int, *, field: str) -> int:
        """The member a shown id names: ``a<n>`` a pseudonym here, ``u<n>`` a real identity the viewer may see."""
        number = int(ref[1:])
        if ref[0] == "a":
            for user_id, state in roster.states.items():
                if state.alias_no == number and user_id in roster.members:
                    return user_id
        elif number in roster.members:
            subject = self.directory.cached_users().get(number, views.UNKNOWN)
            if visibility.shows_real(viewer, number, subject.role):
                return number
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such member", rid=rid, field=field)

    async def user(self, username: str, rid: int, *, field: str) -> User:
        user = await self.directory.user_by_name(username)
        if user is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no user {username}", rid=rid, field=field)
        return user

    def actor(self, conn: Connection) -> Actor:
        return Actor.of(session_of(conn).user, conn.remote)
