"""No answer or push is larger than ``MAX_ANSWER_BYTES``, whatever anyone stored (issue 14 item 3; SPEC.md §3.7;
NFR-2, DESIGN rule 6).

The class first: every answer type of ``protocol.frames.ANSWER_TYPES`` and every push type is accounted for in
``ANSWERS`` and ``PUSHES`` by how it is bounded, and each claim is checked. A flat frame (no list, map or bytes
inside) is built with every string at 1000 four-byte characters, more than any string the server stores (names
and titles 64, words 64, file names 200, facts 500); a frame that carries a list, a map or bytes is built at its
limits with the largest items the limits allow; a paged answer (a ``Listing``) is bounded by the pager, if its
fixed fields and its largest item fit, and is filled on a real server with items as large as they come until it
pages (``FILLED`` names those).

Then the example of the issue: a bot sends lab reports that fill a frame each, and another member's ``sync`` and
``history``, through the SDK as bots and apps use them, get every message exactly once in pages that each fit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import msgspec
import pytest

from clients.python import Client
from clients.python.websocket import ClientWebSocket
from imserver import views
from imserver.actions.accounts import MAX_NAME, do_link_family
from imserver.actions.base import Actor
from imserver.actions.kinds import do_define_kind
from imserver.actions.words import do_set_word
from imserver.admin import Admin, NewGroup, NewUser
from imserver.delivery import RETRACT_CHUNK
from imserver.filetypes import SIGNATURES
from imserver.model import Role
from imserver.store import moderation, quickreplies
from imserver.words import MAX_FOUND, Policy
from protocol import encode
from protocol.frames import (
    ABSOLUTE_MAX_TEXT,
    ANSWER_TYPES,
    MAX_ANSWER_BYTES,
    MAX_CONTENT_BYTES,
    MAX_FAMILY,
    MAX_MESSAGE_BYTES,
    MAX_TEAM_MEMBERS,
    PUSH_TYPES,
    REQUEST_TYPES,
    Audit,
    AuditEntry,
    Convs,
    ConvSummary,
    FamilyLink,
    FetchAnswer,
    FlagPush,
    FriendRequestEntry,
    FriendRequests,
    GroupCreate,
    HiddenPush,
    History,
    HistoryAnswer,
    KindDefine,
    Kinds,
    KindsAnswer,
    Limits,
    Listing,
    ListRequest,
    Member,
    Members,
    Message,
    MsgPush,
    Person,
    Profile,
    ProfileAnswer,
    QrList,
    QrRender,
    QrRenderAnswer,
    QrSaveAnswer,
    QrSearch,
    QuickReply,
    Requester,
    Sender,
    Sync,
    SyncEntry,
    Team,
    Teams,
    Welcome,
    WordEntry,
    WordsList,
)
from protocol.kinds import MAX_CUSTOM_KINDS, MAX_DEFINITION_BYTES, default_registry
from tests.conftest import PASSWORD, Running
from tests.helpers import take
from tests.imserver.test_rules_support import login, refused

WIDE = "𠀀"
"""Four bytes in UTF-8: the widest a character gets."""
BIG = 2**63 - 1
CONV = "g:" + "9" * 18
NAME = WIDE * MAX_NAME
PERSON = Person(id=f"u{BIG}", username="u" * 64, name=NAME, role="patient", title=NAME)
SENDER = Sender(f"u{BIG}", NAME, "patient", NAME)
REQUESTS = {t.__struct_config__.tag: t for t in REQUEST_TYPES}  # type: ignore[misc]


# -- the class: every frame the server sends, and how it is bounded ------------------------------

def size(frame: msgspec.Struct) -> int:
    return len(encode(frame))


def worst(cls: type[msgspec.Struct], **given: Any) -> msgspec.Struct:
    """``cls`` with every field at its largest: numbers at 64 bits, strings of 1000 four-byte characters (but a
    conversation's address), nested structs likewise; a list, map or bytes field only as ``given`` (a flat frame
    has none)."""
    def value(name: str, info: msgspec.inspect.Type) -> Any:
        if name == "conv":
            return CONV  # a conversation's address, always
        if isinstance(info, msgspec.inspect.UnionType):
            return value(name, next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)))
        if isinstance(info, msgspec.inspect.StrType):
            return WIDE * 1000
        if isinstance(info, msgspec.inspect.IntType):
            return BIG
        if isinstance(info, msgspec.inspect.FloatType):
            return 1e300
        if isinstance(info, msgspec.inspect.BoolType):
            return True
        if isinstance(info, msgspec.inspect.LiteralType):
            return max(info.values, key=lambda v: len(str(v)))
        if isinstance(info, msgspec.inspect.StructType):
            return worst(info.cls)
        raise AssertionError(f"{cls.__name__}.{name} holds a list, map or bytes: give its worst case")
    fields = msgspec.inspect.type_info(cls).fields  # type: ignore[attr-defined]
    return cls(**{f.name: given[f.name] if f.name in given else value(f.name, f.type) for f in fields})


def worst_message() -> Message:
    """The largest message: the longest text in the widest characters (a non-text kind's body and fallback text
    together are held to ``MAX_CONTENT_BYTES`` by the kinds, which is less), the largest sender, mention and cid."""
    return Message(id=BIG, conv=CONV, seq=BIG, sender=SENDER, kind="k" * 32, text=WIDE * ABSOLUTE_MAX_TEXT, ts=BIG,
                   cid=WIDE * 64, only=SENDER, refused=True)


def worst_reply() -> QuickReply:
    """More than a quick reply can hold at once: the longest text, a body of the largest content, and as many
    prompts and variables as placeholders of the shortest kind would make in such a text."""
    return QuickReply(
        id=BIG, scope="personal", shortcut=WIDE * 16, title=WIDE * 64, kind="k" * 32, text=WIDE * ABSOLUTE_MAX_TEXT,
        variables=["fact." + "k" * 32] * (ABSOLUTE_MAX_TEXT // 43), prompts=[WIDE * 20] * (ABSOLUTE_MAX_TEXT // 25),
        uses=BIG, editable=True, team=WIDE * 64, body={"b": "b" * MAX_CONTENT_BYTES},
    )


PAGED = "paged"
"""A ``Listing``, a page at a time within the pager's budget; filled on a real server below."""
MESSAGES = "messages"
"""A page of messages within ``views.PAGE_BUDGET`` and one message more; filled in the example below."""
LIMITED = "limited"
"""Fewer entries than ``limit`` when they would not fit: the pager's budget, without a cursor."""


