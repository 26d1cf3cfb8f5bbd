"""The handshake and the session: ``hello``, ``ping``, ``logout`` (SPEC.md §4, §5; IM-14, IM-17, SEC-1)."""

from __future__ import annotations

from datetime import datetime, timedelta

from imserver import views
from imserver.access import actor_of
from imserver.actions.accounts import do_end_session
from imserver.connection import Connection, TokenBucket
from imserver.handlers.base import route
from imserver.model import Role, Session
from imserver.services import Services
from imserver.store import accounts
from protocol import ErrorCode, ProtocolError, negotiate
from protocol.frames import Hello, Limits, Logout, LogoutAnswer, Ping, PingAnswer, Welcome


def millis(now: datetime) -> int:
    return int(now.timestamp() * 1000)


async def hello(s: Services, client: Connection, req: Hello) -> None:
    version = negotiate(req)
    now = s.clock()  # the server's clock decides when a session expires, not the database's (DESIGN rule 10)
    token = None
    if req.token is not None:
        session_id = s.signer.check(req.token, now.timestamp())
        found = await accounts.live_session(s.store, session_id, now) if session_id else None
        if session_id is None or found is None:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, fatal=True)
        user, device, readonly = found
        readonly = readonly or req.readonly
    elif req.username is not None and req.password is not None:
        creds = await accounts.credentials(s.store, req.username)
        if not await s.passwords.verify(creds[1] if creds else None, req.password) or creds is None:
            raise ProtocolError(ErrorCode.AUTH_FAILED, fatal=True)
        user, device, readonly = creds[0], req.device, req.readonly
        session_id = None
    else:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "hello needs a token or a username and password", fatal=True)
    if user.banned:  # told only to someone who proved the password or holds a token (IM-14)
        raise ProtocolError(ErrorCode.ACCOUNT_BANNED, fatal=True)
    if session_id is None:
        expires = now + timedelta(days=s.settings.token_days)
        session_id = await accounts.create_session(s.store, user.id, device, readonly, expires)
        token = s.signer.issue(session_id, expires.timestamp())
    await s.directory.users([user.id])
    client.session = Session(session_id, user, device, readonly)
    client.protocol.open(readonly=readonly)
    settings = s.settings
    rate, burst = (settings.bot_rate, settings.bot_burst) if user.role is Role.BOT else (settings.rate, settings.burst)
    client.limiter = TokenBucket(rate, burst)
    # The welcome is the first frame of the session: it goes out before the hub can push anything to it.
    client.reply(Welcome(
        rid=req.rid, version=version, session=str(session_id), user=views.identity(user), readonly=readonly,
        limits=Limits(max_frame=settings.max_frame, max_text=settings.max_text, rate=rate, burst=burst,
                      files=s.file_limits),
        server_time=millis(now), token=token,
    ))
    s.hub.attach(client)
    # A ban committed after the account was read revoked only older sessions, and its event may have
    # passed before this attach: look again, now that later events will find this connection. Found,
    # it ends the session as a ban a moment later would (IM-14).
    still = await accounts.live_session(s.store, session_id, now)
    if still is None or still[0].banned:
        s.hub.detach(client)
        client.finish(4003, ErrorCode.ACCOUNT_BANNED)
    return None


async def ping(s: Services, client: Connection, req: Ping) -> PingAnswer:
    return PingAnswer(rid=req.rid, server_time=millis(s.clock()))


async def logout(s: Services, client: Connection, req: Logout) -> None:
    assert client.session is not None
    # The SessionsEnded event closes the session's other connections; this one answers first, then closes.
    s.hub.detach(client)
    try:
        await do_end_session(s.actions, actor_of(client), client.session.id)
    except BaseException:
        s.hub.attach(client)
        raise
    client.reply(LogoutAnswer(rid=req.rid))
    client.finish(1000, ErrorCode.SESSION_ENDED, bye=False)
    return None


ROUTES = dict([route(Hello).to(hello), route(Ping).to(ping), route(Logout).to(logout)])
