"""Frames of protocol v1: client requests, and the objects servers push (SPEC.md §3–§6).

Each request is a msgspec struct tagged by its ``op`` field, so one declaration
gives decoding, validation (with the path of a bad field) and documentation.
Unknown fields are ignored (forward compatibility, SPEC.md §9).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

PROTOCOL_VERSIONS: tuple[int, ...] = (1,)
"""Versions this implementation speaks, preferred last."""

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}\Z"
CONV_PATTERN = r"^(?:[gd]:[1-9][0-9]{0,17}|u:[a-z0-9][a-z0-9_.\-]{0,63})\Z"
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}\Z"
# \Z, not $: $ also matches before a trailing newline.

NO_NUL = r"^[^\x00]*\Z"
"""For strings the server stores: Postgres text and jsonb cannot hold U+0000."""

RequestId = Annotated[int, Meta(ge=1, le=2**53 - 1)]
Username = Annotated[str, Meta(pattern=USERNAME_PATTERN)]
ConvAddr = Annotated[str, Meta(pattern=CONV_PATTERN)]
"""``g:<id>`` a group, ``d:<id>`` a direct (1:1) chat, ``u:<username>`` the direct chat with a user."""
ClientMsgId = Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Kind = Annotated[str, Meta(pattern=KIND_PATTERN)]
MemberRole = Literal["owner", "admin", "member"]
MemberId = Annotated[str, Meta(pattern=r"^[ua][1-9][0-9]{0,17}\Z")]
"""A person as a conversation shows them: ``u<n>`` (real identity) or ``a<n>`` (pseudonym)."""
AttachmentId = Annotated[str, Meta(pattern=r"^att_[A-Za-z0-9_-]{8,64}\Z")]
"""A file stored by the server (SPEC.md §5.18), as message bodies name it."""
Mime = Annotated[str, Meta(pattern=r"^(image|audio|video|application)/[a-z0-9.+-]{1,60}\Z")]
ABSOLUTE_MAX_TEXT = 65536
"""No server limit can exceed this; the configured ``max_text`` is usually far lower."""


class Request(msgspec.Struct, tag_field="op", kw_only=True):
    """Base of every client request: ``op`` names it, ``rid`` pairs it with its answer."""

    rid: RequestId
    writes: ClassVar[bool] = False
    """True for ops a read-only session may not use (IM-17)."""


class Hello(Request, tag="hello"):
    """The first frame of a connection: version negotiation and authentication (SPEC.md §4)."""

    versions: Annotated[list[Annotated[int, Meta(ge=1, le=255)]], Meta(min_length=1, max_length=8)]
    token: Annotated[str, Meta(max_length=1024)] | None = None
    username: Username | None = None
    password: Annotated[str, Meta(max_length=256)] | None = None
    device: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)] = "default"
    readonly: bool = False
    client: Annotated[str, Meta(max_length=64)] | None = None


class Ping(Request, tag="ping"):
    """Application-level liveness check; browsers cannot send WebSocket pings."""


class Logout(Request, tag="logout"):
    """Revoke this session's token and close the connection."""


class Send(Request, tag="send"):
    """Send a message (SPEC.md §5.1). ``text`` for kind ``text``, ``body`` for the others."""

    writes: ClassVar[bool] = True
    conv: ConvAddr
    cid: ClientMsgId
    kind: Kind = "text"
    text: Annotated[str, Meta(max_length=ABSOLUTE_MAX_TEXT, pattern=NO_NUL)] | None = None
    body: dict[str, Any] | None = None
    only: MemberId | None = None
    """Mention-only: the one member (besides the group's managers) who may see it (IM-10)."""


class Sync(Request, tag="sync"):
    """Everything after the given seq for each conversation of the user (SPEC.md §5.2)."""

    after: Annotated[dict[ConvAddr, Seq], Meta(max_length=10_000)] = {}
    limit: Annotated[int, Meta(ge=1, le=500)] = 100


class History(Request, tag="history"):
    """A page of one conversation, oldest first (SPEC.md §5.3)."""

    conv: ConvAddr
    before: Seq | None = None
    after: Seq | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] = 50