def flat(cls: type[msgspec.Struct]) -> Callable[[], msgspec.Struct]:
    return lambda: worst(cls)


ANSWERS: dict[str, str | Callable[[], msgspec.Struct]] = {
    "hello": lambda: worst(Welcome, limits=worst(Limits, files={f"application/{i:060d}": BIG
                                                                for i in range(len(SIGNATURES))})),
    "ping": flat(ANSWER_TYPES["ping"]), "logout": flat(ANSWER_TYPES["logout"]), "send": flat(ANSWER_TYPES["send"]),
    "sync": PAGED, "history": MESSAGES, "read": flat(ANSWER_TYPES["read"]), "receipt": flat(ANSWER_TYPES["receipt"]),
    "convs": PAGED, "group_create": flat(ANSWER_TYPES["group_create"]), "group_add": flat(ANSWER_TYPES["group_add"]),
    "group_remove": flat(ANSWER_TYPES["group_remove"]), "members": PAGED,
    "group_set": flat(ANSWER_TYPES["group_set"]), "isolate": flat(ANSWER_TYPES["isolate"]),
    "unisolate": flat(ANSWER_TYPES["unisolate"]), "group_ban": flat(ANSWER_TYPES["group_ban"]),
    "group_unban": flat(ANSWER_TYPES["group_unban"]), "user_ban": flat(ANSWER_TYPES["user_ban"]),
    "user_unban": flat(ANSWER_TYPES["user_unban"]), "family_link": flat(ANSWER_TYPES["family_link"]),
    "family_invite": flat(ANSWER_TYPES["family_invite"]), "friend_request": flat(ANSWER_TYPES["friend_request"]),
    "friend_requests": PAGED, "friend_respond": flat(ANSWER_TYPES["friend_respond"]),
    "words_set": flat(ANSWER_TYPES["words_set"]), "words_remove": flat(ANSWER_TYPES["words_remove"]),
    "words_list": PAGED, "audit": LIMITED,
    "profile": lambda: worst(ProfileAnswer, family=[PERSON] * MAX_FAMILY),
    "kinds": lambda: worst(KindsAnswer, kinds=["k" * 32] * (len(default_registry().names()) + MAX_CUSTOM_KINDS),
                           custom=[]),
    "kind_define": flat(ANSWER_TYPES["kind_define"]), "upload_begin": flat(ANSWER_TYPES["upload_begin"]),
    "upload_part": flat(ANSWER_TYPES["upload_part"]), "upload_end": flat(ANSWER_TYPES["upload_end"]),
    "fetch": lambda: worst(FetchAnswer, data=bytes(65536)),
    "team_create": flat(ANSWER_TYPES["team_create"]), "team_add": flat(ANSWER_TYPES["team_add"]),
    "team_remove": flat(ANSWER_TYPES["team_remove"]), "teams": PAGED,
    "qr_save": lambda: QrSaveAnswer(rid=BIG, **msgspec.structs.asdict(worst_reply())),
    "qr_delete": flat(ANSWER_TYPES["qr_delete"]), "qr_list": PAGED, "qr_search": LIMITED,
    "qr_render": lambda: worst(QrRenderAnswer, messages=[]),
    "facts_set": flat(ANSWER_TYPES["facts_set"]),
}
"""How each answer is bounded: its worst case, or how it is cut."""
EXTRA = {
    "kinds": MAX_CUSTOM_KINDS * MAX_DEFINITION_BYTES,  # the custom definitions, each held to its size when defined
    "qr_render": views.LIST_BUDGET,  # the messages together, checked when they are filled in
}
"""Bytes a worst case holds besides the frame built: what a check at the source keeps within a number."""

