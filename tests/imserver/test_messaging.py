"""Send, live delivery, sync, history and read markers over real sockets and a real Postgres (IM-19)."""

from __future__ import annotations

import pytest
import trio

from clients.python import Client, ClientError, open_client
from imserver.model import Role
from imserver.store import conversations
from protocol.frames import ReadPush
from tests.conftest import PASSWORD, Running
from tests.helpers import next_push, take


async def test_group_message_reaches_every_member_and_device_in_order(server: Running) -> None:
    await server.user("dr_wang", Role.STAFF, "王医生")
    for name in ("alice", "bob"):
        await server.user(name)
    async with (
        open_client(server.url, username="dr_wang", password=PASSWORD) as doctor,
        open_client(server.url, username="alice", password=PASSWORD, device="phone") as alice_phone,
        open_client(server.url, username="alice", password=PASSWORD, device="pad") as alice_pad,
        open_client(server.url, username="bob", password=PASSWORD) as bob,
    ):
        group = (await doctor.request("group_create", name="移植群", members=["alice", "bob"]))["conv"]
        acks = [await doctor.send(group, f"第{i}条") for i in range(20)]
        assert [a.seq for a in acks] == list(range(1, 21))
        for receiver in (alice_phone, alice_pad, bob):
            got = await take(receiver, 20)
            assert [m.seq for m in got] == list(range(1, 21))
            assert [m.text for m in got] == [f"第{i}条" for i in range(20)]
            assert got[0].sender.name == "王医生"


async def test_resend_with_same_client_id_is_not_duplicated(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g"))["conv"]
        first = await doctor.send(group, "hello", cid="c-1")
        again = await doctor.send(group, "hello", cid="c-1")
        assert again.dup is True and first.dup is False
        assert (again.seq, again.id) == (first.seq, first.id)
        page, _ = await doctor.history(group)
        assert [m.text for m in page] == ["hello"]


async def test_a_client_id_reused_with_other_content_is_refused(server: Running) -> None:
    """Issue 14 item 6, SPEC.md §5.1: a cid stands for one request, as an idempotency key does at a payment API.
    The same cid with another text, kind, body or ``only`` is refused with ``cid_reused`` and stores nothing;
    the same content with a body's keys in another order is a resend."""
    await server.user("dr", Role.STAFF)
    alice_id = (await server.user("alice")).ref  # staff see patients by their own ids
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["alice"]))["conv"]
        notice = {"title": "取卵前须知", "content": "前一晚十点后禁食，带身份证"}
        sent = {
            "t": await doctor.send(group, "术前须知", cid="t"),
            "n": await doctor.send(group, kind="notice", body=notice, cid="n"),
            "o": await doctor.send(group, "只给你看", cid="o", only=alice_id),
        }
        others: list[tuple[str, dict[str, object]]] = [
            ("t", {"text": "术前须知 "}), ("t", {"kind": "notice", "body": notice}),
            ("n", {"kind": "notice", "body": {**notice, "content": "前一晚八点后禁食"}}),
            ("n", {"text": "术前须知"}), ("o", {"text": "只给你看"}), ("t", {"text": "术前须知", "only": alice_id}),
        ]
        for cid, fields in others:
            with pytest.raises(ClientError) as refused:
                await doctor.send(group, cid=cid, **fields)  # type: ignore[arg-type]
            assert (refused.value.code, refused.value.field) == ("cid_reused", "cid"), (cid, fields)
        reordered = dict(reversed(list(notice.items())))
        again = await doctor.send(group, kind="notice", body=reordered, cid="n")
        assert (again.seq, again.dup) == (sent["n"].seq, True)
        page, _ = await doctor.history(group)
        assert [m.seq for m in page] == [1, 2, 3]


async def test_a_client_id_reused_while_its_message_is_in_flight_is_refused(server: Running) -> None:
    """The writer joins a resend to its in-flight original (DESIGN rule 2); other content under the same cid must
    not ride along and be acked as the original."""
    await server.user("dr", Role.STAFF)
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g"))["conv"]
        outcomes: dict[str, object] = {}
        for round_ in range(20):
            outcomes.clear()
            cid = f"same-{round_}"
            async with trio.open_nursery() as nursery:
                for text in ("甲", "乙"):
                    nursery.start_soon(_send_raw, doctor, group, cid, text, outcomes)
            assert sorted(v if isinstance(v, str) else "ok" for v in outcomes.values()) == ["cid_reused", "ok"]
        page, _ = await doctor.history(group, limit=100)
        assert len(page) == 20


async def _send_raw(client: Client, conv: str, cid: str, text: str, outcomes: dict[str, object]) -> None:
    try:
        outcomes[text] = await client.request("send", conv=conv, cid=cid, text=text)
    except ClientError as exc:
        outcomes[text] = exc.code


