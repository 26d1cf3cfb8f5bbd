"""Who may see what: the one place the hospital's visibility rules live (DESIGN rule 4).

Live delivery, sync, history, member lists and profile look-ups all ask these
functions, so a rule changed here changes everywhere at once. Everything is pure:
the caller passes the state, and the tests check the rules as tables and against
a reference model.

The rules, by requirement ID:
- IM-6/IM-7  patients and family see other patients and family only through the
  conversation's pseudonym; staff, admins and bots see real identities; staff are
  shown to everyone by their real name and title; a person always sees herself, and
  family members linked to each other see each other, for real.
- IM-10      a mention-only message reaches its sender, its target, and the group's
  owners and admins.
- IM-11      a refused message is kept for audit and shown to staff accounts only.
- IM-12/13   an isolated member's messages, past and future, are shown only to
  herself and the owners and admins; after the lift, those sent before it stay so.
- IM-4/IM-9  while a group is muted, patients and family may not send; family may
  not send in groups unless ``family_can_speak``; owners and admins are never muted.
- IM-15      nobody reads or sends in a banned group.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from imserver.model import MemberRole, Role, Roster
from protocol import ErrorCode
from protocol.frames import SeqRange

CARE_TEAM = frozenset({Role.STAFF, Role.ADMIN})
"""Staff and admin accounts, the hospital's people: they see refused messages and are told of flagged
ones (IM-11), link family and read profiles (IM-8, SEC-1), use quick replies and care teams (MSG-3);
their reads of patients' data are audited (SEC-1)."""
HOSPITAL = CARE_TEAM | {Role.BOT}
"""The hospital's accounts, bots included: they see every identity as it is and are shown as they are
(IM-6, IM-7); they create groups, read receipts and record facts about patients."""
ADMINS = frozenset({Role.ADMIN})
"""Who bans, keeps the word list, defines kinds, manages care teams and reads the audit log."""
MASKED_ROLES = frozenset({Role.PATIENT, Role.FAMILY})
"""Patients and family: masked to each other, filtered for sensitive words, held to upload quotas."""
MANAGERS = frozenset({MemberRole.OWNER, MemberRole.ADMIN})
"""A group's owners and admins (IM-3): never muted or isolated; they see what isolation hides."""

NICKNAMES = (
    "向日葵", "四叶草", "满天星", "蒲公英", "小雏菊", "茉莉", "海棠", "木棉",
    "紫藤", "桔梗", "铃兰", "栀子", "小暖阳", "橘子", "糖果", "樱桃",
)
"""Pseudonym stems (IM-6); a number unique in the conversation follows the stem."""


class Audience(StrEnum):
    """Who a stored message is for, besides its sender and the group's managers."""

    ALL = "all"
    ONLY = "only"
    """Mention-only (IM-10): the target alone."""
    STAFF = "staff"
    """Refused by the sensitive-word filter (IM-11): staff alone; not even the sender."""


@dataclass(frozen=True)
class Viewer:
    """Whoever is looking: an account, and the people linked to it as family."""

    id: int
    role: Role
    family: frozenset[int] = frozenset()


@dataclass(frozen=True)
class MessageMeta:
    """What the rules need to know of a message."""

    sender_id: int
    seq: int
    audience: Audience = Audience.ALL
    only_user_id: int | None = None
    sender_hidden: bool | None = None
    """Isolation as the store saw it when the message was written; None: judge by the roster."""


def manages(viewer: Viewer, roster: Roster) -> bool:
    return roster.members.get(viewer.id) in MANAGERS


def can_see(viewer: Viewer, message: MessageMeta, roster: Roster) -> bool:
    """May ``viewer`` (a member of the conversation) see ``message``?"""
    if roster.banned:
        return False
    if message.audience is Audience.STAFF:  # refused: staff accounts only, not even its sender or a manager
        return viewer.role in CARE_TEAM
    if viewer.id == message.sender_id or manages(viewer, roster):
        return True
    if message.audience is Audience.ONLY and viewer.id != message.only_user_id:
        return False
    if message.sender_hidden is not None:
        return not message.sender_hidden
    state = roster.states.get(message.sender_id)
    return state is None or not (state.isolated or message.seq <= state.hidden_through)


def shows_real(viewer: Viewer, subject_id: int, subject_role: Role) -> bool:
    """Does ``viewer`` see the person ``subject_id`` by their real identity?"""
    return (
        viewer.role in HOSPITAL
        or subject_role in HOSPITAL
        or subject_id == viewer.id
        or subject_id in viewer.family
    )


def pseudonym(roster: Roster, user_id: int) -> tuple[str, str]:
    """The stable (id, name) a person goes by in this conversation when masked."""
    state = roster.states.get(user_id)
    number = state.alias_no if state is not None else 0
    stem = NICKNAMES[(roster.conv_id * 7 + number) % len(NICKNAMES)]
    return f"a{number}", f"{stem}{number:02d}"


def send_refusal(sender: Viewer, roster: Roster) -> ErrorCode | None:
    """Why ``sender`` (a member) may not send to this conversation now, or None."""
    if roster.banned:
        return ErrorCode.GROUP_BANNED
    if roster.kind != "group" or manages(sender, roster):
        return None
    if sender.role in MASKED_ROLES and roster.muted:
        return ErrorCode.MUTED
    if sender.role is Role.FAMILY and not roster.family_can_speak:
        return ErrorCode.FAMILY_READ_ONLY
    return None


def may_chat_directly(a: Viewer, b: Viewer, *, friends: bool) -> bool:
    """1:1 chats between patients and family exist only between friends or linked family (IM-5)."""
    if a.role not in MASKED_ROLES or b.role not in MASKED_ROLES:
        return True
    return friends or b.id in a.family


def told_of_flags(viewer: Viewer, roster: Roster) -> bool:
    """Is ``viewer`` (a member) told of a message let through with flagged words (IM-11)? The care team
    and the group's owners and admins."""
    return viewer.role in CARE_TEAM or manages(viewer, roster)


def loses_sight_of(viewer: Viewer, isolated_id: int, roster: Roster) -> bool:
    """Has ``viewer`` (a member) the messages of a newly isolated member retracted (IM-12)? Everyone but
    herself and the group's owners and admins, who still see them."""
    return viewer.id != isolated_id and not manages(viewer, roster)


def hidden_ranges(seqs: list[int]) -> list[SeqRange]:
    """Sorted seqs -> [(first, last), ...] runs, as sync and history report them."""
    ranges: list[SeqRange] = []
    for seq in seqs:
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges
