"""Fan-out: what members are pushed when a message is committed or a conversation changes (DESIGN rules 1
and 4, NFR-3; SPEC.md §5.2, §5.6, §11.2, §11.3).

The hot path: the batch writer calls ``committed`` right after each commit, on the event loop and without
waiting. Members online are grouped by the view of the message they get, each view is rendered and
encoded once, and the same bytes are queued to every connection that gets it (``Hub.deliver``: written
straight into the socket when it can take them, without a checkpoint; ``connection.Connection.offer``). The sender's own
connection gets the ``send`` answer instead. Who is told of a flagged message and who has an isolated
member's messages retracted are ``visibility``'s rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from imserver import views, visibility
from imserver.bus import GroupChanged, MembersChanged
from imserver.connection import Connection, framed
from imserver.directory import Directory
from imserver.hub import Hub
from imserver.model import Roster, User
from imserver.store import messages
from imserver.store.messages import Draft, Row, Stored
from pgtrio.bridge import Store
from protocol.frames import ConvPush, FlagPush, GroupPush, HiddenPush, MsgPush

log = logging.getLogger(__name__)

RETRACT_CHUNK = 2000
"""Seqs per retraction frame, which keeps each frame well under ``max_frame``."""

Committed = tuple[Draft, Stored, Connection | None]
"""A message just stored, and the connection it came from (which gets the answer, not the push)."""


class Delivery:
    """Pushes to the members of conversations: committed messages and flags, membership and group changes."""

    def __init__(self, store: Store, directory: Directory, hub: Hub) -> None:
        self._store = store
        self._directory = directory
        self._hub = hub

    def committed(self, batch: Sequence[Committed]) -> None:
        """Push each newly committed message to every connection of every member who may see it."""
        try:
            self._committed(batch)
        except Exception:  # the messages are stored; clients will find them by sync
            log.exception("fan-out failed")

    def _committed(self, batch: Sequence[Committed]) -> None:
        users = self._directory.cached_users()
        for draft, stored, origin in batch:
            roster = self._directory.cached_roster(draft.conv_id)
            if roster is None:
                continue
            row = Row(
                draft.conv_id, stored.seq, stored.id, draft.sender_id, draft.kind, draft.text, draft.body, draft.cid,
                stored.ts, draft.audience, draft.only_user_id, stored.sender_hidden,
            )
            self._message(row, roster, users, origin)
            if draft.flagged:
                self._flag(row, roster, list(draft.flagged))

    def _message(self, row: Row, roster: Roster, users: dict[int, User], origin: Connection | None) -> None:
        """One WebSocket frame per distinct view, the same bytes to every connection that shares it (DESIGN rule 4).

        Members are grouped by the view they get, and each group is handed to the hub at once (NFR-3).
        """
        online = (self._directory.viewer(u) for u in roster.members if self._hub.online(u))
        groups, hidden = views.audiences(row, roster, users, online)
        for viewers in groups.values():
            shown = views.message(row, viewers[0], roster, users)
            assert shown is not None, "audiences() groups only those who may see it"
            self._hub.deliver([v.id for v in viewers], framed(MsgPush(msg=shown)), exclude=origin)
        if hidden:  # lets their clients move past this seq without asking (SPEC.md §5.2)
            data = framed(HiddenPush(conv=roster.address, ranges=[(row.seq, row.seq)]))
            self._hub.deliver([v.id for v in hidden], data)

    def _flag(self, row: Row, roster: Roster, words: list[str]) -> None:
        """Tell those who watch the group about a message let through with flagged words (IM-11)."""
        told = [u for u in roster.members if visibility.told_of_flags(self._directory.viewer(u), roster)]
        self._hub.deliver(told, framed(FlagPush(conv=roster.address, seq=row.seq, words=words)))

    async def members_changed(self, event: MembersChanged) -> None:
        """Tell each person who joined or left (the ``conv`` push, SPEC.md §5.6)."""
        roster = await self._directory.roster(event.conv)
        if roster is None:
            return
        for user_id, role in event.changes:
            frame = framed(ConvPush(conv=roster.address, event="left" if role is None else "joined", name=roster.name))
            self._hub.deliver([user_id], frame)

    async def group_changed(self, event: GroupChanged) -> None:
        """Settings or bans changed: tell the members; someone isolated: retract what she sent from those who
        may no longer see it (IM-12), a frame per ``RETRACT_CHUNK`` seqs."""
        roster = self._directory.cached_roster(event.conv)
        if roster is None:
            return
        if event.settings:
            self._hub.deliver(roster.members, framed(GroupPush(conv=roster.address, **roster.settings())))
        for isolated in event.isolated:
            seqs = await messages.seqs_by_sender(self._store, roster.conv_id, isolated)
            others = [u for u in roster.members
                      if visibility.loses_sight_of(self._directory.viewer(u), isolated, roster)]
            for start in range(0, len(seqs), RETRACT_CHUNK):
                ranges = visibility.hidden_ranges(seqs[start:start + RETRACT_CHUNK])
                self._hub.deliver(others, framed(HiddenPush(conv=roster.address, ranges=ranges, retract=True)))