PUSHES: dict[str, Callable[[], msgspec.Struct]] = {
    "msg": lambda: MsgPush(msg=worst_message()),
    "hidden": lambda: HiddenPush(conv=CONV, ranges=[(BIG, BIG)] * RETRACT_CHUNK, retract=True),
    "flag": lambda: FlagPush(conv=CONV, seq=BIG, words=[WIDE * 64] * MAX_FOUND),
    **{t.__struct_config__.tag: flat(t) for t in PUSH_TYPES  # type: ignore[misc]
       if t.__struct_config__.tag in ("read", "conv", "group", "friend_request", "bye")},
}


def test_every_answer_and_every_push_is_accounted_for() -> None:
    assert set(ANSWERS) == set(ANSWER_TYPES)
    assert set(PUSHES) == {t.__struct_config__.tag for t in PUSH_TYPES}  # type: ignore[misc]


@pytest.mark.parametrize("op", sorted(op for op, bound in ANSWERS.items() if callable(bound)))
def test_answers_at_their_limits_fit(op: str) -> None:
    """A flat answer, or one whose lists have limits: its worst case fits (SPEC.md §3.7)."""
    bound = ANSWERS[op]
    assert callable(bound)
    frame = bound()
    assert isinstance(frame, ANSWER_TYPES[op])
    assert size(frame) + EXTRA.get(op, 0) <= MAX_ANSWER_BYTES


@pytest.mark.parametrize("op", sorted(PUSHES))
def test_pushes_at_their_limits_fit(op: str) -> None:
    assert size(PUSHES[op]()) <= MAX_ANSWER_BYTES


def test_the_largest_message_is_within_its_bound() -> None:
    """``MAX_MESSAGE_BYTES``, which pages keep room for, holds the largest message, and a page of ``history`` fits:
    its fields in the envelope, its messages and hidden seqs in ``PAGE_BUDGET`` and one message more (SPEC.md
    §3.7); ``sync`` is checked as a paged answer below."""
    assert size(worst_message()) <= MAX_MESSAGE_BYTES
    assert size(worst(HistoryAnswer, messages=[], hidden=[])) + views.ENTRY_LISTS_BYTES <= views.ENVELOPE
    assert views.PAGE_BUDGET + MAX_MESSAGE_BYTES + views.ENVELOPE <= MAX_ANSWER_BYTES


