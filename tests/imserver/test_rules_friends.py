"""The friends switch (IM-5): patients chat one to one only as friends, and ask only where the group allows it;
the request and the chat show each other by pseudonym; staff chat with anyone; family may not ask."""

from __future__ import annotations

import re

from clients.python import open_client
from tests.conftest import PASSWORD, Running
from tests.imserver.test_rules_support import (
    PEOPLE,
    Ward,
    leaks,
    none_of,
    open_ward,
    pushed_msg,
    pushes,
    recording,
    refused,
)

A, B = PEOPLE["patient"], PEOPLE["other"]


async def alias_of(w: Ward, viewer: str, subject: str) -> str:
    """The id ``viewer`` knows a masked ``subject`` by in the ward group."""
    members = (await w[viewer].request("members", conv=w.group))["members"]
    (found,) = [m["id"] for m in members if m["role"] == str(PEOPLE[subject].role) and m["id"].startswith("a")]
    return str(found)


async def test_patients_become_friends_only_where_allowed_and_stay_masked(server: Running) -> None:
    with recording() as wire:
        async with open_ward(server, online=("owner", "patient", "other", "family")) as w:
            a, b = w["patient"], w["other"]
            await refused(b.send(f"u:{A.username}", "你好"), "forbidden")  # not friends
            a_for_b = await alias_of(w, "other", "patient")
            await refused(b.request("friend_request", conv=w.group, member=a_for_b), "forbidden")  # switch off
            await none_of(a, "friend_request")

            await w["owner"].request("group_set", conv=w.group, allow_friends=True)
            request = (await b.request("friend_request", conv=w.group, member=a_for_b))["request"]
            (asked,) = await pushes(a, "friend_request")
            b_for_a = await alias_of(w, "patient", "other")
            assert asked["request"] == request and asked["conv"] == w.group
            assert asked["from"]["id"] == b_for_a and re.fullmatch(r"a[0-9]+", b_for_a)
            assert asked["from"]["name"] != B.name
            assert (await b.request("friend_request", conv=w.group, member=a_for_b))["request"] == request
            assert await pushes(a, "friend_request") == [asked]  # asked again while pending: same id, pushed again

            await refused(b.request("friend_respond", request=request, accept=True), "not_found")  # not hers
            answer = await a.request("friend_respond", request=request, accept=True)
            assert answer["accepted"] is True and re.fullmatch(r"d:[0-9]+", answer["conv"])
            direct = answer["conv"]
            await refused(a.request("friend_respond", request=request, accept=True), "not_found")  # answered once
            for client in (a, b):  # the new chat is announced to both
                assert (await pushes(client, "conv"))[0] | {"name": ""} == {
                    "op": "conv", "conv": direct, "event": "joined", "name": ""}
            await a.send(direct, "你好，我也是移植一组的")
            got = await pushed_msg(b, direct)
            assert got["sender"]["id"].startswith("a") and got["sender"]["name"] != A.name
            await b.send(direct, "你好呀")
            back = await pushed_msg(a, direct)
            assert back["sender"]["id"].startswith("a") and back["sender"]["name"] != B.name
            for viewer, peer in ((a, B), (b, A)):
                (entry,) = [c for c in (await viewer.request("convs"))["convs"] if c["conv"] == direct]
                assert entry["name"] and entry["name"] != peer.name
                members = (await viewer.request("members", conv=direct))["members"]
                (other,) = [m for m in members if m.get("username") != viewer.username]
                assert other["id"].startswith("a") and "username" not in other, other
            for viewer, peer in ((a, B), (b, A)):
                found = leaks(wire.frames(viewer), [peer.username, peer.name], [w.ref("patient" if peer is A
                                                                                        else "other")])
                assert not found, found


async def test_staff_chat_with_any_patient_and_family_may_not_ask(server: Running) -> None:
    async with open_ward(server, online=("owner", "staff", "patient", "other", "family")) as w:
        direct = await w["staff"].send(f"u:{B.username}", "赵女士您好，明天来复查")  # no friendship needed
        got = await pushed_msg(w["other"], direct.conv)
        assert (got["sender"]["id"], got["sender"]["name"], got["sender"]["title"]) == (
            w.ref("staff"), PEOPLE["staff"].name, PEOPLE["staff"].title)
        assert (await w["other"].send(f"u:{PEOPLE['owner'].username}", "王主任好")).seq == 1  # and back
        await w["owner"].request("group_set", conv=w.group, allow_friends=True)
        b_for_f = await alias_of(w, "family", "other")
        await refused(w["family"].request("friend_request", conv=w.group, member=b_for_f), "forbidden")
        await refused(w["other"].request("friend_request", conv=w.group, member=w.ref("staff")), "bad_request")
        await refused(w["other"].request("friend_request", conv=w.group, member=w.ref("other")), "bad_request")
        a_for_b = await alias_of(w, "other", "patient")
        request = (await w["other"].request("friend_request", conv=w.group, member=a_for_b))["request"]
        answer = await w["patient"].request("friend_respond", request=request, accept=False)
        assert answer == answer | {"accepted": False} and "conv" not in answer
        await refused(w["other"].send(f"u:{A.username}", "你好"), "forbidden")  # still not friends


async def test_a_request_made_while_she_was_offline_waits_for_her(server: Running) -> None:
    """The push reaches only open connections; ``friend_requests`` lists what waits for an answer."""
    async with open_ward(server, online=("owner", "patient", "other")) as w:
        await w["owner"].request("group_set", conv=w.group, allow_friends=True)
        a_for_b = await alias_of(w, "other", "patient")
        b_for_a = await alias_of(w, "patient", "other")
    async with open_client(server.url, username=B.username, password=PASSWORD) as b:
        request = (await b.request("friend_request", conv=w.group, member=a_for_b))["request"]
    async with open_client(server.url, username=A.username, password=PASSWORD) as a:
        (waiting,) = (await a.request("friend_requests"))["requests"]
        assert waiting == {"request": request, "conv": w.group, "from": waiting["from"]}
        assert waiting["from"]["id"] == b_for_a and waiting["from"]["name"] != B.name
        await a.request("friend_respond", request=request, accept=False)
        assert (await a.request("friend_requests"))["requests"] == []
