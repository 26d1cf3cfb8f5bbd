"""Plain records the server passes between its handlers and its store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """An account's role (REQUIREMENTS.md, People and roles)."""

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


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role

    @property
    def ref(self) -> str:
        """The id clients see (SPEC.md §6)."""
        return f"u{self.id}"

    def public(self) -> dict[str, object]:
        return {"id": self.ref, "username": self.username, "name": self.display_name, "role": str(self.role)}


@dataclass(frozen=True)
class Session:
    id: uuid.UUID
    user: User
    device: str
    readonly: bool


@dataclass
class Roster:
    """A conversation and its members, as cached in memory for the hot path."""

    conv_id: int
    kind: str
    name: str
    members: dict[int, MemberRole] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{'g' if self.kind == 'group' else 'd'}:{self.conv_id}"


@dataclass(frozen=True)
class MemberChange:
    """One membership change, as carried on the event bus."""

    conv_id: int
    user_id: int
    role: MemberRole | None
    """The new role, or None when the user left."""