class Read(Request, tag="read"):
    """Move the user's read marker forward (SPEC.md §5.4)."""

    conv: ConvAddr
    seq: Seq


class Convs(Request, tag="convs"):
    """The user's conversations with last seq, read marker and unread count."""


class Receipt(Request, tag="receipt"):
    """How far the other person in a direct chat has read; staff, bots and admins only (SPEC.md §5.4.1)."""

    conv: ConvAddr


class GroupCreate(Request, tag="group_create"):
    """Create a group owned by the caller; staff, bots and admins only."""

    writes: ClassVar[bool] = True
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
    members: Annotated[list[Username], Meta(max_length=1000)] = []


class GroupAdd(Request, tag="group_add"):
    """Add a user to a group, or change a member's role; group owner or admin only."""

    writes: ClassVar[bool] = True
    conv: ConvAddr
    user: Username
    role: MemberRole = "member"


class GroupRemove(Request, tag="group_remove"):
    """Remove a user from a group; group owner or admin only (anyone may remove themselves)."""

    writes: ClassVar[bool] = True
    conv: ConvAddr
    user: Username


class Members(Request, tag="members"):
    """The members of a conversation the caller belongs to."""

    conv: ConvAddr


class GroupSet(Request, tag="group_set"):
    """Switch a group's settings; group owner or admin only (IM-4, IM-5, IM-9). Absent fields stay."""

    writes: ClassVar[bool] = True
    conv: ConvAddr
    muted: bool | None = None
    allow_friends: bool | None = None
    family_can_speak: bool | None = None


class _MemberAction(Request):
    """An action on one member of a group."""

    writes: ClassVar[bool] = True
    conv: ConvAddr
    member: MemberId


class Isolate(_MemberAction, tag="isolate"):
    """Isolate a member: her messages, past and future, are shown to herself and the managers only (IM-12)."""


class Unisolate(_MemberAction, tag="unisolate"):
    """Lift isolation: what she sent before stays hidden; new messages are seen by all (IM-13)."""


class _GroupAction(Request):
    writes: ClassVar[bool] = True
    conv: ConvAddr


class GroupBan(_GroupAction, tag="group_ban"):
    """Ban a group: nobody can read or send in it (IM-15); admin accounts only."""


class GroupUnban(_GroupAction, tag="group_unban"):
    """Lift a group's ban."""


class _AccountAction(Request):
    writes: ClassVar[bool] = True
    user: Username


class UserBan(_AccountAction, tag="user_ban"):
    """Ban an account: every session ends at once, login is refused (IM-14); admin accounts only."""


class UserUnban(_AccountAction, tag="user_unban"):
    """Lift an account's ban."""


class FamilyLink(Request, tag="family_link"):
    """Link a family account to a patient (IM-8); staff and admin accounts only."""

    writes: ClassVar[bool] = True
    patient: Username
    family: Username
    relation: Literal["husband", "parent", "child", "other"]


class FamilyInvite(Request, tag="family_invite"):
    """A patient brings one of her linked family into a group she is in (IM-8)."""

    writes: ClassVar[bool] = True
    conv: ConvAddr
    family: Username


class FriendRequest(_MemberAction, tag="friend_request"):
    """Ask a fellow member to be friends, where the group allows it (IM-5)."""


class FriendRequests(Request, tag="friend_requests"):
    """The friend requests waiting for the caller's answer (the push reaches only online users)."""


class FriendRespond(Request, tag="friend_respond"):
    """Accept or reject a friend request; accepting opens the direct chat."""

    writes: ClassVar[bool] = True
    request: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    accept: bool


Word = Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]


class WordsSet(Request, tag="words_set"):
    """Add a sensitive word or change its policy (IM-11); admin accounts only."""

    writes: ClassVar[bool] = True
    word: Word
    policy: Literal["mask", "block", "flag"]


class WordsRemove(Request, tag="words_remove"):
    writes: ClassVar[bool] = True
    word: Word


class WordsList(Request, tag="words_list"):
    """The sensitive words and their policies; admin accounts only."""


