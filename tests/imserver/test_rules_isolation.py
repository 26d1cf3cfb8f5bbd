"""Isolation (IM-12, IM-13): an isolated member's messages, past and future, reach only herself and the group's
owners and admins; she is not told; after the lift, what she sent before stays hidden and new messages reach all."""

from __future__ import annotations

import pytest
import trio

from clients.python import Client, ClientError, open_client
from imserver.model import Role
from imserver.visibility import hidden_ranges
from tests.conftest import PASSWORD, Running
from tests.helpers import as_frame
from tests.imserver.test_rules_support import PEOPLE, drain, login, open_ward, recording, refused

SEES_ISOLATED = {"patient": True, "pad": True, "other": False, "family": False, "staff": False, "owner": True}
"""Who sees what A sends while isolated: she herself (on every device) and the owner; not B, her husband or the
nurse (a plain member, though staff)."""
OTHERS = [k for k, sees in SEES_ISOLATED.items() if not sees]


async def live(client: Client, conv: str, seqs: list[int]) -> dict[int, str]:
    """How each of these seqs reached ``client``: "msg" or "hidden"."""
    found: dict[int, str] = {}
    with trio.fail_after(5):
        async for event in client.events():
            frame = as_frame(event)
            if frame["op"] == "msg" and frame["msg"]["conv"] == conv:
                found[frame["msg"]["seq"]] = "msg"
            elif frame["op"] == "hidden" and frame["conv"] == conv and not frame.get("retract"):
                found |= {s: "hidden" for first, last in frame["ranges"] for s in range(first, last + 1)}
            if set(seqs) <= set(found):
                return {s: found[s] for s in seqs}
    raise AssertionError("events ended")


async def page(client: Client, conv: str) -> tuple[list[int], list[tuple[int, int]]]:
    history = await client.request("history", conv=conv)
    (synced,) = [c for c in (await client.request("sync"))["convs"] if c["conv"] == conv]
    assert (synced["messages"], synced["hidden"]) == (history["messages"], history["hidden"])
    return [m["seq"] for m in history["messages"]], [(first, last) for first, last in history["hidden"]]


async def test_isolation_retracts_hides_and_is_lifted_from_every_kinds_view(server: Running) -> None:
    with recording() as wire:
        async with open_ward(server) as w, login(server, "patient", device="pad") as pad:
            w.clients["pad"] = pad
            a, group = w["patient"], w.group
            m1, m2 = [(await a.send(group, text)).seq for text in ("第一条", "第二条")]
            m3 = (await w["other"].send(group, "B 的消息")).seq
            for client in w.clients.values():
                await drain(client)

            # Isolate A: the others are told to take back what she sent; A and the owner are told nothing.
            answer = await w["owner"].request("isolate", conv=group, member=w.ref("patient"))
            assert answer | {"rid": 0} == {"op": "ok", "rid": 0, "conv": group, "member": w.ref("patient"),
                                           "isolated": True}
            retract = {"op": "hidden", "conv": group, "ranges": [[m1, m2]], "retract": True}
            for kind in SEES_ISOLATED:  # nothing else: no group push, which would tell A something happened
                seen = await drain(w[kind], 0.5 if kind == "patient" else 0.05)
                assert seen == ([retract] if kind in OTHERS else []), (kind, seen)

            # While isolated: her sends are acked as always; only she and the owner see them.
            ack = await a.request("send", conv=group, cid="c-m4", text="隔离中发的")
            assert set(ack) == {"op", "rid", "conv", "seq", "id", "ts", "dup"} and ack["dup"] is False
            m4 = ack["seq"]
            m5 = (await w["owner"].send(group, "医生的回复")).seq
            for kind, sees in SEES_ISOLATED.items():
                expect = {m4: "msg" if sees else "hidden", m5: "msg"}
                if kind == "patient":
                    del expect[m4]  # her own connection gets the ack
                if kind == "owner":
                    del expect[m5]
                assert await live(w[kind], group, list(expect)) == expect, kind
            for kind, sees in SEES_ISOLATED.items():
                hidden = [] if sees else [m1, m2, m4]
                assert await page(w[kind], group) == (
                    [s for s in (m1, m2, m3, m4, m5) if s not in hidden], hidden_ranges(hidden)
                ), kind
            # Even the member she names in a mention-only message does not see it (SPEC.md §11.2).
            nurse_only = (await a.send(group, "护士长，只给您看", only=w.ref("staff"))).seq
            for kind in SEES_ISOLATED:
                if kind != "patient":
                    expect = "msg" if SEES_ISOLATED[kind] else "hidden"
                    assert await live(w[kind], group, [nurse_only]) == {nurse_only: expect}, kind

            # Lift: what she sent before stays hidden from the others; new messages reach everyone.
            await w["owner"].request("unisolate", conv=group, member=w.ref("patient"))
            for kind in SEES_ISOLATED:  # the lift is not announced either
                assert await drain(w[kind], 0.3 if kind == "patient" else 0.05) == [], kind
            m6 = (await a.send(group, "解除后发的")).seq
            for kind in SEES_ISOLATED:
                if kind != "patient":
                    assert await live(w[kind], group, [m6]) == {m6: "msg"}, kind
                hidden = [] if SEES_ISOLATED[kind] else [m1, m2, m4, nurse_only]
                assert await page(w[kind], group) == (
                    [s for s in (m1, m2, m3, m4, m5, nurse_only, m6) if s not in hidden], hidden_ranges(hidden)
                ), kind
            (summary,) = [c for c in (await w["other"].request("convs"))["convs"] if c["conv"] == group]
            assert summary["unread"] == 2  # m5 and m6: the rest is hidden from her, or her own (m3)

            # A was never told: nothing she received mentions isolation or retracts anything.
            for client in (a, pad):
                frames = wire.frames(client)
                assert not [f for f in frames if f["op"] == "hidden"]
                assert not any("isolat" in repr(f) for f in frames)


