"""What one viewer is shown: messages, pages with their hidden ranges, people and conversations.

Every answer and push that carries a message, a person or a conversation is built
from the structs here (those of ``protocol.frames``), by the rules in ``visibility``,
so no code path can forget a rule.

Every answer that lists something is cut to fit in one frame (``MAX_ANSWER_BYTES``,
SPEC.md §3.7): ``Pager`` takes the items of a list after the request's cursor while
they fit, and ``page`` the rows of a message page while the answer's ``Budget`` lasts,
measuring each item as it is encoded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

import msgspec

from imserver import visibility
from imserver.model import Role, Roster, User
from imserver.store.messages import UNREAD_CAP, Row
from imserver.visibility import Audience, MessageMeta, Viewer
from protocol import ErrorCode, ProtocolError, encode
from protocol.frames import (
    MAX_ANSWER_BYTES,
    MAX_MESSAGE_BYTES,
    ConvSummary,
    Member,
    Message,
    Person,
    Sender,
    SeqRange,
)

T = TypeVar("T", bound=msgspec.Struct)
Key = tuple[int | str, ...]
"""What orders a list answer's items; the cursor of a page is the key of its last item."""

ENVELOPE = 4096
"""Bytes an answer may take besides its items: its own fields and the headers of its lists."""
LIST_BUDGET = MAX_ANSWER_BYTES - ENVELOPE
"""The items of a list answer: the first whatever its size (none is larger), the others while they fit."""
PAGE_BUDGET = LIST_BUDGET - MAX_MESSAGE_BYTES
"""The items of an answer that carries messages (``sync``, ``history``): its first message is taken whatever its
size, wherever it comes, so room for one is kept."""
HIDDEN_SEQ_BYTES = 19
"""The most one hidden seq adds to a page: a range of its own, two 64-bit integers."""
ENTRY_LISTS_BYTES = 8
"""What the headers of a ``sync`` entry's two lists may grow by as they fill (from 1 byte to 5 each)."""

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


def size(item: msgspec.Struct) -> int:
    """The bytes of an item as an answer carries it."""
    return len(encode(item))


class Budget:
    """The bytes one answer has left for its items (SPEC.md §3.7)."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.rows = 0
        """Rows of message pages taken so far: the first is taken whatever its size, so every answer moves on."""

    def take(self, cost: int, *, force: bool = False) -> bool:
        """Spend ``cost`` bytes if they are left, or anyway with ``force``; False if they did not fit."""
        if cost > self.left and not force:
            return False
        self.left -= cost
        return True


def page(
    rows: Iterable[Row], viewer: Viewer, roster: Roster, users: dict[int, User], budget: Budget
) -> tuple[list[Message], list[SeqRange], bool]:
    """The messages of a page this viewer may see, oldest first, and the seq ranges in it hidden from them.

    ``rows`` come in paging order (newest first for a page that goes back) and are taken while the budget
    lasts, the answer's first row whatever its size. True when the budget cut the page short: the rows after
    the cut are in neither list, so the page covers the seqs up to the cut and no others, and a client that goes
    on from the seqs covered skips nothing (SPEC.md §5.2.1).
    """
    shown: list[Message] = []
    hidden: list[int] = []
    cut = False
    for row in rows:
        seen = message(row, viewer, roster, users)
        if not budget.take(HIDDEN_SEQ_BYTES if seen is None else size(seen), force=not budget.rows):
            cut = True
            break
        budget.rows += 1
        if seen is None:
            hidden.append(row.seq)
        else:
            shown.append(seen)
    shown.sort(key=lambda m: m.seq)
    return shown, visibility.hidden_ranges(sorted(hidden)), cut


class Pager(Generic[T]):
    """One page of a list answer (SPEC.md §3.7): the items after the request's ``cursor``, in key order, as many
    as fit in the budget (the first whatever its size), and the ``cursor`` of the next page if some were left."""

    def __init__(self, cursor: str | None, total: int | None = None) -> None:
        self.start = _start(cursor)
        self.budget = Budget(LIST_BUDGET if total is None else total)
        self.items: list[T] = []
        self.cursor: str | None = None
        """Set once the page is full: the key of its last item."""
        self._last: Key = ()

    def wants(self, key: Key) -> bool:
        """Whether the item of this key belongs on this page: it comes after the cursor and the page has room."""
        if self.cursor is not None:
            return False
        return self.start is None or key > self._like(key)

    def number(self) -> int:
        """The cursor of a list ordered by one number (conversations): that number, 0 for the first page."""
        return 0 if self.start is None else int(self._like((0,))[0])

    def _like(self, key: Key) -> Key:
        """The cursor's key, if it has the shape of ``key``: else it is a cursor of another list."""
        assert self.start is not None
        if list(map(type, key)) != list(map(type, self.start)):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "not a cursor of this list", field="cursor")
        return self.start

    def add(self, key: Key, item: T, cost: int = 0) -> bool:
        """Put the item on the page (``cost`` bytes beside its own) if it fits; False once the page is full."""
        if not self.budget.take(size(item) + cost, force=not self.items):
            self.cursor = msgspec.json.encode(self._last).decode()
            return False
        self.items.append(item)
        self._last = key
        return True

    def fill(self, items: Iterable[tuple[Key, T]]) -> list[T]:
        """The page of items given as (key, item) in key order."""
        for key, item in items:
            if self.wants(key) and not self.add(key, item):
                break
        return self.items


def _start(cursor: str | None) -> Key | None:
    if cursor is None:
        return None
    try:
        return msgspec.json.decode(cursor, type=tuple[int | str, ...])
    except msgspec.DecodeError:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "not a cursor of this list", field="cursor") from None


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


def joined(roster: Roster, subject: int) -> Key:
    """Where a member comes in the order of joining: the number of her pseudonym (SPEC.md §11.1), then her id."""
    state = roster.states.get(subject)
    return (state.alias_no if state is not None else 0, subject)


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