class Audit(Request, tag="audit"):
    """Audit entries, oldest first (SEC-1); admin accounts only."""

    since: Annotated[int, Meta(ge=0)] | None = None
    """Milliseconds since the Unix epoch."""
    actor: Annotated[str, Meta(min_length=1, max_length=80, pattern=NO_NUL)] | None = None
    """A username, or ``cli:<os user>`` for operator commands."""
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class Profile(Request, tag="profile"):
    """A member's profile (real name, phone, family); staff only, and every look-up is audited."""

    conv: ConvAddr
    member: MemberId


class Kinds(Request, tag="kinds"):
    """The message kinds the server accepts, with the definitions of custom ones (SPEC.md §6.2)."""


class KindDefine(Request, tag="kind_define"):
    """Define or replace a custom message kind; admins only (SPEC.md §6.2)."""

    writes: ClassVar[bool] = True
    definition: dict[str, Any]
    """A ``protocol.kinds.KindDefinition``."""


class UploadBegin(Request, tag="upload_begin"):
    """Start (or resume) storing a file of known size and digest (SPEC.md §5.18, MSG-4)."""

    writes: ClassVar[bool] = True
    mime: Mime
    size: Annotated[int, Meta(ge=1, le=2**53 - 1)]
    sha256: Annotated[str, Meta(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}\Z")]
    name: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] = ""


class UploadPart(Request, tag="upload_part"):
    """The bytes of a file from ``offset``; a part sent again is harmless, so a client resumes by resending."""

    writes: ClassVar[bool] = True
    id: AttachmentId
    offset: Annotated[int, Meta(ge=0, le=2**53 - 1)]
    data: Annotated[bytes, Meta(min_length=1)]


class UploadEnd(Request, tag="upload_end"):
    """Check the stored file against its declared size, digest and type, and make it usable in messages."""

    writes: ClassVar[bool] = True
    id: AttachmentId


class Fetch(Request, tag="fetch"):
    """A range of a stored file, for whoever may see a message that carries it (SPEC.md §5.18)."""

    id: AttachmentId
    offset: Annotated[int, Meta(ge=0, le=2**53 - 1)] = 0
    length: Annotated[int, Meta(ge=1, le=65536)] = 65536


TeamName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00\s](?:[^\x00]*[^\x00\s])?\Z")]
"""A care team's name, e.g. ``移植一组``; no spaces at either end."""
QuickReplyId = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Scope = Literal["personal", "team", "shared"]
FILL_PATTERN = r"^[^{}\s\x00]{1,20}\Z"
"""The name of a fill-in prompt, as written in ``{{?name}}`` (SPEC.md §5.19)."""
FACT_PATTERN = r"^[a-z][a-z0-9_]{0,31}\Z"
"""A fact's key, as written in ``{{fact.key}}`` (SPEC.md §5.20)."""


class TeamCreate(Request, tag="team_create"):
    """Create a care team (SPEC.md §5.19); admin accounts only."""

    writes: ClassVar[bool] = True
    name: TeamName


class _TeamMember(Request):
    writes: ClassVar[bool] = True
    team: TeamName
    user: Username


class TeamAdd(_TeamMember, tag="team_add"):
    """Add a staff account to a care team; admin accounts only."""


class TeamRemove(_TeamMember, tag="team_remove"):
    """Take an account out of a care team; admin accounts only."""


class Teams(Request, tag="teams"):
    """Care teams and their members: every team for admins, their own for staff."""


class QrSave(Request, tag="qr_save"):
    """Create a quick reply, or change the one ``id`` names (SPEC.md §5.19, MSG-3); staff only."""

    writes: ClassVar[bool] = True
    shortcut: Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[^\s\x00/]+\Z")]
    """Typed after ``/``, e.g. ``yz``; kept in lowercase."""
    title: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
    id: QuickReplyId | None = None
    scope: Scope = "personal"
    team: TeamName | None = None
    """The team of a ``team`` quick reply."""
    kind: Kind = "text"
    text: Annotated[str, Meta(max_length=ABSOLUTE_MAX_TEXT, pattern=NO_NUL)] | None = None
    """The template of a ``text`` quick reply."""
    body: dict[str, Any] | None = None
    """The template body of any other kind."""