ITEMS: dict[str, Callable[[], msgspec.Struct]] = {
    "sync": lambda: SyncEntry(**msgspec.structs.asdict(worst(ConvSummary)), messages=[], hidden=[], more=True),
    "convs": lambda: worst(ConvSummary),
    "members": lambda: Member(id=f"u{BIG}", name=NAME, role="patient", member_role="member", username="u" * 64,
                              title=NAME),
    "friend_requests": lambda: FriendRequestEntry(BIG, CONV, Requester(f"a{BIG}", NAME)),
    "words_list": lambda: WordEntry(WIDE * 64, "block"),
    "teams": lambda: Team(name=WIDE * 64, members=[PERSON] * MAX_TEAM_MEMBERS),
    "qr_list": worst_reply, "qr_search": worst_reply,
    "audit": lambda: worst(AuditEntry, detail={"cid": WIDE * 64, "words": [WIDE * 64] * MAX_FOUND}),
}
"""The largest item of each answer that is cut to fit: the one a page takes whatever its size."""


@pytest.mark.parametrize("op", sorted(op for op, bound in ANSWERS.items() if bound in (PAGED, LIMITED)))
def test_cut_answers_fit_with_their_largest_item(op: str) -> None:
    """The answer without items, at its largest, fits in ``ENVELOPE``; its largest item alone fits in the budget;
    a paged answer is a ``Listing`` filled on a real server below (SPEC.md §3.7)."""
    cls = ANSWER_TYPES[op]
    listed = cls.listed if issubclass(cls, Listing) else next(f for f in cls.__struct_fields__ if f != "rid")
    empty = worst(cls, **{listed: []}, **({"cursor": "c" * 400} if issubclass(cls, Listing) else {}))
    assert size(empty) + 5 <= views.ENVELOPE  # the list's header grows to 5 bytes
    budget = views.PAGE_BUDGET if op == "sync" else views.LIST_BUDGET
    assert size(ITEMS[op]()) + views.ENTRY_LISTS_BYTES <= budget
    assert (ANSWERS[op] == PAGED) == issubclass(REQUESTS[op], ListRequest)
    if ANSWERS[op] == PAGED:
        assert op in FILLED


# -- on a real server: long lists of large items, a page at a time ------------------------------

@contextmanager
def largest_frame() -> Iterator[list[int]]:
    """The size of the largest frame any client received, straight off the WebSocket, as ``[n]``."""
    largest = [0]
    original = ClientWebSocket.receive_message

    async def receive_message(self: ClientWebSocket) -> bytes:
        data = await original(self)
        largest[0] = max(largest[0], len(data))
        return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClientWebSocket, "receive_message", receive_message)
        yield largest


async def pages(client: Client, request: Any) -> list[Listing]:
    """Every page of a list, following ``cursor`` by hand."""
    found = [await client.request(request)]
    while found[-1].cursor is not None:
        found.append(await client.request(msgspec.structs.replace(request, cursor=found[-1].cursor)))
    return found


async def admin_pages(server: Running, request: Any) -> list[Listing]:
    """Every page of a list as the admin account ``root`` reads it; each frame fits."""
    async with login(server, "root") as admin:
        with largest_frame() as largest:
            found = await pages(admin, request)
        assert largest[0] <= MAX_ANSWER_BYTES
    return found


def staff(i: int) -> NewUser:
    return NewUser(f"s{i:05d}" + "x" * 58, WIDE * (MAX_NAME - 5) + f"{i:05d}", "staff", NAME)


async def crowd(server: Running, count: int) -> dict[str, int]:
    """``count`` staff accounts with the longest names and titles; their ids by username."""
    admin = Admin(server.store)
    users = [staff(i) for i in range(count)]
    await admin.add_users(users, PASSWORD)
    return await admin.user_ids([u.username for u in users])


