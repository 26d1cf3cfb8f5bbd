"""Mute all / open all (IM-4): set by the group's owner or admins (or an admin account); while muted, patients and
family may not send; staff, bots and the group's managers still may. Every member is told of the switch."""

from __future__ import annotations

from tests.conftest import Running
from tests.imserver.test_rules_support import PEOPLE, login, none_of, open_ward, pushes, refused

MUTED_SEND = {
    # sender:  refused with this code while the group is muted (None: sends as usual)
    "patient": "muted",
    "other": "muted",
    "family": "muted",  # even though the group lets family speak
    "staff": None,  # a plain member, but staff
    "bot": None,
    "owner": None,
}
MEMBERS = ("owner", "staff", "patient", "other", "family", "bot")


async def test_mute_all_silences_patients_and_family_only_and_open_all_restores(server: Running) -> None:
    async with open_ward(server, online=(*MEMBERS, "admin")) as w:
        await w["owner"].request("group_set", conv=w.group, family_can_speak=True)
        for kind in MEMBERS:
            await pushes(w[kind], "group")
        answer = await w["owner"].request("group_set", conv=w.group, muted=True)
        assert answer["muted"] is True and answer["family_can_speak"] is True
        switches = {"op": "group", "conv": w.group, "muted": True, "allow_friends": False,
                    "family_can_speak": True, "banned": False}
        for kind in MEMBERS:
            assert await pushes(w[kind], "group") == [switches], kind
        await none_of(w["admin"], "group")  # not a member
        for kind, code in MUTED_SEND.items():
            if code is None:
                await w[kind].send(w.group, f"{kind}: 禁言中也能发")
            else:
                error = await refused(w[kind].send(w.group, f"{kind}: 禁言中"), code)
                assert error.message == "本群已开启全员禁言"
        page, _ = await w["owner"].history(w.group)
        assert [m.sender.id for m in page] == [w.ref(k) for k, code in MUTED_SEND.items() if code is None]

        await w["owner"].request("group_set", conv=w.group, muted=False)
        for kind in MEMBERS:
            assert (await pushes(w[kind], "group"))[0]["muted"] is False, kind
        for kind in MUTED_SEND:
            await w[kind].send(w.group, f"{kind}: 全放开")


async def test_a_resend_gets_the_first_answer_though_the_group_was_muted_since(server: Running) -> None:
    async with open_ward(server, online=("owner", "patient")) as w:
        first = await w["patient"].send(w.group, "网络不好，重发一次", cid="c-1")
        await w["owner"].request("group_set", conv=w.group, muted=True)
        again = await w["patient"].send(w.group, "网络不好，重发一次", cid="c-1")
        assert (again.seq, again.id, again.dup) == (first.seq, first.id, True)
        await refused(w["patient"].send(w.group, "新消息", cid="c-2"), "muted")


async def test_who_may_mute(server: Running) -> None:
    async with open_ward(server, online=("owner", "staff", "patient", "family", "admin")) as w:
        for kind in ("staff", "patient", "family"):  # plain members, even staff, may not
            await refused(w[kind].request("group_set", conv=w.group, muted=True), "forbidden")
        await refused(w["owner"].request("group_set", conv=w.group), "bad_request")  # nothing to change
        await w["admin"].request("group_set", conv=w.group, muted=True)  # an admin account, not a member
        await w["owner"].request("group_add", conv=w.group, user=PEOPLE["patient"].username, role="admin")
        await w["patient"].send(w.group, "我是群管理员，禁言时也能说话")  # managers are never muted
        await w["patient"].request("group_set", conv=w.group, muted=False)  # and may open it again
        async with login(server, "other") as b:
            await b.send(w.group, "可以说话了")