class QrDelete(Request, tag="qr_delete"):
    writes: ClassVar[bool] = True
    id: QuickReplyId


class QrList(Request, tag="qr_list"):
    """The quick replies the caller may use, with their prompts; staff only."""

    scope: Scope | None = None


class QrSearch(Request, tag="qr_search"):
    """Quick replies for what the user typed after ``/``, best first; staff only."""

    q: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] = ""
    limit: Annotated[int, Meta(ge=1, le=50)] = 10


class QrRender(Request, tag="qr_render"):
    """Quick replies filled in for a conversation, as messages ready to ``send``; staff only."""

    writes: ClassVar[bool] = True
    conv: ConvAddr
    ids: Annotated[list[QuickReplyId], Meta(min_length=1, max_length=10)]
    member: MemberId | None = None
    """The patient they are for, as the caller was shown her; in a direct chat, the patient in it."""
    fill: Annotated[
        dict[Annotated[str, Meta(pattern=FILL_PATTERN)], Annotated[str, Meta(min_length=1, max_length=1000,
                                                                             pattern=NO_NUL)]],
        Meta(max_length=20),
    ] = {}


class FactsSet(Request, tag="facts_set"):
    """Record (or, with ``value`` nil, remove) a fact about a patient (SPEC.md §5.20); bots and staff only."""

    writes: ClassVar[bool] = True
    user: Username
    key: Annotated[str, Meta(pattern=FACT_PATTERN)]
    value: Annotated[str, Meta(min_length=1, max_length=500, pattern=NO_NUL)] | None


AnyRequest = (
    Hello | Ping | Logout | Send | Sync | History | Read | Receipt | Convs
    | GroupCreate | GroupAdd | GroupRemove | Members
    | GroupSet | Isolate | Unisolate | GroupBan | GroupUnban | UserBan | UserUnban
    | FamilyLink | FamilyInvite | FriendRequest | FriendRequests | FriendRespond
    | WordsSet | WordsRemove | WordsList | Audit | Profile | Kinds | KindDefine
    | UploadBegin | UploadPart | UploadEnd | Fetch
    | TeamCreate | TeamAdd | TeamRemove | Teams | QrSave | QrDelete | QrList | QrSearch | QrRender | FactsSet
)
REQUEST_TYPES: tuple[type[Request], ...] = (
    Hello, Ping, Logout, Send, Sync, History, Read, Receipt, Convs,
    GroupCreate, GroupAdd, GroupRemove, Members,
    GroupSet, Isolate, Unisolate, GroupBan, GroupUnban, UserBan, UserUnban,
    FamilyLink, FamilyInvite, FriendRequest, FriendRequests, FriendRespond,
    WordsSet, WordsRemove, WordsList, Audit, Profile, Kinds, KindDefine,
    UploadBegin, UploadPart, UploadEnd, Fetch,
    TeamCreate, TeamAdd, TeamRemove, Teams, QrSave, QrDelete, QrList, QrSearch, QrRender, FactsSet,
)
OPS: frozenset[str] = frozenset(t.__struct_config__.tag for t in REQUEST_TYPES)  # type: ignore[misc]


class Sender(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who sent a message, as this viewer may see them (SPEC.md §6).

    ``id`` is ``u<n>`` for a real identity, ``a<n>`` for a pseudonym in this conversation.
    """

    id: str
    name: str
    role: str
    title: str = ""


class Message(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A stored message (SPEC.md §6). ``text`` is always present: the fallback for any kind."""

    id: int
    conv: str
    seq: int
    sender: Sender
    kind: str
    text: str
    ts: int
    """Commit time, milliseconds since the Unix epoch (UTC)."""
    body: dict[str, Any] | None = None
    cid: str | None = None
    only: Sender | None = None
    """The one person a mention-only message is for (IM-10), as this viewer may see them."""
    refused: bool = False
    """Refused by the sensitive-word filter and kept for audit; only staff see such messages (IM-11)."""
