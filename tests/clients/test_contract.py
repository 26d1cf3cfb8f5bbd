"""The server against the contract, exactly: every op and every push, straight off the wire (SPEC.md §3–§6).

The SDK decodes every answer and push with the structs of ``protocol.frames``,
so every integration test checks the server's frames against their types. A
struct ignores fields it does not declare and fills in fields left out, though;
here every frame a real server sends in a scene that uses every op and causes
every push is compared with its struct encoded again (``protocol.mismatch``):
no field the contract lacks, no default sent explicitly, no nil for an absent
field.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from clients.python import Client, ClientError
from clients.python.websocket import ClientWebSocket
from imserver.model import Role
from protocol import decode_answer, decode_frame, decode_push, mismatch, peek
from protocol.frames import (
    ANSWER_TYPES,
    OPS,
    PUSH_OPS,
    Audit,
    Bye,
    Convs,
    FactsSet,
    FamilyInvite,
    FamilyLink,
    FriendRequest,
    FriendRequests,
    FriendRespond,
    GroupAdd,
    GroupBan,
    GroupRemove,
    GroupSet,
    GroupUnban,
    History,
    Isolate,
    KindDefine,
    Kinds,
    Logout,
    Members,
    Ping,
    Profile,
    QrDelete,
    QrList,
    QrRender,
    Receipt,
    TeamAdd,
    TeamCreate,
    TeamRemove,
    Teams,
    Unisolate,
    UserBan,
    UserUnban,
    WordsList,
    WordsRemove,
    WordsSet,
)
from tests.conftest import Running
from tests.imserver.test_attachments import SAMPLES
from tests.imserver.test_rules_support import PEOPLE, Ward, login, open_ward

A, B = PEOPLE["patient"].username, PEOPLE["other"].username


@dataclass
class Wire:
    """What each client WebSocket sent (the op of each rid) and received (the raw frames)."""

    sent: dict[tuple[ClientWebSocket, int], str] = field(default_factory=dict)
    received: list[tuple[ClientWebSocket, bytes]] = field(default_factory=list)

    def check(self) -> tuple[set[str], set[str]]:
        """Every frame received against its struct; the ops answered ``ok`` and the pushes seen."""
        answered, pushed = set(), set()
        for ws, data in self.received:
            op, rid = peek(data)
            if op == "ok":
                answers = self.sent[(ws, rid or 0)]
                frame: Any = decode_answer(data, ANSWER_TYPES[answers])
                answered.add(answers)
            elif op == "error":
                frame = decode_answer(data, dict)
            else:
                frame = decode_push(data)
                assert frame is not None, f"a push this version does not know: {decode_frame(data)}"
                pushed.add(op)
            assert mismatch(data, frame) is None, f"{mismatch(data, frame)} in {decode_frame(data)}"
        return answered, pushed


@contextmanager
def wiretap() -> Iterator[Wire]:
    wire = Wire()
    send, receive = ClientWebSocket.send_message, ClientWebSocket.receive_message

    async def sending(self: ClientWebSocket, payload: bytes) -> None:
        op, rid = peek(payload)
        wire.sent[(self, rid or 0)] = op
        await send(self, payload)

    async def receiving(self: ClientWebSocket) -> bytes:
        data = await receive(self)
        wire.received.append((self, data))
        return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClientWebSocket, "send_message", sending)
        patch.setattr(ClientWebSocket, "receive_message", receiving)
        yield wire


async def member_id(client: Client, conv: str, username: str, role: str = "patient") -> str:
    """How ``client`` is shown ``username`` in ``conv``: by username if real, else the one masked member of ``role``
    that is not the caller."""
    members = (await client.request(Members(conv=conv))).members
    me = client.welcome.user.id
    shown = [m.id for m in members if m.username == username]
    return shown[0] if shown else next(m.id for m in members if m.role == role and m.id.startswith("a") and m.id != me)


async def test_every_answer_and_push_is_described_exactly_by_the_contract(server: Running) -> None:
    await server.user("pt_cora", Role.PATIENT, "周可人")
    await server.user("fam_mum", Role.FAMILY, "张妈妈")
    with wiretap() as wire:
        async with open_ward(server) as w, login(server, "pt_cora") as cora:
            await scene(server, w, cora)
        answered, pushed = wire.check()
    assert answered == OPS, f"ops never answered ok: {sorted(OPS - answered)}"
    assert pushed == PUSH_OPS, f"pushes never seen: {sorted(PUSH_OPS - pushed)}"


async def scene(server: Running, w: Ward, cora: Client) -> None:
    """Every op answered ``ok`` at least once, and every push caused."""
    owner, staff, a, b, admin = w["owner"], w["staff"], w["patient"], w["other"], w["admin"]
    await owner.request(GroupAdd(conv=w.group, user="pt_cora"))
    # Early: the server's cache briefly forgets a link while it handles the link's own bus event.
    await owner.request(FamilyLink(patient=A, family="fam_mum", relation="parent"))
    await owner.request(Ping())

    # Messages, pages, read markers and receipts (SPEC.md §5.1–§5.5); the words filter's flag (§11.5).
    await admin.request(WordsSet(word="微信", policy="flag"))
    await admin.request(WordsSet(word="代孕", policy="block"))
    await admin.request(WordsList())
    await a.send(w.group, "加个微信吧")  # msg to the others, flag to the staff
    with pytest.raises(ClientError, match="sensitive_words"):
        await a.send(w.group, "代孕")  # hidden to everyone but the staff
    await admin.request(WordsRemove(word="代孕"))
    await owner.send(w.group, "只给张女士", only=await member_id(owner, w.group, A))
    await owner.send(f"u:{A}", "张女士您好")
    async with login(server, "bot") as bot:
        await bot.send(f"u:{A}", "您的检查已预约")  # her service conversation (SPEC.md §5.5)
    async with login(server, "patient") as a_again:  # the read push goes to her other connection
        direct = (await a_again.request(History(conv=f"u:{PEOPLE['owner'].username}"))).conv
        await a_again.read(direct, 1)
        await a_again.sync()
    await owner.request(Receipt(conv=direct))
    assert any(c.service for c in (await a.request(Convs())).convs)

    # Groups, isolation, bans (SPEC.md §5.6, §5.9–§5.12).
    await owner.request(GroupSet(conv=w.group, allow_friends=True))
    request = (await b.request(FriendRequest(conv=w.group, member=await member_id(b, w.group, A)))).request
    await a.request(FriendRequests())
    await a.request(FriendRespond(request=request, accept=True))
    refused = (await cora.request(FriendRequest(conv=w.group, member=await member_id(cora, w.group, A)))).request
    await a.request(FriendRespond(request=refused, accept=False))
    await b.send(w.group, "谢谢大家")
    await owner.request(Isolate(conv=w.group, member=await member_id(owner, w.group, B)))  # retracts it
    await owner.request(Unisolate(conv=w.group, member=await member_id(owner, w.group, B)))
    await admin.request(GroupBan(conv=w.group))
    await admin.request(GroupUnban(conv=w.group))
    await a.request(FamilyInvite(conv=w.group, family="fam_mum"))
    await owner.request(GroupRemove(conv=w.group, user="fam_mum"))
    await owner.request(Profile(conv=w.group, member=await member_id(owner, w.group, A)))
    await admin.request(Audit(limit=5))
    await admin.request(UserBan(user="pt_cora"))  # her connection gets bye
    await admin.request(UserUnban(user="pt_cora"))

    # Kinds, files, care teams, quick replies and facts (SPEC.md §5.18–§5.20, §6.2).
    await a.request(Kinds())
    await admin.request(KindDefine(definition={
        "name": "pregnancy_check", "title": "验孕结果", "fallback": "【验孕】{result}",
        "fields": [{"name": "result", "type": "choice", "label": "结果", "choices": ["阳性", "阴性"]}],
    }))
    await a.request(Kinds())
    attachment = await a.upload(SAMPLES["image/png"] + bytes(70_000), "image/png", "B超.png")
    await a.download(attachment.id)
    await admin.request(TeamCreate(name="移植一组"))
    await admin.request(TeamAdd(team="移植一组", user=PEOPLE["staff"].username))
    await admin.request(TeamAdd(team="移植一组", user=PEOPLE["owner"].username))
    await admin.request(TeamRemove(team="移植一组", user=PEOPLE["owner"].username))
    await staff.request(Teams())
    await staff.set_fact(A, "next_visit", "12月3日")
    await staff.request(FactsSet(user=A, key="next_visit", value=None))
    saved = await staff.save_quick_reply("yz", "移植后", "{{patient}}您好，{{?体重}}", scope="team", team="移植一组")
    await staff.save_quick_reply("tz", "通知", kind="notice", body={"title": "复诊", "content": "{{me}}提醒您"})
    await staff.request(QrList())
    await staff.quick_replies("")
    await staff.request(QrRender(conv=w.group, ids=[saved.id], member=await member_id(staff, w.group, A),
                                 fill={"体重": "60kg"}))
    await staff.request(QrDelete(id=saved.id))

    # Leaving: a removed member's conv push, and logout's bye to the session's other connection (§5.8).
    await owner.request(GroupRemove(conv=w.group, user=B))
    async with login(server, "patient", token=a.token) as same_session:
        await same_session.request(Logout())
    with trio.fail_after(5):
        async for event in a.events():
            if isinstance(event, Bye):
                break