async def test_members_conversations_and_their_sync_come_in_pages(server: Running) -> None:
    """A group of 1700 staff with the longest names and titles, and a member of 3200 groups with the longest
    names: ``members``, ``convs`` and ``sync`` each take several pages, every page fits, and together they list
    each member and each conversation once, in their order (SPEC.md §3.7, §5.2, §5.5, §5.6)."""
    ids = await crowd(server, 1700)
    dr = min(ids.values())
    admin = Admin(server.store)
    names = [WIDE * 58 + f"{i:06d}" for i in range(3200)]
    await admin.add_groups([NewGroup("大群", dr, sorted(ids.values()))]
                           + [NewGroup(name, dr, []) for name in names])
    async with login(server, staff(0).username) as client:
        with largest_frame() as largest:
            group = (await client.whole(Convs())).convs[0].conv
            member_pages = await pages(client, Members(conv=group))
            conv_pages = await pages(client, Convs())
            sync_pages = await pages(client, Sync())
            synced = await client.sync()
        assert largest[0] <= MAX_ANSWER_BYTES
    members = [m for page in member_pages for m in page.members]  # type: ignore[attr-defined]
    assert len(member_pages) > 1 and [m.username for m in members] == [staff(i).username for i in range(1700)]
    assert len(conv_pages) > 1 and len(sync_pages) > 1
    listed = [c.conv for page in conv_pages for c in page.convs]  # type: ignore[attr-defined]
    assert listed == sorted(listed, key=lambda c: int(c[2:])) and len(set(listed)) == 3201
    assert [c.conv for page in sync_pages for c in page.convs] == listed  # type: ignore[attr-defined]
    assert [c.conv for c in synced] == listed


async def test_sensitive_words_come_in_pages(server: Running) -> None:
    """4000 words of 64 four-byte characters, more than one answer holds: ``words_list`` pages them, sorted, each
    once (SPEC.md §3.7, §5.15)."""
    words = [WIDE * 60 + f"{i:04d}" for i in range(4000)]

    async def insert(db: Any) -> None:
        for word in words:
            await moderation.set_word_txn(db, word, "flag", None)
    await server.store.run("test_words", insert)
    await server.user("root", Role.ADMIN)
    found = await admin_pages(server, WordsList())
    assert len(found) > 1
    assert [w.word for page in found for w in page.words] == sorted(words)  # type: ignore[attr-defined]


async def test_care_teams_come_in_pages_and_hold_at_most_their_limit(server: Running) -> None:
    """Ten teams of 200 staff with the longest names and titles: ``teams`` pages them; a 201st member is refused,
    so that a team always fits in a page (SPEC.md §3.7, §5.19)."""
    ids = await crowd(server, MAX_TEAM_MEMBERS + 1)
    teams = [WIDE * 60 + f"{i:04d}" for i in range(10)]

    async def insert(db: Any) -> None:
        for name in teams:
            team_id = await quickreplies.create_team_txn(db, name)
            for user_id in sorted(ids.values())[:MAX_TEAM_MEMBERS]:
                await quickreplies.set_team_member_txn(db, team_id, user_id, True)
    await server.store.run("test_teams", insert)
    await server.user("root", Role.ADMIN)
    found = await admin_pages(server, Teams())
    async with login(server, "root") as admin:
        await refused(admin.request("team_add", team=teams[0], user=staff(MAX_TEAM_MEMBERS).username), "bad_request")
    assert len(found) > 1
    listed = [t for page in found for t in page.teams]  # type: ignore[attr-defined]
    assert [t.name for t in listed] == sorted(teams)
    assert all(len(t.members) == MAX_TEAM_MEMBERS for t in listed)


def lab_report(values: int) -> dict[str, Any]:
    """A valid lab report of ``values`` result lines, each as long as the kind allows in ASCII."""
    return {"title": "t" * 200, "collected": "2026-01-15", "lab": "l" * 200, "values": [
        {"name": f"{i:03d}" + "n" * 197, "value": "9" * 60, "unit": "u" * 30, "range": "r" * 60, "flag": "high"}
        for i in range(values)
    ]}


LARGEST_REPORT = max(n for n in range(1, 201) if len(encode({
    "op": "send", "rid": 2**53 - 1, "conv": CONV, "cid": "c" * 64, "kind": "lab_report", "body": lab_report(n),
})) <= 65536)
"""The most result lines a lab report may have in one frame of the default ``max_frame`` (about 61 KB)."""


