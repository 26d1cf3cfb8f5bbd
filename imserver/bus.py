"""Events that cross process boundaries over Postgres LISTEN/NOTIFY, so several nodes can share one database.

An action that changes live state (membership, sessions) publishes its event with
NOTIFY inside its own transaction (``imserver.actions``), so the event exists exactly
when the change is committed. Every server process, including the acting one, applies
it. That one path serves protocol requests, the operator CLI and other nodes alike.
Events carry ids only, never message bodies.
"""

from __future__ import annotations

import asyncpg
import msgspec

from imserver.store import events

CHANNEL = "imserver_events"
_MAX_CHANGES = 200  # keeps a payload well under NOTIFY's 8000-byte limit


class MembersChanged(msgspec.Struct, tag="members", frozen=True):
    """Members joined, changed role or left (role None) in a conversation."""

    conv: int
    changes: list[tuple[int, str | None]]


class SessionsEnded(msgspec.Struct, tag="sessions_ended", frozen=True):
    """Sessions revoked: their connections must close, saying why."""

    sessions: list[str]
    reason: str = "session_ended"


class GroupChanged(msgspec.Struct, tag="group", frozen=True):
    """A conversation's switches (``settings``) or isolations changed: reload it, tell the members
    about new switches, and retract what ``isolated`` members had shown. An isolation alone is not
    announced: the isolated member must notice nothing (IM-12)."""

    conv: int
    settings: bool = True
    isolated: list[int] = []


class WordsChanged(msgspec.Struct, tag="words", frozen=True):
    """The sensitive-word list changed: rebuild the filter."""


class KindsChanged(msgspec.Struct, tag="kinds", frozen=True):
    """An admin defined a message kind: reload the kinds."""


class UserChanged(msgspec.Struct, tag="user", frozen=True):
    """An account changed (banned, unbanned, family links): reload it."""

    user: int


Event = MembersChanged | SessionsEnded | GroupChanged | WordsChanged | KindsChanged | UserChanged
_decoder = msgspec.json.Decoder(Event)


def decode(payload: str) -> Event:
    return _decoder.decode(payload)


async def publish_txn(db: asyncpg.Connection, event: Event) -> None:
    """Queue ``event`` for delivery when the surrounding transaction commits (only actions publish)."""
    if isinstance(event, MembersChanged) and len(event.changes) > _MAX_CHANGES:
        for start in range(0, len(event.changes), _MAX_CHANGES):
            part = MembersChanged(event.conv, event.changes[start:start + _MAX_CHANGES])
            await publish_txn(db, part)
        return
    await events.notify_txn(db, CHANNEL, msgspec.json.encode(event).decode())