async def test_a_client_id_names_one_message_in_one_conversation(server: Running) -> None:
    """SPEC.md §5.1, DESIGN rule 2: a resend to the same conversation gets the original answer; the same cid sent
    to another conversation is refused, never acked as a message that is not there."""
    await server.user("dr", Role.STAFF)
    await server.user("nurse", Role.STAFF)
    await server.user("alice")
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["alice"]))["conv"]
        first = await doctor.send(group, "术前须知", cid="c-1")
        for conv in ("u:alice", "u:nurse", "u:alice"):  # a new direct chat, and one the first attempt opened
            with pytest.raises(ClientError) as refused:
                await doctor.send(conv, "别的话", cid="c-1")
            assert (refused.value.code, refused.value.field) == ("cid_reused", "cid"), conv
        again = await doctor.send(group, "术前须知", cid="c-1")
        assert (again.conv, again.seq, again.id, again.dup) == (first.conv, first.seq, first.id, True)
        await doctor.request("group_set", conv=group, muted=True)  # a rule that came later: the first answer wins
        await doctor.request("group_remove", conv=group, user="dr")
        resent = await doctor.send(group, "术前须知", cid="c-1")
        assert (resent.conv, resent.seq, resent.dup) == (first.conv, first.seq, True)
        for peer in ("u:alice", "u:nurse"):
            page, _ = await doctor.history(peer)
            assert page == [], peer


async def test_only_the_senders_own_devices_see_a_client_id(server: Running) -> None:
    """SPEC.md §5.1, §6: the cid matches a device's outbox; it is not shown to anyone else (it could carry text)."""
    await server.user("dr", Role.STAFF)
    await server.user("alice")
    async with (
        open_client(server.url, username="dr", password=PASSWORD, device="pc") as pc,
        open_client(server.url, username="dr", password=PASSWORD, device="phone") as phone,
        open_client(server.url, username="alice", password=PASSWORD) as alice,
    ):
        group = (await pc.request("group_create", name="g", members=["alice"]))["conv"]
        await pc.send(group, "你好", cid="加我微信abc")
        (mine,) = await take(phone, 1)
        (hers,) = await take(alice, 1)
        assert (mine.cid, hers.cid) == ("加我微信abc", None)
        assert [m.cid for m in (await phone.history(group))[0]] == ["加我微信abc"]
        assert [m.cid for m in (await alice.history(group))[0]] == [None]


async def test_read_only_session_cannot_send(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    await server.user("mini")
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["mini"]))["conv"]
        await doctor.send(group, "visible")
        async with open_client(server.url, username="mini", password=PASSWORD, readonly=True) as mini:
            page, _ = await mini.history(group)
            assert [m.text for m in page] == ["visible"]
            try:
                await mini.send(group, "nope")
            except ClientError as exc:
                assert exc.code == "read_only"
            else:
                raise AssertionError("read-only session sent a message")


async def test_a_read_only_session_opens_no_direct_chat(server: Running) -> None:
    """IM-17, SPEC.md §4.4: reading through ``u:`` in the mini-program creates no conversation for anyone."""
    dr = await server.user("dr", Role.STAFF)
    nurse = await server.user("nurse", Role.STAFF)
    async with open_client(server.url, username="nurse", password=PASSWORD, readonly=True) as mini:
        reads = [
            ("history", {"conv": "u:dr"}), ("sync", {"after": {"u:dr": 0}}), ("members", {"conv": "u:dr"}),
            ("read", {"conv": "u:dr", "seq": 1}), ("receipt", {"conv": "u:dr"}),
        ]
        for op, fields in reads:
            with pytest.raises(ClientError) as refused:
                await mini.request(op, **fields)
            assert (refused.value.code, refused.value.field) == ("not_found", "conv"), op
        assert await conversations.direct_conv_id(server.store, dr.id, nurse.id) is None
        async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
            sent = await doctor.send("u:nurse", "明天的排班")
        page, _ = await mini.history("u:dr")
        assert [(m.conv, m.text) for m in page] == [(sent.conv, "明天的排班")]


async def test_offline_user_syncs_exactly_what_she_missed(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    await server.user("alice")
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["alice"]))["conv"]
        await doctor.send(group, "before")
        async with open_client(server.url, username="alice", password=PASSWORD) as alice:
            seen = await take(alice, 1)
            assert [m.text for m in seen] == ["before"]
            positions = dict(alice.positions)
        for i in range(7):  # alice is offline
            await doctor.send(group, f"missed {i}")
        direct = await doctor.send("u:alice", "private")
        async with open_client(server.url, username="alice", password=PASSWORD) as alice:
            alice.positions = positions
            got = await take(alice, 8)
        assert [m.text for m in got if m.conv == group] == [f"missed {i}" for i in range(7)]
        assert [(m.conv, m.seq, m.text) for m in got if m.conv != group] == [(direct.conv, 1, "private")]