async def test_quick_replies_come_in_pages_and_search_gives_what_fits(server: Running) -> None:
    """Twenty lab-report templates of a frame each, more than one answer holds: ``qr_list`` pages them in their
    order, ``qr_search`` gives the best that fit (SPEC.md §3.7, §5.19)."""
    await server.user("dr", Role.STAFF)
    async with login(server, "dr") as dr:
        for i in range(20):
            await dr.save_quick_reply(f"r{i:02d}", f"报告{i:02d}", kind="lab_report", body=lab_report(LARGEST_REPORT))
        with largest_frame() as largest:
            found = await pages(dr, QrList())
            best = (await dr.request(QrSearch(q="r", limit=50))).replies
        assert largest[0] <= MAX_ANSWER_BYTES
    assert len(found) > 1
    assert [r.shortcut for page in found for r in page.replies] == [f"r{i:02d}" for i in range(20)]  # type: ignore
    assert 0 < len(best) < 20 and [r.shortcut for r in best] == [f"r{i:02d}" for i in range(len(best))]


async def test_friend_requests_come_in_pages(server: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pending friend requests are paged like every list (SPEC.md §3.7, §5.14). An entry is some 60 bytes, so a
    page of the real budget takes some 17,000 of them; here the budget is cut to a few entries instead."""
    monkeypatch.setattr(views, "LIST_BUDGET", 200)
    dr = await server.user("dr", Role.STAFF)
    her = await server.user("pt_her", Role.PATIENT)
    asking = [await server.user(f"pt_{i:02d}", Role.PATIENT) for i in range(12)]
    admin = Admin(server.store)
    await admin.add_groups([NewGroup("病友群", dr.id, [her.id, *(p.id for p in asking)])])
    conv_id = int((await admin.group_addresses(["病友群"]))["病友群"][2:])
    for patient in asking:
        await server.store.run("test_ask", moderation.request_friend_txn, conv_id, patient.id, her.id)
    async with login(server, "pt_her") as client:
        found = await pages(client, FriendRequests())
        every = (await client.whole(FriendRequests())).requests
    assert len(found) >= 3
    ids = [r.request for page in found for r in page.requests]  # type: ignore[attr-defined]
    assert ids == sorted(ids) and len(set(ids)) == 12 and [r.request for r in every] == ids


async def test_a_cursor_of_another_list_is_refused(server: Running) -> None:
    """SPEC.md §3.7: a cursor the server cannot read, or one of another op, is ``bad_request`` naming ``cursor``."""
    owner = await server.user("dr", Role.STAFF)
    await Admin(server.store).add_groups([NewGroup("移植群", owner.id, [])])
    async with login(server, "dr") as dr:
        for cursor in ("nonsense", json.dumps(["移植"]), json.dumps([1, 2, 3])):
            error = await refused(dr.request(Convs(cursor=cursor)), "bad_request")
            assert error.field == "cursor"
        assert (await dr.request(Convs(cursor=json.dumps([2**62])))).convs == []


async def test_audit_entries_come_as_many_as_fit(server: Running) -> None:
    """45 flagged messages, each naming the most words an entry names (100 of 64 four-byte characters): ``audit``
    with ``limit`` 1000 answers fewer than it may, and reading on from the last one gives the rest (SPEC.md §3.7,
    §5.16, §11.5)."""
    actions = server.server.services.actions
    words = [WIDE * 60 + f"{i:04d}" for i in range(MAX_FOUND + 20)]
    for word in words:
        await do_set_word(actions, Actor.operator(), word, Policy.FLAG)
    dr = await server.user("dr", Role.STAFF)
    her = await server.user("pt_her", Role.PATIENT)
    await server.user("root", Role.ADMIN)
    await Admin(server.store).add_groups([NewGroup("随访群", dr.id, [her.id])])
    values = {f"f{i:02d}": "".join(words[i::30]) for i in range(30)}
    async with login(server, "pt_her") as client, login(server, "root") as admin:
        conv = (await client.whole(Convs())).convs[0].conv
        for _ in range(45):
            await client.send(conv, kind="form_reply", body={"form": 1, "values": values})
        with largest_frame() as largest:
            first = (await admin.request(Audit(limit=1000))).entries
            entries = {e.id: e for e in first}
            while (page := [e for e in (await admin.request(Audit(since=_millis(entries), limit=1000))).entries
                            if e.id not in entries]):
                entries |= {e.id: e for e in page}
        assert largest[0] <= MAX_ANSWER_BYTES
    flagged = [e for e in entries.values() if e.action == "message_flagged"]
    assert len(flagged) == 45 and len(first) < len(entries)
    assert all(len(e.detail["words"]) == MAX_FOUND for e in flagged)


def _millis(entries: dict[int, AuditEntry]) -> int:
    """The time of the last entry, in milliseconds, to read on from (SPEC.md §5.16)."""
    return int(datetime.fromisoformat(entries[max(entries)].at).timestamp() * 1000)


def definition(name: str, label: int) -> dict[str, Any]:
    """A custom kind of 30 fields with labels of ``label`` characters."""
    return {"name": name, "title": WIDE * 200, "fallback": "{f00}", "fields": [
        {"name": f"f{i:02d}", "type": "text", "label": "标" * label} for i in range(30)
    ]}


LARGEST_LABEL = max(n for n in range(1, 201) if len(encode(definition("k" * 32, n))) <= MAX_DEFINITION_BYTES)


async def test_custom_kinds_are_limited_so_that_kinds_fits(server: Running) -> None:
    """50 custom kinds of 16 KiB each: ``kinds`` fits; a 51st kind and a larger definition are refused
    (SPEC.md §3.7, §6.2)."""
    actions = server.server.services.actions
    for i in range(MAX_CUSTOM_KINDS):
        await do_define_kind(actions, Actor.operator(), definition(f"k{i:02d}" + "k" * 29, LARGEST_LABEL))
    await do_define_kind(actions, Actor.operator(), definition("k00" + "k" * 29, LARGEST_LABEL))  # replaced
    await server.user("root", Role.ADMIN)
    async with login(server, "root") as admin:
        with largest_frame() as largest:
            assert len((await admin.request(Kinds())).custom) == MAX_CUSTOM_KINDS
        assert largest[0] <= MAX_ANSWER_BYTES
        one_more = await refused(admin.request(KindDefine(definition=definition("extra", 10))), "bad_request")
        too_large = await refused(admin.request(KindDefine(definition=definition("k01" + "k" * 29,
                                                                                  LARGEST_LABEL + 1))), "bad_request")
    assert (one_more.field, too_large.field) == ("definition.name", "definition")


async def test_a_profile_names_at_most_its_limit_of_family(server: Running) -> None:
    """A patient with 20 linked family accounts of the longest names: her profile fits; a 21st link is refused
    (SPEC.md §3.7, §5.13, §5.17)."""
    actions = server.server.services.actions
    dr = await server.user("dr", Role.STAFF)
    her = await server.user("pt_her", Role.PATIENT)
    family = [await server.user(f"fam_{i:02d}" + "f" * 58, Role.FAMILY, WIDE * MAX_NAME) for i in range(MAX_FAMILY)]
    for relative in family:
        await do_link_family(actions, Actor.operator(), her, relative, "other")
    await do_link_family(actions, Actor.operator(), her, family[0], "parent")  # a new relation, not a new link
    await Admin(server.store).add_groups([NewGroup("随访群", dr.id, [her.id])])
    one_more = await server.user("fam_more", Role.FAMILY)
    async with login(server, "dr") as client:
        conv = (await client.whole(Convs())).convs[0].conv
        with largest_frame() as largest:
            found = await client.request(Profile(conv=conv, member=her.ref))
        assert largest[0] <= MAX_ANSWER_BYTES
        error = await refused(client.request(FamilyLink(patient="pt_her", family="fam_more", relation="other")),
                              "bad_request")
    assert len(found.family) == MAX_FAMILY and error.field == "family" and one_more.id


async def test_quick_replies_filled_in_beyond_one_answer_are_refused(server: Running) -> None:
    """A lab-report template whose fill-ins make each filled report as large as a message may be: three fit in one
    answer, ten are refused (SPEC.md §3.7, §5.19)."""
    line = {"name": "{{?n}}", "value": "{{?v}}", "unit": "{{?u}}", "range": "{{?r}}"}
    fill = {"n": WIDE * 200, "v": WIDE * 60, "u": WIDE * 30, "r": WIDE * 60}
    lines = max(n for n in range(1, 201) if len(encode(
        {"title": "t", "collected": "2026-01-15", "values": [{k: fill[v[3]] for k, v in line.items()}] * n}
    )) + 20_000 <= MAX_CONTENT_BYTES)  # and the fallback: its first ten lines
    dr = await server.user("dr", Role.STAFF)
    her = await server.user("pt_her", Role.PATIENT)
    await Admin(server.store).add_groups([NewGroup("随访群", dr.id, [her.id])])
    async with login(server, "dr") as client:
        conv = (await client.whole(Convs())).convs[0].conv
        reply = await client.save_quick_reply("bg", "报告", kind="lab_report", body={
            "title": "t", "collected": "2026-01-15", "values": [line] * lines})
        with largest_frame() as largest:
            ready = (await client.request(QrRender(conv=conv, ids=[reply.id] * 3, fill=fill))).messages
        assert largest[0] <= MAX_ANSWER_BYTES and len(ready) == 3
        error = await refused(client.request(QrRender(conv=conv, ids=[reply.id] * 10, fill=fill)), "bad_request")
    assert error.field == "ids"


async def test_a_message_too_large_for_an_answer_is_refused(server: Running) -> None:
    """A fallback may repeat a field: a kind whose fallback names a long field 166 times would make a message of
    some 2 MB. Its body and text together are held to ``MAX_CONTENT_BYTES`` (SPEC.md §3.7, §6.1)."""
    await do_define_kind(server.server.services.actions, Actor.operator(), {
        "name": "echo", "title": "回声", "fallback": "{a}" * 166,
        "fields": [{"name": "a", "type": "long_text", "label": "内容"}],
    })
    dr = await server.user("dr", Role.STAFF)
    await Admin(server.store).add_groups([NewGroup("回声群", dr.id, [])])
    async with login(server, "dr") as client:
        conv = (await client.whole(Convs())).convs[0].conv
        await client.send(conv, kind="echo", body={"a": "回" * 100})
        error = await refused(client.send(conv, kind="echo", body={"a": "回" * 4000}), "bad_request")
    assert error.field == "body"


# -- the example of the issue --------------------------------------------------------------------

async def test_one_member_s_large_messages_never_break_another_s_sync(server: Running) -> None:
    """Issue 14 item 3: 70 lab reports of a frame each (some 4.5 MB) made another member's ``sync`` one frame her
    SDK refused, after every reconnect, and bots alike. Now one answer holds what fits and says ``more``: the
    conversation after it comes with no messages and ``more``; the SDK's ``sync`` and ``history`` and a bot's
    ``messages()`` get every message exactly once, in order; no frame passes ``MAX_ANSWER_BYTES`` (SPEC.md §3.7,
    §5.2, §5.2.1, §5.3)."""
    await server.user("his_bot", Role.BOT)
    await server.user("pt_her", Role.PATIENT)
    await server.user("ward_bot", Role.BOT)
    async with login(server, "his_bot") as his:
        group = (await his.request(GroupCreate(name="检验群", members=["pt_her", "ward_bot"]))).conv
        later = (await his.request(GroupCreate(name="随访群", members=["pt_her", "ward_bot"]))).conv
        for _ in range(70):
            await his.send(group, kind="lab_report", body=lab_report(LARGEST_REPORT))
        await his.send(later, "请按时复查")
    everything = {group: list(range(1, 71)), later: [1]}
    with largest_frame() as largest:
        async with login(server, "pt_her") as client:
            first = {e.conv: e for e in (await client.request(Sync())).convs}
            synced = {e.conv: [m.seq for m in e.messages] for e in await client.sync()}
            latest = await client.request(History(conv=group, limit=200))
            back, more = await client.history(group, limit=200)
            forth, _ = await client.history(group, after=0, limit=200)
        async with login(server, "ward_bot") as bot:
            seen = [(m.conv, m.seq) for m in await take(bot, 71, seconds=30)]
    assert largest[0] <= MAX_ANSWER_BYTES
    shown = [m.seq for m in first[group].messages]
    assert first[group].more and shown == list(range(1, len(shown) + 1)) and 0 < len(shown) < 70
    assert first[later].messages == [] and first[later].more
    assert synced == everything
    newest = [m.seq for m in latest.messages]
    assert latest.more and newest == list(range(71 - len(newest), 71)) and len(newest) < 70
    assert [m.seq for m in back] == [m.seq for m in forth] == everything[group] and not more
    assert sorted(seen) == sorted((conv, seq) for conv, seqs in everything.items() for seq in seqs)
    assert len(seen) == len(set(seen))


FILLED = {"sync", "convs", "members", "friend_requests", "words_list", "teams", "qr_list"}
"""The paged answers filled on a real server in this module."""
