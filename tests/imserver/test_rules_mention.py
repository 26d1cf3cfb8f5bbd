"""Mention-only messages (IM-10): the sender, the target and the group's owners and admins see them; nobody else,
live or in history or sync, and they count as unread only for those who may see them."""

from __future__ import annotations

from typing import Any

import trio

from clients.python import Client
from imserver.visibility import hidden_ranges
from tests.conftest import Running
from tests.helpers import as_frame, take
from tests.imserver.test_rules_support import PEOPLE, Ward, login, open_ward, refused

SEES = {
    # viewer:        (the nurse's message only for A, A's message only for the nurse)
    "patient": (True, True),  # A: the target, the sender
    "pad": (True, True),  # A's second device
    "other": (False, False),  # B
    "family": (False, False),  # F, A's husband: being her family does not make him a target
    "staff": (True, True),  # the nurse: the sender, the target
    "owner": (True, True),  # the group's owner
    "group_admin": (True, True),  # an admin of the group (an admin account given the group's admin role)
}
SENDERS = {"to_a": "staff", "to_nurse": "patient", "public": "owner"}


async def member_ref(w: Ward, viewer: str, subject: str) -> str:
    """``subject``'s id as ``viewer`` finds it in the member list."""
    members = (await w[viewer].request("members", conv=w.group))["members"]
    (entry,) = [m for m in members if m.get("username") == PEOPLE[subject].username]
    return str(entry["id"])


def shown_for_real(w: Ward, kind: str) -> dict[str, Any]:
    person = PEOPLE[kind]
    return {"id": w.ref(kind), "name": person.name, "role": str(person.role)} | (
        {"title": person.title} if person.title else {}
    )


async def live(client: Client, conv: str, count: int) -> dict[int, dict[str, Any]]:
    """The next ``count`` msg or hidden pushes for ``conv``, by seq."""
    found: dict[int, dict[str, Any]] = {}
    with trio.fail_after(5):
        async for event in client.events():
            frame = as_frame(event)
            if frame["op"] == "msg" and frame["msg"]["conv"] == conv:
                found[frame["msg"]["seq"]] = frame
            elif frame["op"] == "hidden" and frame["conv"] == conv:
                assert not frame.get("retract")
                for first, last in frame["ranges"]:
                    found |= {seq: frame for seq in range(first, last + 1)}
            if len(found) >= count:
                return found
    raise AssertionError("events ended")


async def test_mention_only_reaches_sender_target_and_managers_only(server: Running) -> None:
    async with open_ward(server) as w, login(server, "patient", device="pad") as pad:
        w.clients["pad"] = pad
        await w["owner"].request("group_add", conv=w.group, user=PEOPLE["admin"].username, role="admin")
        w.clients["group_admin"] = w["admin"]
        target = await member_ref(w, "staff", "patient")
        assert target == w.ref("patient"), "staff find A by her real id"
        to_a = await w["staff"].send(w.group, "张女士，您的化验结果已出", only=target)
        nurse = await member_ref(w, "patient", "staff")
        to_nurse = await w["patient"].send(w.group, "护士长，我有点担心", only=nurse)
        public = await w["owner"].send(w.group, "大家好")
        seq = {"to_a": to_a.seq, "to_nurse": to_nurse.seq, "public": public.seq}
        only = {"to_a": shown_for_real(w, "patient"), "to_nurse": shown_for_real(w, "staff"), "public": None}

        def visible(viewer: str, key: str) -> bool:
            return key == "public" or SEES[viewer][0 if key == "to_a" else 1]

        for viewer, client in w.clients.items():
            if viewer == "admin":
                continue
            # Live: a msg push for what it may see, a hidden push for the rest; no push to the sending connection.
            pushed = [k for k in seq if SENDERS[k] != viewer]
            got = await live(client, w.group, len(pushed))
            for key in pushed:
                frame = got[seq[key]]
                assert frame["op"] == ("msg" if visible(viewer, key) else "hidden"), (viewer, key, frame)
                if frame["op"] == "hidden":
                    assert frame == {"op": "hidden", "conv": w.group, "ranges": [[seq[key], seq[key]]]}
                elif only[key] is not None:
                    assert frame["msg"]["only"] == only[key], (viewer, key, frame)
            # History and sync: the same messages, the rest as hidden ranges.
            history = await client.request("history", conv=w.group)
            (synced,) = [c for c in (await client.request("sync"))["convs"] if c["conv"] == w.group]
            shown = [seq[k] for k in seq if visible(viewer, k)]
            hidden = [list(r) for r in hidden_ranges([seq[k] for k in seq if not visible(viewer, k)])]
            for where, page in (("history", history), ("sync", synced)):
                assert [m["seq"] for m in page["messages"]] == shown, (viewer, where, page)
                assert page["hidden"] == hidden, (viewer, where, page)
                for message in page["messages"]:
                    key = next(k for k in seq if seq[k] == message["seq"])
                    assert message.get("only") == only[key], (viewer, where, message)
            # Unread: what it may see and did not send.
            unread = sum(visible(viewer, k) and SENDERS[k] != viewer.replace("pad", "patient") for k in seq)
            assert synced["unread"] == unread, (viewer, synced)

        # The SDK moves past what B may not see without treating it as a gap.
        assert [m.text for m in await take(w["other"], 1)] == ["大家好"]


async def test_mention_only_target_must_be_another_member_the_sender_can_name(server: Running) -> None:
    async with open_ward(server, online=("owner", "staff", "other")) as w:
        await refused(w["staff"].send(w.group, "x", only=w.ref("staff")), "bad_request")  # only for herself
        await refused(w["staff"].send(w.group, "x", only="a99"), "not_found")
        await refused(w["staff"].send(w.group, "x", only=PEOPLE["patient"].username), "bad_request")  # not an id
        await refused(w["staff"].send(w.group, "x", only=w.ref("admin")), "not_found")  # not a member
        await refused(w["other"].send(w.group, "x", only=w.ref("patient")), "not_found")  # B cannot see A's real id
        members = (await w["other"].request("members", conv=w.group))["members"]
        (alias,) = [m["id"] for m in members if m["role"] == "patient" and m["id"] != w.ref("other")]
        ack = await w["other"].send(w.group, "悄悄问一下", only=alias)  # by the pseudonym she knows: allowed
        (message,), _ = await w["owner"].history(w.group, after=ack.seq - 1)
        assert message.only is not None and message.only.id == w.ref("patient")