async def test_sync_pages_with_more_and_sdk_follows_it(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g"))["conv"]
        for i in range(25):
            await doctor.send(group, str(i))
        first = await doctor.request("sync", after={group: 0}, limit=10)
        (entry,) = first["convs"]
        assert [m["seq"] for m in entry["messages"]] == list(range(1, 11)) and entry["more"] is True
        assert entry["last_seq"] == 25
        (merged,) = await doctor.sync({group: 3}, limit=10)
        assert [m.seq for m in merged.messages] == list(range(4, 26))


async def test_history_pages_backwards_and_forwards(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g"))["conv"]
        for i in range(1, 31):
            await doctor.send(group, str(i))
        latest, more = await doctor.history(group, limit=10)
        assert [m.seq for m in latest] == list(range(21, 31)) and more
        older, more = await doctor.history(group, before=latest[0].seq, limit=10)
        assert [m.seq for m in older] == list(range(11, 21)) and more
        oldest, more = await doctor.history(group, before=older[0].seq, limit=10)
        assert [m.seq for m in oldest] == list(range(1, 11)) and not more
        forward, more = await doctor.history(group, after=25, limit=10)
        assert [m.seq for m in forward] == list(range(26, 31)) and not more


async def test_read_marker_moves_forward_only_and_counts_unread(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    await server.user("alice")
    async with (
        open_client(server.url, username="dr", password=PASSWORD) as doctor,
        open_client(server.url, username="alice", password=PASSWORD, device="phone") as phone,
        open_client(server.url, username="alice", password=PASSWORD, device="pad") as pad,
    ):
        group = (await doctor.request("group_create", name="g", members=["alice"]))["conv"]
        for i in range(5):
            await doctor.send(group, str(i))
        await phone.send(group, "mine")  # her own message never counts as unread
        (summary,) = (await phone.request("convs"))["convs"]
        assert (summary["last_seq"], summary["read_seq"], summary["unread"]) == (6, 0, 5)
        assert (await phone.request("read", conv=group, seq=3)) | {"rid": 0} == {
            "op": "ok", "rid": 0, "conv": group, "read_seq": 3, "unread": 2
        }
        assert (await phone.read(group, 1)).read_seq == 3  # never moves back
        assert (await phone.read(group, 99)).read_seq == 6  # clipped to the last seq
        with trio.fail_after(5):
            async for event in pad.events():
                if isinstance(event, ReadPush) and event.read_seq == 6:
                    assert event.unread == 0
                    break


async def test_membership_changes_are_pushed_and_removal_stops_delivery(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    await server.user("alice")
    await server.user("bob")
    async with (
        open_client(server.url, username="dr", password=PASSWORD) as doctor,
        open_client(server.url, username="alice", password=PASSWORD) as alice,
    ):
        group = (await doctor.request("group_create", name="移植群"))["conv"]
        await doctor.request("group_add", conv=group, user="alice")
        assert await next_push(alice, "conv") == {"op": "conv", "conv": group, "event": "joined", "name": "移植群"}
        await doctor.send(group, "for alice")
        assert (await next_push(alice, "msg"))["msg"]["text"] == "for alice"
        await doctor.request("group_remove", conv=group, user="alice")
        assert (await next_push(alice, "conv"))["event"] == "left"
        await doctor.send(group, "not for alice")
        try:
            await alice.history(group)
        except ClientError as exc:
            assert exc.code == "forbidden"
        else:
            raise AssertionError("a removed member read the group")
        with trio.move_on_after(0.3):
            frame = await next_push(alice, "msg")
            raise AssertionError(f"a removed member received {frame}")


async def test_group_roles_are_enforced(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    await server.user("nurse", Role.STAFF)
    await server.user("alice")
    async with (
        open_client(server.url, username="dr", password=PASSWORD) as doctor,
        open_client(server.url, username="nurse", password=PASSWORD) as nurse,
        open_client(server.url, username="alice", password=PASSWORD) as alice,
    ):
        group = (await doctor.request("group_create", name="g", members=["nurse"]))["conv"]
        for caller in (nurse, alice):
            try:
                await caller.request("group_add", conv=group, user="alice")
            except ClientError as exc:
                assert exc.code in {"forbidden"}
            else:
                raise AssertionError("a plain member added someone")
        await doctor.request("group_add", conv=group, user="nurse", role="admin")
        await nurse.request("group_add", conv=group, user="alice")
        members = (await alice.request("members", conv=group))["members"]
        assert {(m["username"], m["member_role"]) for m in members} == {
            ("dr", "owner"), ("nurse", "admin"), ("alice", "member")
        }
        await alice.request("group_remove", conv=group, user="alice")  # anyone may leave


async def test_messages_of_members_who_left_keep_their_sender(server: Running) -> None:
    """After a restart the cache is cold: a departed member's messages still show who sent them."""
    await server.user("dr", Role.STAFF, "王医生")
    await server.user("nurse", Role.STAFF, "李护士")
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["nurse"]))["conv"]
        async with open_client(server.url, username="nurse", password=PASSWORD) as nurse:
            await nurse.send(group, "交班了")
            await nurse.request("group_remove", conv=group, user="nurse")
        server.server.directory.forget()
        page, _ = await doctor.history(group)
    assert [(m.sender.id, m.sender.name) for m in page] == [(page[0].sender.id, "李护士")]
    assert page[0].sender.id != "u0"