async def test_who_may_isolate_whom(server: Running) -> None:
    async with open_ward(server, online=("owner", "staff", "patient", "other", "admin")) as w:
        group = w.group
        # Lifting an isolation that was never there changes nothing: what she sent stays visible.
        seq = (await w["other"].send(group, "我从未被隔离")).seq
        await w["owner"].request("unisolate", conv=group, member=w.ref("other"))
        assert await page(w["patient"], group) == ([seq], [])
        for kind in ("patient", "other", "staff"):  # plain members, staff included, may not isolate
            await refused(w[kind].request("isolate", conv=group, member=w.ref("family")), "forbidden")
        error = await refused(w["owner"].request("isolate", conv=group, member=w.ref("owner")), "bad_request")
        assert error.field == "member"
        await w["owner"].request("group_add", conv=group, user=PEOPLE["staff"].username, role="admin")
        await refused(w["owner"].request("isolate", conv=group, member=w.ref("staff")), "bad_request")
        await refused(w["admin"].request("isolate", conv=group, member=w.ref("owner")), "bad_request")
        await refused(w["staff"].request("isolate", conv=group, member=w.ref("owner")), "bad_request")
        await refused(w["owner"].request("isolate", conv=group, member=w.ref("admin")), "not_found")  # not a member
        # A patient made admin of the group isolates by the pseudonym she sees; an admin account by the real id.
        await w["owner"].request("group_add", conv=group, user=PEOPLE["other"].username, role="admin")
        members = (await w["other"].request("members", conv=group))["members"]
        (alias,) = [m["id"] for m in members if m["role"] == "patient" and m["id"] != w.ref("other")]
        await w["other"].request("isolate", conv=group, member=alias)
        await w["admin"].request("unisolate", conv=group, member=w.ref("patient"))
        await w["admin"].request("isolate", conv=group, member=w.ref("family"))
        await w["owner"].request("group_set", conv=group, family_can_speak=True)
        async with login(server, "family") as f:
            seq = (await f.send(group, "我是家属")).seq
        # The managers (now the nurse and B too) see the isolated husband's message; his wife does not.
        for kind, sees in (("owner", True), ("staff", True), ("other", True), ("patient", False)):
            shown, _ = await page(w[kind], group)
            assert (seq in shown) is sees, kind


async def test_a_member_promoted_while_isolated_can_still_be_lifted(server: Running) -> None:
    """Owners and admins cannot be isolated, but an isolation set before a promotion can be lifted (IM-13)."""
    await server.user("lift_owner", Role.STAFF)
    await server.user("lift_nurse", Role.STAFF)
    async with open_client(server.url, username="lift_owner", password=PASSWORD) as owner:
        group = (await owner.request("group_create", name="g", members=["lift_nurse"]))["conv"]
        nurse = next(m["id"] for m in (await owner.request("members", conv=group))["members"]
                     if m.get("username") == "lift_nurse")
        await owner.request("isolate", conv=group, member=nurse)
        await owner.request("group_add", conv=group, user="lift_nurse", role="admin")
        lifted = await owner.request("unisolate", conv=group, member=nurse)
        assert lifted["isolated"] is False
        with pytest.raises(ClientError) as again:
            await owner.request("isolate", conv=group, member=nurse)
        assert again.value.code == "bad_request"
