"""Plain records the server passes between its handlers and its store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypedDict


class Role(StrEnum):
    """An account's role (the requirements' people and roles; SPEC.md §11.1)."""

    PATIENT = "patient"
    FAMILY = "family"
    STAFF = "staff"
    BOT = "bot"
    ADMIN = "admin"


class MemberRole(StrEnum):
    """A member's role in one group (IM-3: any number of owners' admins)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


def address(kind: str, conv_id: int) -> str:
    """How clients name a conversation: ``g:<id>`` a group, ``d:<id>`` a direct chat (SPEC.md §1)."""
    return f"{'g' if kind == 'group' else 'd'}:{conv_id}"


@dataclass(frozen=True)
class User:
    """An account as the server caches it."""

    id: int
    username: str
    display_name: str
    role: Role
    title: str = ""
    """A staff member's title (主任医师, 护士长…), shown with the name (IM-7)."""
    banned: bool = False

    @property
    def ref(self) -> str:
        """The id clients see (SPEC.md §6)."""
        return f"u{self.id}"


@dataclass(frozen=True)
class Session:
    """A logged-in session: whose it is, on which device, and whether it may only read (IM-17)."""

    id: uuid.UUID
    user: User
    device: str
    readonly: bool


@dataclass(frozen=True)
class MemberState:
    """A person's standing in one conversation that outlives leaving it (IM-6, IM-12, IM-13)."""

    alias_no: int
    isolated: bool = False
    hidden_through: int = 0


class GroupSettings(TypedDict):
    """A group's switches and its ban, as the fields of the frames that show them (``frames.GroupState``)."""

    muted: bool
    allow_friends: bool
    family_can_speak: bool
    banned: bool


@dataclass
class Roster:
    """A conversation, its settings and its members, as cached in memory for the hot path."""

    conv_id: int
    kind: str
    name: str
    members: dict[int, MemberRole] = field(default_factory=dict)
    states: dict[int, MemberState] = field(default_factory=dict)
    muted: bool = False
    allow_friends: bool = False
    family_can_speak: bool = False
    banned: bool = False

    def settings(self) -> GroupSettings:
        """The switches as the ``group`` push and the ``convs`` answer show them."""
        return {
            "muted": self.muted, "allow_friends": self.allow_friends,
            "family_can_speak": self.family_can_speak, "banned": self.banned,
        }

    @property
    def address(self) -> str:
        return address(self.kind, self.conv_id)
