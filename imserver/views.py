"""What one viewer is shown: messages, pages with their hidden ranges, people and conversations.

Every answer and push that carries a message, a person or a conversation is built
from the structs here (those of ``protocol.frames``), by the rules in ``visibility``,
so no code path can forget a rule.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from imserver import visibility
from imserver.model import Role, Roster, User
from imserver.store.messages import UNREAD_CAP, Row
from imserver.visibility import Audience, MessageMeta, Viewer
from protocol.frames import ConvSummary, Member, Message, Person, Sender, SeqRange

UNKNOWN = User(0, "", "", Role.PATIENT)
"""Stands in for an account not (yet) in the cache: masked, which is the safe way to be wrong."""


def meta(row: Row) -> MessageMeta:
    return MessageMeta(row.sender_id, row.seq, Audience(row.audience), row.only_user_id, row.sender_hidden)


def person(viewer: Viewer, subject: User, roster: Roster) -> Sender:
    """``subject`` as ``viewer`` may see them in this conversation."""
    if visibility.shows_real(viewer, subject.id, subject.role):
        return Sender(subject.ref, subject.display_name, str(subject.role), subject.title)
    ref, name = visibility.pseudonym(roster, subject.id)
    return Sender(ref, name, str(subject.role))


def message(row: Row, viewer: Viewer, roster: Roster, users: dict[int, User]) -> Message | None:
    """The message as ``viewer`` sees it, or None if they may not see it."""
    if not visibility.can_see(viewer, meta(row), roster):
        return None
    only = None
    if row.only_user_id is not None:
        only = person(viewer, users.get(row.only_user_id, UNKNOWN), roster)
    return Message(
        id=row.id, conv=roster.address, seq=row.seq, sender=person(viewer, users.get(row.sender_id, UNKNOWN), roster),
        kind=row.kind, text=row.text, ts=row.ts, body=row.body, cid=row.cid if viewer.id == row.sender_id else None,
        only=only, refused=row.audience == Audience.STAFF,
    )


ViewKey = tuple[bool, bool | None, bool]
"""How a message's sender, and its mention target if any, are shown (real: True, or masked), and whether the
viewer sent it (only the sender's own devices see its ``cid``, SPEC.md §5.1)."""


def audiences(
    row: Row, roster: Roster, users: dict[int, User], viewers: Iterable[Viewer]
) -> tuple[dict[ViewKey, list[Viewer]], list[Viewer]]:
    """``viewers`` grouped by the view of ``row`` they get, and those who may not see it.

    Everyone in a group gets the same bytes, so fan-out renders once per group (DESIGN rule 4, NFR-3).
    """
    sender = users.get(row.sender_id, UNKNOWN)
    only = users.get(row.only_user_id, UNKNOWN) if row.only_user_id is not None else None
    seen = meta(row)
    groups: dict[ViewKey, list[Viewer]] = {}
    hidden: list[Viewer] = []
    for viewer in viewers:
        if not visibility.can_see(viewer, seen, roster):
            hidden.append(viewer)
            continue
        key = (
            visibility.shows_real(viewer, sender.id, sender.role),
            None if only is None else visibility.shows_real(viewer, only.id, only.role),
            viewer.id == row.sender_id,
        )
        group = groups.get(key)
        if group is None:
            groups[key] = [viewer]
        else:
            group.append(viewer)
    return groups, hidden


def page(
    rows: list[Row], viewer: Viewer, roster: Roster, users: dict[int, User]
) -> tuple[list[Message], list[SeqRange]]:
    """Visible messages of a page, and the seq ranges in it hidden from this viewer."""
    shown, hidden = [], []
    for row in rows:
        seen = message(row, viewer, roster, users)
        if seen is None:
            hidden.append(row.seq)
        else:
            shown.append(seen)
    return shown, visibility.hidden_ranges(hidden)


def unread(rows: Iterable[Row], viewer: Viewer, roster: Roster) -> int:
    return min(UNREAD_CAP, sum(visibility.can_see(viewer, meta(r), roster) for r in rows))


def identity(subject: User) -> Person:
    """The real identity, for viewers allowed to see it (the welcome, profiles, care teams)."""
    return Person(id=subject.ref, username=subject.username, name=subject.display_name, role=str(subject.role),
                  title=subject.title)


def member(viewer: Viewer, subject: User, role: str, roster: Roster) -> Member:
    """One entry of a member list: real identities with username, others by pseudonym only."""
    shown = person(viewer, subject, roster)
    return Member(id=shown.id, name=shown.name, role=shown.role, member_role=role,
                  username=subject.username if shown.id == subject.ref else "", title=shown.title)


def summary(
    viewer: Viewer, roster: Roster, peer: User | None, role: str, last_seq: int, read_seq: int, unread: int
) -> ConvSummary:
    """A conversation as ``convs`` and ``sync`` show it (SPEC.md §5.5): a group with its switches; a direct chat
    named after the other person, marked as the user's inbox for a service when that person is a bot."""
    group = roster.kind == "group"
    found = ConvSummary(
        conv=roster.address, kind="group" if group else "direct", name=conversation_name(viewer, roster, peer),
        role=role, last_seq=last_seq, read_seq=read_seq, unread=unread,
        service=not group and peer is not None and peer.role is Role.BOT,
    )
    return msgspec.structs.replace(found, **roster.settings()) if group else found


def conversation_name(viewer: Viewer, roster: Roster, peer: User | None) -> str:
    """A group's name; a direct chat is named after the peer as the viewer may see them."""
    if roster.kind == "group" or peer is None:
        return roster.name
    return person(viewer, peer, roster).name


NEWCOMER = Viewer(0, Role.PATIENT)
"""Someone who joins a group later and reads back: a patient who is nobody's family."""


def name_for_readers(subject: User, roster: Roster, readers: Iterable[Viewer]) -> str:
    """``subject``'s name in a text every reader of the conversation gets alike (a quick reply, SPEC.md §5.19).

    The real name only if every member may see it, and in a group also whoever
    joins later and reads back; otherwise the pseudonym of this conversation.
    """
    everyone = [*readers, NEWCOMER] if roster.kind == "group" else readers
    if all(visibility.shows_real(viewer, subject.id, subject.role) for viewer in everyone):
        return subject.display_name
    return visibility.pseudonym(roster, subject.id)[1]
