"""What each request does (SPEC.md §4–§5). Business rules live here; SQL lives in ``store``.

Each handler either answers at once (returns the ``ok`` fields) or, for
``send``, arranges for the answer to be pushed after the commit (returns None).
Handlers raise ProtocolError for anything the client did wrong.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from imserver import auth
from imserver.bus import MembersChanged, SessionsEnded, notify_txn
from imserver.config import Settings
from imserver.connection import Connection, TokenBucket
from imserver.directory import Directory
from imserver.hub import Hub
from imserver.model import MemberRole, Role, Roster, Session, User
from imserver.store import accounts, conversations, messages
from imserver.store.bridge import Store
from imserver.writer import MessageWriter, Outcome, WriterClosed
from protocol import ErrorCode, ProtocolError, encode, negotiate
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
    Read,
    Request,
    Send,
    Sender,
    Sync,
)
from protocol.kinds import KindRegistry

Reply = dict[str, Any] | None
_GROUP_CREATORS = frozenset({Role.STAFF, Role.BOT, Role.ADMIN})
_GROUP_MANAGERS = frozenset({MemberRole.OWNER, MemberRole.ADMIN})


def _now_ms() -> int:
    return int(time.time() * 1000)


class Handlers:
    def __init__(
        self, settings: Settings, store: Store, directory: Directory, hub: Hub,
        writer: MessageWriter, signer: auth.TokenSigner, kinds: KindRegistry,
    ) -> None:
        self.settings = settings
        self.store = store
        self.directory = directory
        self.hub = hub
        self.writer = writer
        self.signer = signer
        self.kinds = kinds
        self._direct: dict[tuple[int, int], int] = {}
        self._table: dict[type[Request], Callable[[Connection, Any], Awaitable[Reply]]] = {
            Hello: self.hello, Ping: self.ping, Logout: self.logout, Send: self.send, Sync: self.sync,
            History: self.history, Read: self.read, Convs: self.convs, GroupCreate: self.group_create,
            GroupAdd: self.group_add, GroupRemove: self.group_remove, Members: self.members,
        }

    async def handle(self, conn: Connection, request: Request) -> Reply:
        return await self._table[type(request)](conn, request)

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
            expires = time.time() + self.settings.token_days * 86400
            session_id = await accounts.create_session(
                self.store, user.id, device, readonly, datetime.fromtimestamp(expires, UTC)
            )
            token = self.signer.issue(session_id, expires)
        else:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "hello needs a token or a username and password", rid=req.rid, fatal=True
            )
        self.directory.remember(user)
        conn.session = Session(session_id, user, device, readonly)
        conn.protocol.open(readonly=readonly)
        s = self.settings
        rate, burst = (s.bot_rate, s.bot_burst) if user.role is Role.BOT else (s.rate, s.burst)
        conn.limiter = TokenBucket(rate, burst)
        self.hub.attach(conn)
        welcome: dict[str, Any] = {
            "version": version, "session": str(session_id), "user": user.public(), "readonly": readonly,
            "limits": {"max_frame": s.max_frame, "max_text": s.max_text, "rate": rate, "burst": burst},
            "server_time": _now_ms(),
        }
        if token is not None:
            welcome["token"] = token
        return welcome

    async def ping(self, conn: Connection, req: Ping) -> Reply:
        return {"server_time": _now_ms()}

    async def logout(self, conn: Connection, req: Logout) -> Reply:
        session = _session(conn)

        async def txn(c: Any) -> None:
            revoked = await accounts.revoke_sessions_txn(c, session_id=session.id)
            await notify_txn(c, SessionsEnded([str(s) for s in revoked]))
        # The SessionsEnded event closes the session's other connections; this one answers first, then closes.
        self.hub.detach(conn)
        try:
            await self.store.run("logout", txn)
        except BaseException:
            self.hub.attach(conn)
            raise
        conn.reply(req.rid)
        conn.finish(1000, ErrorCode.SESSION_ENDED, bye=False)
        return None

    # -- messages (SPEC.md §5.1–§5.4) -------------------------------------------------------

    async def send(self, conn: Connection, req: Send) -> Reply:
        user = _session(conn).user
        if req.kind == "text":
            if req.body is not None:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "kind text takes text, not body", rid=req.rid, field="body")
            if not req.text or not req.text.strip():
                raise ProtocolError(ErrorCode.BAD_REQUEST, "text is empty", rid=req.rid, field="text")
            if len(req.text) > self.settings.max_text:
                raise ProtocolError(
                    ErrorCode.TEXT_TOO_LONG, f"at most {self.settings.max_text} characters", rid=req.rid, field="text"
                )
            text, body = req.text, None
        else:
            try:
                body, text = self.kinds.validate(req.kind, req.body)
            except ProtocolError as exc:
                exc.rid = req.rid
                raise
        roster = await self.resolve(user, req.conv, req.rid)
        draft = messages.Draft(
            roster.conv_id, user.id, Sender(user.ref, user.display_name, str(user.role)),
            req.kind, text, body, req.cid, origin=conn,
        )

        def done(outcome: Outcome) -> None:
            if isinstance(outcome, Exception):
                conn.fail(ProtocolError(ErrorCode.UNAVAILABLE, rid=req.rid))
            else:
                conn.reply(
                    req.rid, conv=roster.address, seq=outcome.seq, id=outcome.id, ts=outcome.ts, dup=outcome.dup
                )
        try:
            await self.writer.submit(draft, done)
        except WriterClosed:
            raise ProtocolError(ErrorCode.UNAVAILABLE, "shutting down", rid=req.rid) from None
        return None

    async def sync(self, conn: Connection, req: Sync) -> Reply:
        user = _session(conn).user
        after: dict[int, int] = {}
        for addr, seq in req.after.items():
            if addr.startswith("u:"):
                roster = await self.resolve(user, addr, req.rid)
                after[roster.conv_id] = seq
            else:
                after[int(addr[2:])] = seq
        return {"convs": await messages.sync(self.store, user.id, after, req.limit)}

    async def history(self, conn: Connection, req: History) -> Reply:
        if req.before is not None and req.after is not None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "give before or after, not both", rid=req.rid, field="after")
        roster = await self.resolve(_session(conn).user, req.conv, req.rid)
        page, more = await messages.history(
            self.store, roster.conv_id, before=req.before, after=req.after, limit=req.limit
        )
        return {"conv": roster.address, "messages": page, "more": more}

    async def read(self, conn: Connection, req: Read) -> Reply:
        user = _session(conn).user
        roster = await self.resolve(user, req.conv, req.rid)
        marked = await conversations.mark_read(self.store, roster.conv_id, user.id, req.seq)
        if marked is None:  # removed from the conversation meanwhile
            raise ProtocolError(ErrorCode.FORBIDDEN, rid=req.rid)
        read_seq, unread = marked
        self.hub.deliver(
            [user.id], encode({"op": "read", "conv": roster.address, "read_seq": read_seq, "unread": unread}), conn
        )
        return {"conv": roster.address, "read_seq": read_seq, "unread": unread}

    async def convs(self, conn: Connection, req: Convs) -> Reply:
        return {"convs": await conversations.summaries(self.store, _session(conn).user.id)}

    # -- groups (SPEC.md §5.6) --------------------------------------------------------------

    async def group_create(self, conn: Connection, req: GroupCreate) -> Reply:
        user = _session(conn).user
        if user.role not in _GROUP_CREATORS:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only staff, bots and admins create groups", rid=req.rid)
        member_ids = []
        for index, username in enumerate(req.members):
            member = await self._user(username, req.rid, field=f"members[{index}]")
            member_ids.append(member.id)
        conv_id = await self.store.run("group_create", conversations.create_group_txn, req.name, user.id, member_ids)
        return {"conv": f"g:{conv_id}"}

    async def group_add(self, conn: Connection, req: GroupAdd) -> Reply:
        roster = await self._managed_group(conn, req.conv, req.rid)
        member = await self._user(req.user, req.rid, field="user")
        role = MemberRole(req.role)
        await self.store.run("group_add", conversations.set_members_txn, roster.conv_id, [(member.id, role)])
        self.directory.apply(MembersChanged(roster.conv_id, [(member.id, str(role))]))
        return {"conv": roster.address, "user": member.username, "role": str(role)}

    async def group_remove(self, conn: Connection, req: GroupRemove) -> Reply:
        user = _session(conn).user
        member = await self._user(req.user, req.rid, field="user")
        roster = (await self.resolve(user, req.conv, req.rid) if member.id == user.id
                  else await self._managed_group(conn, req.conv, req.rid))
        if roster.kind != "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a group", rid=req.rid, field="conv")
        if not await self.store.run("group_remove", conversations.remove_member_txn, roster.conv_id, member.id):
            raise ProtocolError(ErrorCode.NOT_FOUND, "not a member", rid=req.rid, field="user")
        self.directory.apply(MembersChanged(roster.conv_id, [(member.id, None)]))
        return {"conv": roster.address, "user": member.username}

    async def members(self, conn: Connection, req: Members) -> Reply:
        roster = await self.resolve(_session(conn).user, req.conv, req.rid)
        users = await self.directory.users(list(roster.members))
        return {
            "conv": roster.address,
            "members": [
                users[uid].public() | {"member_role": str(role)}
                for uid, role in roster.members.items() if uid in users
            ],
        }

    # -- look-ups ---------------------------------------------------------------------------

    async def resolve(self, user: User, addr: str, rid: int) -> Roster:
        """The conversation an address names, if ``user`` is a member (``u:`` creates the direct chat)."""
        prefix, _, ref = addr.partition(":")
        if prefix == "u":
            other = await self._user(ref, rid, field="conv")
            if other.id == user.id:
                raise ProtocolError(ErrorCode.BAD_REQUEST, "cannot chat with yourself", rid=rid, field="conv")
            key = (min(user.id, other.id), max(user.id, other.id))
            conv_id = self._direct.get(key)
            if conv_id is None:
                conv_id = await self.store.run("direct_conv", conversations.direct_conv_txn, user.id, other.id)
                self._direct[key] = conv_id
        else:
            conv_id = int(ref)
        roster = await self.directory.roster(conv_id)
        if roster is None or (prefix != "u" and roster.address[0] != prefix):
            raise ProtocolError(ErrorCode.NOT_FOUND, rid=rid, field="conv")
        if user.id not in roster.members:  # the cache may not have heard of a change made elsewhere yet
            roster = await self.directory.reload(conv_id)
            if roster is None or user.id not in roster.members:
                raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this conversation", rid=rid, field="conv")
        return roster

    async def _managed_group(self, conn: Connection, addr: str, rid: int) -> Roster:
        user = _session(conn).user
        if user.role is Role.ADMIN and not addr.startswith("u:"):
            roster = await self.directory.roster(int(addr[2:]))
            if roster is None or roster.address[0] != addr[0]:
                raise ProtocolError(ErrorCode.NOT_FOUND, rid=rid, field="conv")
        else:
            roster = await self.resolve(user, addr, rid)
        if roster.kind != "group":
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a group", rid=rid, field="conv")
        if user.role is not Role.ADMIN and roster.members.get(user.id) not in _GROUP_MANAGERS:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only the group's owner or admins", rid=rid)
        return roster

    async def _user(self, username: str, rid: int, *, field: str) -> User:
        user = await self.directory.user_by_name(username)
        if user is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no user {username}", rid=rid, field=field)
        return user


def _session(conn: Connection) -> Session:
    assert conn.session is not None, "handlers run only after the handshake"
    return conn.session
