"""Frames of protocol v1, both ways: every request, its answer and the pushes (SPEC.md §3–§6).

Theory of operation. Each frame is a msgspec struct, so one declaration gives
decoding, validation (with the path of a bad field), encoding and, through
``protocol.schema``, the JSON Schema other clients generate their types from.

- A request is tagged by its ``op``. Its type parameter names its answer
  (``History(Request[HistoryAnswer])``), and ``pushes`` the pushes it may cause.
- An answer is an ``ok`` frame (``Ok``): the request's ``rid``, then the op's
  result fields. Most derive from ``Answer``; one that has the shape of a value
  listed elsewhere derives from that value and ``Ok`` (a saved quick reply is a
  ``QuickReply``).
- A push is tagged by its ``op`` and has no ``rid`` (``Push``). An ``error``
  frame (``ErrorFrame``) answers a request that failed, or a frame without a
  usable ``rid``.

Omission rules, as on the wire: a field with a default is left out when it holds
its default (``omit_defaults``), so the server never sends one explicitly; a
field typed ``X | None`` without a default is always sent and may be nil.
Unknown fields are ignored both ways (forward compatibility, SPEC.md §9). The
order of declaration is the order the server writes the fields in.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args

import msgspec
from msgspec import Meta

PROTOCOL_VERSIONS: tuple[int, ...] = (1,)
"""Versions this implementation speaks, preferred last."""

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}\Z"
CONV_PATTERN = r"^(?:[gd]:[1-9][0-9]{0,17}|u:[a-z0-9][a-z0-9_.\-]{0,63})\Z"
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}\Z"
# \Z, not $: $ also matches before a trailing newline.


RequestId = Annotated[int, Meta(ge=1, le=2**53 - 1)]
Username = Annotated[str, Meta(pattern=USERNAME_PATTERN)]
ConvAddr = Annotated[str, Meta(pattern=CONV_PATTERN)]
"""``g:<id>`` a group, ``d:<id>`` a direct (1:1) chat, ``u:<username>`` the direct chat with a user."""
ClientMsgId = Annotated[str, Meta(min_length=1, max_length=64)]
Seq = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Kind = Annotated[str, Meta(pattern=KIND_PATTERN)]
MemberRole = Literal["owner", "admin", "member"]
MemberId = Annotated[str, Meta(pattern=r"^[ua][1-9][0-9]{0,17}\Z")]
"""A person as a conversation shows them: ``u<n>`` (real identity) or ``a<n>`` (pseudonym)."""
AttachmentId = Annotated[str, Meta(pattern=r"^att_[A-Za-z0-9_-]{8,64}\Z")]
"""A file stored by the server (SPEC.md §5.18), as message bodies name it."""
Mime = Annotated[str, Meta(pattern=r"^(image|audio|video|application)/[a-z0-9.+-]{1,60}\Z")]
Short = Annotated[str, Meta(min_length=1, max_length=200)]
"""A title or label people read (SPEC.md §6.1)."""
LAST_MILLISECOND = 253_402_300_799_999
"""9999-12-31 23:59:59.999 UTC in milliseconds since the Unix epoch: the last instant a time field may name."""
SeqRange = tuple[int, int]
"""``[first, last]`` seqs, both included: what a viewer may not see (SPEC.md §11.3)."""
ABSOLUTE_MAX_TEXT = 65536
"""No server limit can exceed this; the configured ``max_text`` is usually far lower."""
MAX_ANSWER_BYTES = 1 << 20
"""No frame the server sends, answer or push, is larger (SPEC.md §3.7): a quarter of what client libraries take
(the SDK's WebSocket closes above 4 MiB), so that no one's data can make another's answer unreadable."""
MAX_CONTENT_BYTES = 4 * ABSOLUTE_MAX_TEXT
"""A message's text and body together, encoded (SPEC.md §3.7): the longest text in the widest characters."""
MAX_MESSAGE_BYTES = MAX_CONTENT_BYTES + 8192
"""One message object, encoded: its content and what is around it (sender, mention, cid, numbers)."""
Cursor = Annotated[str, Meta(min_length=1, max_length=400)]
"""Where the next page of a list starts: opaque, sent back as it came (SPEC.md §3.7)."""

AnswerT = TypeVar("AnswerT")


# -- the kinds of frame (SPEC.md §3) -----------------------------------------------------------

class Ok(msgspec.Struct, tag_field="op", tag="ok", omit_defaults=True):
    """A successful answer (SPEC.md §3.2): ``op`` is ``"ok"``; ``rid`` and the op's result fields follow."""


class Answer(Ok):
    """An answer: the ``rid`` of the request it answers, then the op's result fields (SPEC.md §3.2)."""

    rid: RequestId


class Listing(Answer, kw_only=True):
    """An answer that lists a collection a page at a time, as many items as fit in one frame (SPEC.md §3.7)."""

    cursor: str | None = None
    """Present when the list goes on: the same request again with this ``cursor`` gives the next page."""
    listed: ClassVar[str]
    """The field that holds the page's items."""


class Push(msgspec.Struct, tag_field="op", omit_defaults=True):
    """A frame the server sends on its own, without ``rid`` (SPEC.md §3.5); ``op`` names it."""


class Request(msgspec.Struct, Generic[AnswerT], tag_field="op", kw_only=True, omit_defaults=True):
    """Base of every client request: ``op`` names it, ``rid`` pairs it with its answer (SPEC.md §3.1).

    ``rid`` is required on the wire; it defaults to 0 (never valid) only so that a
    client library can assign it when it sends the request (``decode_request``
    refuses a frame without one).
    """

    rid: RequestId = 0
    writes: ClassVar[bool] = False
    """True for ops a read-only session may not use (IM-17)."""
    pushes: ClassVar[tuple[type[Push], ...]] = ()
    """The pushes the op may cause, to the caller's other connections or to other people."""


class ErrorFrame(msgspec.Struct, tag_field="op", tag="error", kw_only=True, omit_defaults=True):
    """A refusal (SPEC.md §3.3, §7): the request changed nothing. Without ``rid`` when the frame had no usable one."""

    code: str
    """A stable code (``protocol.errors.ErrorCode``); clients treat one they do not know like ``internal``."""
    message: str
    """Chinese text for people: show it, never parse it."""
    rid: RequestId | None = None
    detail: str | None = None
    """For developers and logs, often English: never parse it."""
    field: str | None = None
    """The path of the offending field of the request (SPEC.md §3.3.1)."""
    retry_after_ms: int | None = None
    """With ``rate_limited`` (SPEC.md §7.5), and with ``unavailable`` from a server that shed the request (§7.6):
    how long to wait before sending the same request again."""


class ListRequest(Request[AnswerT], kw_only=True):
    """A request answered by a ``Listing``: without ``cursor`` it asks for the first page (SPEC.md §3.7)."""

    cursor: Cursor | None = None
    """The ``cursor`` of the page before."""


# -- people and messages (SPEC.md §6, §11.1) ---------------------------------------------------

class Person(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A person's real identity, as the welcome, profiles and care teams show it (SPEC.md §4.2, §5.17, §5.19)."""

    id: str
    """``u<n>``."""
    username: str
    name: str
    role: str
    """The account role: ``patient``, ``family``, ``staff``, ``bot`` or ``admin`` (clients ignore unknown ones)."""
    title: str = ""
    """A staff member's title (主任医师, 护士长…), when they have one."""


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


# -- handshake and session (SPEC.md §4, §5.7, §5.8, §7.4) ------------------------------------------

class Bye(Push, tag="bye"):
    """The server is about to close this connection, and why (SPEC.md §7.4)."""

    code: str
    message: str


class Limits(msgspec.Struct):
    """What this connection may send (SPEC.md §4.2, §7.5, §8)."""

    max_frame: int
    """Bytes of one frame."""
    max_text: int
    """Characters of a message's text."""
    rate: float
    """Requests per second."""
    burst: int
    files: dict[str, int]
    """Each file type the server accepts, and its largest file in bytes (SPEC.md §5.18)."""


class Welcome(Answer, kw_only=True):
    """The answer to a successful ``hello`` (SPEC.md §4.2)."""

    version: int
    session: str
    user: Person
    readonly: bool
    """Whether this session is read-only; clients go by this, not by what they asked for."""
    limits: Limits
    server_time: int
    token: str | None = None
    """Only after a password login: the token for later hellos (SPEC.md §4.3)."""


class Hello(Request[Welcome], tag="hello"):
    """The first frame of a connection: version negotiation and authentication (SPEC.md §4)."""

    versions: Annotated[list[Annotated[int, Meta(ge=1, le=255)]], Meta(min_length=1, max_length=8)]
    token: Annotated[str, Meta(max_length=1024)] | None = None
    username: Username | None = None
    password: Annotated[str, Meta(max_length=256)] | None = None
    device: Annotated[str, Meta(min_length=1, max_length=64)] = "default"
    readonly: bool = False
    client: Annotated[str, Meta(max_length=64)] | None = None


class PingAnswer(Answer):
    """The server's clock, to measure round trips and the clock offset (SPEC.md §5.7)."""

    server_time: int


class Ping(Request[PingAnswer], tag="ping"):
    """Application-level liveness check; browsers cannot send WebSocket pings (SPEC.md §5.7)."""


class LogoutAnswer(Answer):
    """No fields: the connection closes next (SPEC.md §5.8)."""


class Logout(Request[LogoutAnswer], tag="logout"):
    """Revoke this session's token and close the connection; its other connections get ``bye``."""

    pushes = (Bye,)


# -- messages (SPEC.md §5.1–§5.5) ------------------------------------------------------------------

class MsgPush(Push, tag="msg"):
    """A message this user may see was committed in one of their conversations (SPEC.md §5.1)."""

    msg: Message


class HiddenPush(Push, tag="hidden"):
    """Seqs this user may not see: skip them, or with ``retract`` remove messages shown before (SPEC.md §11.3)."""

    conv: str
    ranges: list[SeqRange]
    retract: bool = False


class FlagPush(Push, tag="flag"):
    """A message with flagged sensitive words was delivered; to staff and the group's managers (SPEC.md §11.5)."""

    conv: str
    seq: int
    words: list[str]


class SendAnswer(Answer):
    """The stored message's place; ``dup`` when its ``cid`` was used before and nothing new was stored."""

    conv: str
    seq: int
    id: int
    ts: int
    dup: bool


class Send(Request[SendAnswer], tag="send"):
    """Send a message (SPEC.md §5.1). ``text`` for kind ``text``, ``body`` for the others."""

    writes = True
    pushes = (MsgPush, HiddenPush, FlagPush)
    conv: ConvAddr
    cid: ClientMsgId
    kind: Kind = "text"
    text: Annotated[str, Meta(max_length=ABSOLUTE_MAX_TEXT)] | None = None
    body: dict[str, Any] | None = None
    only: MemberId | None = None
    """Mention-only: the one member (besides the group's managers) who may see it (IM-10)."""


class ConvSummary(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One of the user's conversations, as ``convs`` lists it (SPEC.md §5.5)."""

    conv: str
    kind: Literal["group", "direct"]
    name: str
    """The group's name; for a direct chat, the other person as the user may see them."""
    role: str
    """The user's member role: ``owner``, ``admin`` or ``member``."""
    last_seq: int
    read_seq: int
    unread: int
    muted: bool | None = None
    """Groups only, like the other switches (SPEC.md §5.9) and ``banned`` (§11.8)."""
    allow_friends: bool | None = None
    family_can_speak: bool | None = None
    banned: bool | None = None
    service: bool = False
    """A direct chat with a bot account: the user's inbox for that service."""


class SyncEntry(ConvSummary, kw_only=True):
    """A conversation and the page of seqs after the client's ``after`` (SPEC.md §5.2)."""

    messages: list[Message]
    hidden: list[SeqRange]
    more: bool


class SyncAnswer(Listing, kw_only=True):
    """One entry per conversation of the user, a page of them at a time; one that is absent from every page is one
    the user has left (SPEC.md §5.2)."""

    listed = "convs"
    convs: list[SyncEntry]
    """One entry per conversation of the user, in the order of their numbers."""


class Sync(ListRequest[SyncAnswer], tag="sync"):
    """Everything after the given seq for each conversation of the user (SPEC.md §5.2)."""

    after: Annotated[dict[ConvAddr, Seq], Meta(max_length=10_000)] = {}
    limit: Annotated[int, Meta(ge=1, le=500)] = 100


class HistoryAnswer(Answer):
    """A page: ``messages`` and ``hidden`` together cover its seqs (SPEC.md §5.3)."""

    conv: str
    messages: list[Message]
    hidden: list[SeqRange]
    more: bool


class History(Request[HistoryAnswer], tag="history"):
    """A page of one conversation, oldest first (SPEC.md §5.3)."""

    conv: ConvAddr
    before: Seq | None = None
    after: Seq | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] = 50


class ReadAnswer(Answer):
    """The read marker now, and what is still unread there (SPEC.md §5.4)."""

    conv: str
    read_seq: int
    unread: int


class ReadPush(Push, tag="read"):
    """The user's read marker moved, on another connection (SPEC.md §5.4)."""

    conv: str
    read_seq: int
    unread: int


class Read(Request[ReadAnswer], tag="read"):
    """Move the user's read marker forward (SPEC.md §5.4)."""

    pushes = (ReadPush,)
    conv: ConvAddr
    seq: Seq


class ReceiptAnswer(Answer):
    """The read markers of a direct chat: the caller's and the other person's (SPEC.md §5.4.1)."""

    conv: str
    last_seq: int
    read_seq: int
    """The caller's read marker."""
    peer_read_seq: int
    """The other person's read marker."""


class Receipt(Request[ReceiptAnswer], tag="receipt"):
    """How far the other person in a direct chat has read; staff, bots and admins only (SPEC.md §5.4.1)."""

    conv: ConvAddr


class ConvsAnswer(Listing, kw_only=True):
    """The user's conversations (SPEC.md §5.5)."""

    listed = "convs"
    convs: list[ConvSummary]
    """In the order of their numbers."""


class Convs(ListRequest[ConvsAnswer], tag="convs"):
    """The user's conversations with last seq, read marker and unread count (SPEC.md §5.5)."""


# -- groups (SPEC.md §5.6, §5.9–§5.11) ---------------------------------------------------------------

class ConvPush(Push, tag="conv"):
    """The user joined or left a conversation (SPEC.md §5.6); ``name`` is ``""`` for a direct chat."""

    conv: str
    event: Literal["joined", "left"]
    name: str


class GroupCreateAnswer(Answer):
    """The new group's address (SPEC.md §5.6)."""

    conv: str


class GroupCreate(Request[GroupCreateAnswer], tag="group_create"):
    """Create a group owned by the caller; staff, bots and admins only."""

    writes = True
    pushes = (ConvPush,)
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    members: Annotated[list[Username], Meta(max_length=1000)] = []


class GroupAddAnswer(Answer):
    """The member added, and their member role now (SPEC.md §5.6)."""

    conv: str
    user: str
    role: str


class GroupAdd(Request[GroupAddAnswer], tag="group_add"):
    """Add a user to a group, or change a member's role; group owner or admin only."""

    writes = True
    pushes = (ConvPush,)
    conv: ConvAddr
    user: Username
    role: MemberRole = "member"


class GroupRemoveAnswer(Answer):
    """The member removed (SPEC.md §5.6)."""

    conv: str
    user: str


class GroupRemove(Request[GroupRemoveAnswer], tag="group_remove"):
    """Remove a user from a group; group owner or admin only (anyone may remove themselves)."""

    writes = True
    pushes = (ConvPush,)
    conv: ConvAddr
    user: Username


class Member(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A member as the caller may see them (SPEC.md §5.6, §11.1): ``username`` and ``title`` for real identities."""

    id: str
    """``u<n>`` for a real identity, ``a<n>`` for a pseudonym: how the caller names the member in requests."""
    name: str
    role: str
    """The account role, also for masked members."""
    member_role: str
    username: str = ""
    title: str = ""


class MembersAnswer(Listing, kw_only=True):
    """The members, each as the caller may see them (SPEC.md §5.6)."""

    listed = "members"
    conv: str
    members: list[Member]


class Members(ListRequest[MembersAnswer], tag="members"):
    """The members of a conversation the caller belongs to."""

    conv: ConvAddr


class GroupState(msgspec.Struct, kw_only=True):
    """A group's switches and whether it is banned (SPEC.md §5.9, §11.8)."""

    conv: str
    muted: bool
    allow_friends: bool
    family_can_speak: bool
    banned: bool


class GroupPush(GroupState, Push, tag="group"):
    """A group's switches or its ban changed: its whole state, to every member (SPEC.md §5.9)."""


class GroupSetAnswer(GroupState, Ok):
    """The group's state after the change."""

    rid: RequestId


class GroupSet(Request[GroupSetAnswer], tag="group_set"):
    """Switch a group's settings; group owner or admin only (IM-4, IM-5, IM-9). Absent fields stay."""

    writes = True
    pushes = (GroupPush,)
    conv: ConvAddr
    muted: bool | None = None
    allow_friends: bool | None = None
    family_can_speak: bool | None = None


class IsolateAnswer(Answer):
    """Whether the member is isolated now (SPEC.md §5.10)."""

    conv: str
    member: str
    """The member id as sent."""
    isolated: bool


class _MemberAction(Request[AnswerT]):
    """An action on one member of a group."""

    writes = True
    conv: ConvAddr
    member: MemberId


class Isolate(_MemberAction[IsolateAnswer], tag="isolate"):
    """Isolate a member: her messages, past and future, are shown to herself and the managers only (IM-12)."""

    pushes = (HiddenPush,)


class Unisolate(_MemberAction[IsolateAnswer], tag="unisolate"):
    """Lift isolation: what she sent before stays hidden; new messages are seen by all (IM-13)."""


class GroupBanAnswer(Answer):
    """Whether the group is banned now (SPEC.md §5.11)."""

    conv: str
    banned: bool


class _GroupAction(Request[AnswerT]):
    writes = True
    pushes = (GroupPush,)
    conv: ConvAddr


class GroupBan(_GroupAction[GroupBanAnswer], tag="group_ban"):
    """Ban a group: nobody can read or send in it (IM-15); admin accounts only."""


class GroupUnban(_GroupAction[GroupBanAnswer], tag="group_unban"):
    """Lift a group's ban."""


# -- accounts, family and friends (SPEC.md §5.12–§5.14) ----------------------------------------------

class UserBanAnswer(Answer):
    """Whether the account is banned now (SPEC.md §5.12)."""

    user: str
    banned: bool


class _AccountAction(Request[AnswerT]):
    writes = True
    user: Username


class UserBan(_AccountAction[UserBanAnswer], tag="user_ban"):
    """Ban an account: every session ends at once, login is refused (IM-14); admin accounts only."""

    pushes = (Bye,)


class UserUnban(_AccountAction[UserBanAnswer], tag="user_unban"):
    """Lift an account's ban."""


Relation = Literal["husband", "parent", "child", "other"]


class FamilyLinkAnswer(Answer):
    """The link as it is now (SPEC.md §5.13)."""

    patient: str
    family: str
    relation: Relation


class FamilyLink(Request[FamilyLinkAnswer], tag="family_link"):
    """Link a family account to a patient (IM-8); staff and admin accounts only."""

    writes = True
    patient: Username
    family: Username
    relation: Relation


class FamilyInviteAnswer(Answer):
    """The relative who joined the group (SPEC.md §5.13)."""

    conv: str
    family: str


class FamilyInvite(Request[FamilyInviteAnswer], tag="family_invite"):
    """A patient brings one of her linked family into a group she is in (IM-8)."""

    writes = True
    pushes = (ConvPush,)
    conv: ConvAddr
    family: Username


class Requester(msgspec.Struct):
    """Who asks to be friends, as the person asked sees her in that group (a pseudonym, as a rule)."""

    id: str
    name: str


class FriendRequestEntry(msgspec.Struct):
    """A friend request waiting for the user's answer (SPEC.md §5.14)."""

    request: int
    conv: str
    from_: Requester = msgspec.field(name="from")


class FriendRequestPush(FriendRequestEntry, Push, tag="friend_request"):
    """Another member asks the user to be friends (SPEC.md §5.14)."""


class FriendRequestAnswer(Answer):
    """The friend request's id (SPEC.md §5.14)."""

    request: int
    """The request's id; asking again while it is pending gives the same one."""


class FriendRequest(_MemberAction[FriendRequestAnswer], tag="friend_request"):
    """Ask a fellow member to be friends, where the group allows it (IM-5)."""

    pushes = (FriendRequestPush,)


class FriendRequestsAnswer(Listing, kw_only=True):
    """The friend requests waiting for the caller, as the push shows them (SPEC.md §5.14)."""

    listed = "requests"
    requests: list[FriendRequestEntry]
    """Oldest first."""


class FriendRequests(ListRequest[FriendRequestsAnswer], tag="friend_requests"):
    """The friend requests waiting for the caller's answer (the push reaches only online users)."""


class FriendRespondAnswer(Answer, kw_only=True):
    """The answer given; accepted, the address of the direct chat it opened (SPEC.md §5.14)."""

    request: int
    accepted: bool
    conv: str | None = None
    """When accepted: their direct chat."""


class FriendRespond(Request[FriendRespondAnswer], tag="friend_respond"):
    """Accept or reject a friend request; accepting opens the direct chat."""

    writes = True
    pushes = (ConvPush,)
    request: Annotated[int, Meta(ge=1, le=2**63 - 1)]
    accept: bool


# -- sensitive words, audit and profiles (SPEC.md §5.15–§5.17) ---------------------------------------

Word = Annotated[str, Meta(min_length=1, max_length=64)]
Policy = Literal["mask", "block", "flag"]


class WordAnswer(Answer):
    """A sensitive word and its policy now (SPEC.md §5.15)."""

    word: str
    policy: Policy | None
    """nil after ``words_remove``."""


class WordsSet(Request[WordAnswer], tag="words_set"):
    """Add a sensitive word or change its policy (IM-11); admin accounts only."""

    writes = True
    word: Word
    policy: Policy


class WordsRemove(Request[WordAnswer], tag="words_remove"):
    """Take a word off the sensitive-word list; admin accounts only."""

    writes = True
    word: Word


class WordEntry(msgspec.Struct):
    """A sensitive word and its policy (SPEC.md §11.5)."""

    word: str
    policy: Policy


class WordsListAnswer(Listing, kw_only=True):
    """Every sensitive word (SPEC.md §5.15)."""

    listed = "words"
    words: list[WordEntry]
    """Sorted by word."""


class WordsList(ListRequest[WordsListAnswer], tag="words_list"):
    """The sensitive words and their policies; admin accounts only."""


class AuditEntry(msgspec.Struct):
    """One audited action (SPEC.md §5.16, §11.9)."""

    id: int
    at: str
    """ISO 8601 with its UTC offset."""
    actor: str
    """A username, or ``cli:<os user>`` for an operator command."""
    action: str
    target: str | None
    """The username of the account acted on."""
    conv: str | None
    detail: dict[str, Any]
    remote: str
    """The address of the connection the request came on; ``"cli"`` for operator commands."""


class AuditAnswer(Answer):
    """Audit entries (SPEC.md §5.16)."""

    entries: list[AuditEntry]
    """Oldest first."""


class Audit(Request[AuditAnswer], tag="audit"):
    """Audit entries, oldest first (SEC-1); admin accounts only."""

    since: Annotated[int, Meta(ge=0, le=LAST_MILLISECOND)] | None = None
    """Milliseconds since the Unix epoch, up to the end of the year 9999."""
    actor: Annotated[str, Meta(min_length=1, max_length=80)] | None = None
    """A username, or ``cli:<os user>`` for operator commands."""
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


MAX_FAMILY = 20
"""Family accounts linked to one patient, so that a profile fits in one answer (SPEC.md §5.13, §3.7)."""


class ProfileAnswer(Answer, kw_only=True):
    """The member's real identity with contact data (SPEC.md §5.17)."""

    id: str
    username: str
    name: str
    role: str
    title: str = ""
    phone: str | None
    family: list[Person]
    """The accounts linked to this one as family (SPEC.md §11.7)."""


class Profile(Request[ProfileAnswer], tag="profile"):
    """A member's profile (real name, phone, family); staff only, and every look-up is audited."""

    conv: ConvAddr
    member: MemberId


# -- custom message kinds (SPEC.md §6.2) -------------------------------------------------------------

FieldType = Literal["text", "long_text", "int", "number", "bool", "date", "time", "url", "attachment", "choice"]


class FieldDef(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One field of an admin-defined kind, or of a form (SPEC.md §6.1, §6.2)."""

    name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}\Z")]
    type: FieldType
    label: Short
    """What a form shows staff for this field (Chinese)."""
    required: bool = True
    choices: Annotated[list[Short], Meta(max_length=50)] = []
    """The allowed values of a ``choice`` field."""


class KindDefinition(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A kind an admin defines at run time (MSG-1 自定义): its fields and its fallback text."""

    name: Annotated[str, Meta(pattern=KIND_PATTERN)]
    title: Short
    fields: Annotated[list[FieldDef], Meta(min_length=1, max_length=30)]
    fallback: Annotated[str, Meta(min_length=1, max_length=500)]
    """The text for clients that do not know the kind: ``{field}`` stands for a field's value."""


class KindsAnswer(Answer):
    """The kinds the server accepts, and the definitions of the custom ones (SPEC.md §6.2)."""

    kinds: list[str]
    """Every kind the server accepts, ``text`` first."""
    custom: list[KindDefinition]


class Kinds(Request[KindsAnswer], tag="kinds"):
    """The message kinds the server accepts, with the definitions of custom ones (SPEC.md §6.2)."""


class KindDefineAnswer(Answer):
    """The kind defined (SPEC.md §6.2)."""

    kind: str


class KindDefine(Request[KindDefineAnswer], tag="kind_define"):
    """Define or replace a custom message kind; admins only (SPEC.md §6.2)."""

    writes = True
    definition: dict[str, Any]
    """A ``KindDefinition``; the server checks it and names a bad part under ``definition``."""


# -- attachments (SPEC.md §5.18) ---------------------------------------------------------------------

class UploadProgress(Answer):
    """How much of an upload the server holds: where the next part goes."""

    id: str
    received: int


class UploadBegin(Request[UploadProgress], tag="upload_begin"):
    """Start (or resume) storing a file of known size and digest (SPEC.md §5.18, MSG-4)."""

    writes = True
    mime: Mime
    size: Annotated[int, Meta(ge=1, le=2**53 - 1)]
    sha256: Annotated[str, Meta(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}\Z")]
    name: Annotated[str, Meta(max_length=200)] = ""


class UploadPart(Request[UploadProgress], tag="upload_part"):
    """The bytes of a file from ``offset``; a part sent again is harmless, so a client resumes by resending."""

    writes = True
    id: AttachmentId
    offset: Annotated[int, Meta(ge=0, le=2**53 - 1)]
    data: Annotated[bytes, Meta(min_length=1)]


class UploadEndAnswer(Answer, kw_only=True):
    """The attachment object to put into message bodies (SPEC.md §6.1)."""

    id: str
    mime: str
    size: int
    name: str = ""


class UploadEnd(Request[UploadEndAnswer], tag="upload_end"):
    """Check the stored file against its declared size, digest and type, and make it usable in messages."""

    writes = True
    id: AttachmentId


class FetchAnswer(Answer):
    """A range of a file: ``data`` from ``offset`` on, fewer bytes than asked at the end of the file."""

    id: str
    mime: str
    size: int
    sha256: str
    offset: int
    data: bytes


class Fetch(Request[FetchAnswer], tag="fetch"):
    """A range of a stored file, for whoever may see a message that carries it (SPEC.md §5.18)."""

    id: AttachmentId
    offset: Annotated[int, Meta(ge=0, le=2**53 - 1)] = 0
    length: Annotated[int, Meta(ge=1, le=65536)] = 65536


# -- care teams, quick replies and facts (SPEC.md §5.19, §5.20) --------------------------------------

TeamName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^\S(?:[\s\S]*\S)?\Z")]
"""A care team's name, e.g. ``移植一组``; no spaces at either end."""
QuickReplyId = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Scope = Literal["personal", "team", "shared"]
FILL_PATTERN = r"^[^{}\s]{1,20}\Z"
"""The name of a fill-in prompt, as written in ``{{?name}}`` (SPEC.md §5.19)."""
FACT_PATTERN = r"^[a-z][a-z0-9_]{0,31}\Z"
"""A fact's key, as written in ``{{fact.key}}`` (SPEC.md §5.20)."""


class TeamCreateAnswer(Answer):
    """The team created (SPEC.md §5.19)."""

    team: str


class TeamCreate(Request[TeamCreateAnswer], tag="team_create"):
    """Create a care team (SPEC.md §5.19); admin accounts only."""

    writes = True
    name: TeamName


class TeamMemberAnswer(Answer):
    """The team and the account added or taken out (SPEC.md §5.19)."""

    team: str
    user: str


class _TeamMember(Request[TeamMemberAnswer]):
    writes = True
    team: TeamName
    user: Username


class TeamAdd(_TeamMember, tag="team_add"):
    """Add a staff account to a care team; admin accounts only."""


class TeamRemove(_TeamMember, tag="team_remove"):
    """Take an account out of a care team; admin accounts only."""


MAX_TEAM_MEMBERS = 200
"""Members of one care team, so that a team fits in a page of ``teams`` (SPEC.md §5.19, §3.7)."""


class Team(msgspec.Struct):
    """A care team and its members (SPEC.md §5.19)."""

    name: str
    members: list[Person]


class TeamsAnswer(Listing, kw_only=True):
    """The care teams the caller may see (SPEC.md §5.19)."""

    listed = "teams"
    teams: list[Team]
    """By name."""


class Teams(ListRequest[TeamsAnswer], tag="teams"):
    """Care teams and their members: every team for admins, their own for staff."""


class QuickReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A quick reply as ``qr_list`` and ``qr_search`` show it, with what filling it in needs (SPEC.md §5.19)."""

    id: int
    scope: Scope
    shortcut: str
    title: str
    kind: str
    text: str
    """The template of a ``text`` reply; the fallback text of another kind's template."""
    variables: list[str]
    """The variables it uses, e.g. ``["patient", "fact.next_visit"]``."""
    prompts: list[str]
    """The fill-ins to ask the sender for, e.g. ``["体重"]``."""
    uses: int
    """How often the caller used it."""
    editable: bool
    """May the caller save or delete it."""
    team: str | None = None
    """Scope ``team`` only."""
    body: dict[str, Any] | None = None
    """The template body of a reply of another kind than ``text``."""


class QrSaveAnswer(QuickReply, Ok):
    """The saved quick reply."""

    rid: RequestId


class QrSave(Request[QrSaveAnswer], tag="qr_save"):
    """Create a quick reply, or change the one ``id`` names (SPEC.md §5.19, MSG-3); staff only."""

    writes = True
    shortcut: Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[^\s/]+\Z")]
    """Typed after ``/``, e.g. ``yz``; kept in lowercase."""
    title: Annotated[str, Meta(min_length=1, max_length=64)]
    id: QuickReplyId | None = None
    scope: Scope = "personal"
    team: TeamName | None = None
    """The team of a ``team`` quick reply."""
    kind: Kind = "text"
    text: Annotated[str, Meta(max_length=ABSOLUTE_MAX_TEXT)] | None = None
    """The template of a ``text`` quick reply."""
    body: dict[str, Any] | None = None
    """The template body of any other kind."""


class QrDeleteAnswer(Answer):
    """The quick reply deleted (SPEC.md §5.19)."""

    id: int


class QrDelete(Request[QrDeleteAnswer], tag="qr_delete"):
    """Delete a quick reply the caller manages (SPEC.md §5.19); staff only."""

    writes = True
    id: QuickReplyId


class QuickRepliesAnswer(Listing, kw_only=True):
    """Quick replies the caller may use, with what filling each in needs (SPEC.md §5.19)."""

    listed = "replies"
    replies: list[QuickReply]


class QrList(ListRequest[QuickRepliesAnswer], tag="qr_list"):
    """The quick replies the caller may use, with their prompts; staff only."""

    scope: Scope | None = None


class QrSearch(Request[QuickRepliesAnswer], tag="qr_search"):
    """Quick replies for what the user typed after ``/``, best first; staff only."""

    q: Annotated[str, Meta(max_length=64)] = ""
    limit: Annotated[int, Meta(ge=1, le=50)] = 10


class ReadyMessage(msgspec.Struct, omit_defaults=True):
    """A filled-in quick reply, ready to ``send`` with a new ``cid``: ``text`` for kind ``text``, else ``body``."""

    kind: str
    text: str | None = None
    body: dict[str, Any] | None = None


class QrRenderAnswer(Answer):
    """The messages to send, in order (SPEC.md §5.19)."""

    conv: str
    messages: list[ReadyMessage]
    """In order; the texts of all ``text`` replies are joined into one message."""


class QrRender(Request[QrRenderAnswer], tag="qr_render"):
    """Quick replies filled in for a conversation, as messages ready to ``send``; staff only."""

    writes = True
    conv: ConvAddr
    ids: Annotated[list[QuickReplyId], Meta(min_length=1, max_length=10)]
    member: MemberId | None = None
    """The patient they are for, as the caller was shown her; in a direct chat, the patient in it."""
    fill: Annotated[
        dict[Annotated[str, Meta(pattern=FILL_PATTERN)], Annotated[str, Meta(min_length=1, max_length=1000)]],
        Meta(max_length=20),
    ] = {}


class FactsSetAnswer(Answer):
    """The fact as recorded now; ``value`` nil once removed (SPEC.md §5.20)."""

    user: str
    key: str
    value: str | None


class FactsSet(Request[FactsSetAnswer], tag="facts_set"):
    """Record (or, with ``value`` nil, remove) a fact about a patient (SPEC.md §5.20); bots and staff only."""

    writes = True
    user: Username
    key: Annotated[str, Meta(pattern=FACT_PATTERN)]
    value: Annotated[str, Meta(min_length=1, max_length=500)] | None


# -- the whole contract ------------------------------------------------------------------------------

AnyRequest = (
    Hello | Ping | Logout | Send | Sync | History | Read | Receipt | Convs
    | GroupCreate | GroupAdd | GroupRemove | Members
    | GroupSet | Isolate | Unisolate | GroupBan | GroupUnban | UserBan | UserUnban
    | FamilyLink | FamilyInvite | FriendRequest | FriendRequests | FriendRespond
    | WordsSet | WordsRemove | WordsList | Audit | Profile | Kinds | KindDefine
    | UploadBegin | UploadPart | UploadEnd | Fetch
    | TeamCreate | TeamAdd | TeamRemove | Teams | QrSave | QrDelete | QrList | QrSearch | QrRender | FactsSet
)
REQUEST_TYPES: tuple[type[Request[Any]], ...] = get_args(AnyRequest)
OPS: frozenset[str] = frozenset(t.__struct_config__.tag for t in REQUEST_TYPES)  # type: ignore[misc]

AnyPush = MsgPush | HiddenPush | ReadPush | ConvPush | GroupPush | FlagPush | FriendRequestPush | Bye
PUSH_TYPES: tuple[type[Push], ...] = get_args(AnyPush)
PUSH_OPS: frozenset[str] = frozenset(t.__struct_config__.tag for t in PUSH_TYPES)  # type: ignore[misc]


def answer_type(request: type[Request[AnswerT]]) -> type[AnswerT]:
    """The struct of the ``ok`` answer to a request type: the type parameter it was declared with."""
    for cls in request.__mro__:
        for base in vars(cls).get("__orig_bases__", ()):
            found = [arg for arg in get_args(base) if isinstance(arg, type)]
            if found:
                return found[0]
    raise TypeError(f"{request.__name__} names no answer")


ANSWER_TYPES: dict[str, type[Ok]] = {
    t.__struct_config__.tag: answer_type(t) for t in REQUEST_TYPES  # type: ignore[misc]
}
"""The answer struct of each op."""
