"""The only ways a request handler gets hold of a conversation or a person (as Zulip's ``access_*_by_id``).

Each function checks one condition per line, so the tests that reach every refusal reach every
line, and a refusal says the same thing whichever request ran into it. Handlers never read a
roster or an account any other way. Error handling: each raises ``ProtocolError`` with the code
and field the protocol names (SPEC.md §7); the dispatcher adds the request's ``rid``.
"""

from __future__ import annotations

from imserver import views, visibility
from imserver.actions.base import Actor
from imserver.actions.conversations import do_open_direct_chat
from imserver.connection import Connection
from imserver.model import Role, Roster, User
from imserver.services import Services
from imserver.store import conversations
from protocol import ErrorCode, ProtocolError


def user_of(client: Connection) -> User:
    """The account a client logged in as (handlers run only after the handshake)."""
    assert client.session is not None, "handlers run only after the handshake"
    return client.session.user


def actor_of(client: Connection) -> Actor:
    """The client's account as the actions and the audit log know it."""
    return Actor.of(user_of(client), client.remote)


def require_role(client: Connection, roles: frozenset[Role], detail: str) -> User:
    """The client's account, if its role is one of ``roles``; else FORBIDDEN with ``detail``."""
    user = user_of(client)
    if user.role not in roles:
        raise ProtocolError(ErrorCode.FORBIDDEN, detail)
    return user


def require_group(roster: Roster) -> Roster:
    """BAD_REQUEST (``conv``) unless the conversation is a group."""
    if roster.kind != "group":
        raise ProtocolError(ErrorCode.BAD_REQUEST, "not a group", field="conv")
    return roster


async def access_user(s: Services, username: str, *, field: str) -> User:
    """An account by username. NOT_FOUND (``field``) if there is none."""
    user = await s.directory.user_by_name(username)
    if user is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no user {username}", field=field)
    return user


async def access_conversation(s: Services, client: Connection, addr: str) -> Roster:
    """The conversation an address names, if the client is a member (``u:`` opens the direct chat, except in a
    read-only session, which changes nothing: there it names only a chat that exists, IM-17).

    NOT_FOUND (``conv``) if there is none; FORBIDDEN if the client is not a member, or may not
    chat with that person directly (IM-5); GROUP_BANNED while it is banned (IM-15).
    """
    user = user_of(client)
    prefix, _, ref = addr.partition(":")
    conv_id = await _direct_chat(s, client, ref) if prefix == "u" else int(ref)
    roster = await s.directory.roster(conv_id)
    if roster is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, field="conv")
    if prefix != "u" and roster.address[0] != prefix:
        raise ProtocolError(ErrorCode.NOT_FOUND, field="conv")
    if user.id not in roster.members:  # the cache may not have heard of a change made elsewhere yet
        roster = await s.directory.reload(conv_id)
    if roster is None or user.id not in roster.members:
        raise ProtocolError(ErrorCode.FORBIDDEN, "not a member of this conversation", field="conv")
    if roster.banned:
        raise ProtocolError(ErrorCode.GROUP_BANNED)
    return roster


async def _direct_chat(s: Services, client: Connection, username: str) -> int:
    """The id of the client's direct chat with ``username``, opened on first use (remembered by this node)."""
    user = user_of(client)
    other = await access_user(s, username, field="conv")
    if other.id == user.id:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "cannot chat with yourself", field="conv")
    conv_id = await _existing_direct_chat(s, user.id, other.id)
    if conv_id is not None:
        return conv_id
    if client.session is not None and client.session.readonly:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no direct chat with this user yet", field="conv")
    me, them = s.directory.viewer(user.id), s.directory.viewer(other.id)
    conv_id = s.direct_chats[_pair(user.id, other.id)] = await do_open_direct_chat(
        s.actions, actor_of(client), me, them
    )
    return conv_id


def _pair(a: int, b: int) -> tuple[int, int]:
    return min(a, b), max(a, b)


async def _existing_direct_chat(s: Services, a: int, b: int) -> int | None:
    """The direct chat of two people if it exists, remembered by this node once found."""
    conv_id = s.direct_chats.get(_pair(a, b))
    if conv_id is None:
        conv_id = await conversations.direct_conv_id(s.store, a, b)
        if conv_id is not None:
            s.direct_chats[_pair(a, b)] = conv_id
    return conv_id


async def conversation_id(s: Services, client: Connection, addr: str) -> int | None:
    """The id of the conversation an address names, opening nothing and checking nothing else; None if a
    ``u:`` address names no one or no chat yet. For comparing, never for access."""
    prefix, _, ref = addr.partition(":")
    if prefix != "u":
        return int(ref)
    other = await s.directory.user_by_name(ref)
    return None if other is None else await _existing_direct_chat(s, user_of(client).id, other.id)


async def access_managed_group(s: Services, client: Connection, addr: str) -> Roster:
    """A group the client manages: as its owner or one of its admins (IM-3), or as an admin account,
    who reaches every group, banned ones too, without being a member.

    Errors as ``access_conversation``; BAD_REQUEST (``conv``) for a direct chat; FORBIDDEN for
    anyone else.
    """
    user = user_of(client)
    if user.role is Role.ADMIN and not addr.startswith("u:"):
        roster = await s.directory.roster(int(addr[2:]))
        if roster is None or roster.address[0] != addr[0]:
            raise ProtocolError(ErrorCode.NOT_FOUND, field="conv")
    else:
        roster = await access_conversation(s, client, addr)
    require_group(roster)
    if user.role is not Role.ADMIN and roster.members.get(user.id) not in visibility.MANAGERS:
        raise ProtocolError(ErrorCode.FORBIDDEN, "only the group's owner or admins")
    return roster


def access_member(s: Services, client: Connection, roster: Roster, ref: str, *, field: str) -> int:
    """The member a shown id names, as the client sees the conversation (SPEC.md §6): ``a<n>`` a
    pseudonym in it, ``u<n>`` a real identity the client may see. NOT_FOUND (``field``) otherwise."""
    number = int(ref[1:])
    if ref[0] == "a":
        for user_id, state in roster.states.items():
            if state.alias_no == number and user_id in roster.members:
                return user_id
    elif number in roster.members:
        subject = s.directory.cached_users().get(number, views.UNKNOWN)
        if visibility.shows_real(s.directory.viewer(user_of(client).id), number, subject.role):
            return number
    raise ProtocolError(ErrorCode.NOT_FOUND, "no such member", field=field)
