"""Staff quick replies (MSG-3): personal, team and shared ones, variables filled by the server from the conversation,
fill-in prompts, several snippets in one message, ``/`` search; facts bots record about patients; care teams
(SPEC.md §5.19, §5.20; SEC-1 for the audit). Everything through the real server, as a staff client uses it.

The scene is the ward of ``test_rules_support`` (a doctor who owns the group, a nurse, patients A and B, A's
husband, a bot and an admin) with a care team of the doctor and the nurse, and a doctor outside it.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import trio

from clients.python import ClientError
from imserver.model import Role
from imserver.server import ChatServer, open_keys
from imserver.store import quickreplies
from imserver.visibility import CARE_TEAM
from protocol.kinds import Attachment
from tests.clients.test_cli import imclient, lines
from tests.conftest import Running
from tests.helpers import take
from tests.imserver.test_attachments import SAMPLES
from tests.imserver.test_rules_support import (
    PEOPLE,
    Ward,
    imserver,
    imserver_ok,
    leaks,
    login,
    open_ward,
    recording,
    refused,
)

TEAM = "胚胎移植组"
OUTSIDER = "dr_zhou"
A = PEOPLE["patient"]


@asynccontextmanager
async def open_teams(server: Running) -> AsyncIterator[Ward]:
    """The ward, everyone logged in, the team of the doctor (``owner``) and the nurse (``staff``), and ``outsider``."""
    async with AsyncExitStack() as stack:
        w = await stack.enter_async_context(open_ward(
            server, online=("owner", "staff", "patient", "other", "family", "admin", "bot"),
        ))
        w.users["outsider"] = await server.user(OUTSIDER, Role.STAFF, "周医生")
        w.clients["outsider"] = await stack.enter_async_context(login(server, OUTSIDER))
        await w["admin"].request("team_create", name=TEAM)
        for kind in ("owner", "staff"):
            await w["admin"].request("team_add", team=TEAM, user=PEOPLE[kind].username)
        yield w


async def save(w: Ward, who: str, shortcut: str, title: str, text: str | None = None, **fields: Any) -> int:
    """Save a quick reply as ``who``; its id."""
    return (await w[who].save_quick_reply(shortcut, title, text, **fields)).id


async def listed(w: Ward, who: str, **fields: Any) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in (await w[who].request("qr_list", **fields))["replies"]}


async def rendered(w: Ward, who: str, conv: str, *ids: int, **fields: Any) -> list[dict[str, Any]]:
    return list((await w[who].request("qr_render", conv=conv, ids=list(ids), **fields))["messages"])


async def test_each_scope_is_used_and_managed_by_its_own_people(server: Running) -> None:
    """MSG-3: personal replies are their owner's, team replies the team's, shared ones everyone's but managed by
    admins; patients, family and bots have none. SEC-1: team and shared changes are audited, personal ones not."""
    async with open_teams(server) as w:
        mine = await save(w, "staff", "yz", "移植后", "移植后请平卧半小时")
        ours = await save(w, "staff", "fz", "复诊", "请按时复诊", scope="team", team=TEAM)
        everyones = await save(w, "admin", "jd", "建档", "请携带身份证和结婚证建档", scope="shared")

        assert set(await listed(w, "staff")) == {mine, ours, everyones}
        assert set(await listed(w, "owner")) == {ours, everyones}
        assert set(await listed(w, "outsider")) == {everyones}
        assert set(await listed(w, "staff", scope="team")) == {ours}
        nurse = await listed(w, "staff")
        assert (nurse[mine]["editable"], nurse[ours]["editable"], nurse[everyones]["editable"]) == (True, True, False)
        assert nurse[ours]["team"] == TEAM and "team" not in nurse[mine]

        # Someone else's personal reply does not exist for the doctor; the team's is his to change.
        for call in (
            w["owner"].request("qr_render", conv=w.group, ids=[mine]),
            w["owner"].request("qr_delete", id=mine),
            w["owner"].save_quick_reply("yz", "改", "改了", id=mine),
        ):
            assert (await refused(call, "not_found")).field in ("id", "ids[0]")
        await save(w, "owner", "fz", "复诊提醒", "请按时复诊，带齐资料", scope="team", team=TEAM, id=ours)
        assert (await listed(w, "staff"))[ours]["title"] == "复诊提醒"

        # Outside the team: neither its replies nor a place to put one.
        await refused(w["outsider"].request("qr_delete", id=ours), "not_found")
        await refused(w["outsider"].save_quick_reply("x", "x", "x", scope="team", team=TEAM), "forbidden")
        assert (await refused(w["outsider"].save_quick_reply("x", "x", "x", scope="team", team="无此组"),
                              "not_found")).field == "team"

        # Shared: everyone's to use, the admins' to manage.
        await refused(w["staff"].save_quick_reply("gx", "共享", "大家好", scope="shared"), "forbidden")
        await refused(w["staff"].save_quick_reply("jd", "建档", "改", scope="shared", id=everyones), "forbidden")
        await refused(w["staff"].request("qr_delete", id=everyones), "forbidden")
        assert (await rendered(w, "outsider", f"u:{A.username}", everyones))[0]["text"] == "请携带身份证和结婚证建档"

        for kind in ("patient", "family", "bot"):
            for op, fields in (("qr_list", {}), ("qr_search", {"q": ""}), ("teams", {}),
                               ("qr_render", {"conv": w.group, "ids": [everyones]}), ("qr_delete", {"id": mine}),
                               ("qr_save", {"shortcut": "a", "title": "a", "text": "a"})):
                await refused(w[kind].request(op, **fields), "forbidden")

        await w["owner"].request("qr_delete", id=ours)
        await w["admin"].request("qr_delete", id=everyones)
        await w["staff"].request("qr_delete", id=mine)
        assert await listed(w, "staff") == {}

        entries = (await w["admin"].request("audit", limit=1000))["entries"]
        rows = [(e["actor"], e["action"], e["target"], e["detail"]) for e in entries if e["action"] != "family_link"]
        dr, li, admin = PEOPLE["owner"].username, PEOPLE["staff"].username, PEOPLE["admin"].username
        team_reply = {"id": ours, "scope": "team", "team": TEAM}
        shared_reply = {"id": everyones, "scope": "shared", "team": None, "shortcut": "jd", "title": "建档"}
        assert rows == [
            (admin, "team_create", None, {"team": TEAM}),
            (admin, "team_add", dr, {"team": TEAM}),
            (admin, "team_add", li, {"team": TEAM}),
            (li, "quick_reply_save", None, team_reply | {"shortcut": "fz", "title": "复诊"}),
            (admin, "quick_reply_save", None, shared_reply),
            (dr, "quick_reply_save", None, team_reply | {"shortcut": "fz", "title": "复诊提醒"}),
            (dr, "quick_reply_delete", None, team_reply | {"shortcut": "fz", "title": "复诊提醒"}),
            (admin, "quick_reply_delete", None, shared_reply),
        ]


async def test_care_teams_are_made_by_admins_and_decide_who_sees_team_replies(server: Running) -> None:
    """MSG-3: a team reply follows team membership; only admins change teams, and only staff join them."""
    async with open_teams(server) as w:
        ours = await save(w, "staff", "fz", "复诊", "请按时复诊", scope="team", team=TEAM)
        await refused(w["owner"].request("team_create", name="新组"), "forbidden")
        await refused(w["owner"].request("team_add", team=TEAM, user=OUTSIDER), "forbidden")
        admin = w["admin"]
        assert (await refused(admin.request("team_create", name=TEAM), "bad_request")).field == "name"
        assert (await refused(admin.request("team_add", team=TEAM, user=A.username), "bad_request")).field == "user"
        assert (await refused(admin.request("team_add", team="无此组", user=OUTSIDER), "not_found")).field == "team"
        assert (await refused(admin.request("team_remove", team=TEAM, user=OUTSIDER), "not_found")).field == "user"

        members = {m["username"] for m in (await w["owner"].request("teams"))["teams"][0]["members"]}
        assert members == {PEOPLE["owner"].username, PEOPLE["staff"].username}
        assert (await w["outsider"].request("teams"))["teams"] == []
        await w["admin"].request("team_create", name="随访组")
        assert {t["name"] for t in (await w["admin"].request("teams"))["teams"]} == {TEAM, "随访组"}

        await w["admin"].request("team_add", team=TEAM, user=OUTSIDER)
        assert ours in await listed(w, "outsider")
        await w["admin"].request("team_remove", team=TEAM, user=PEOPLE["staff"].username)
        assert ours not in await listed(w, "staff")
        await refused(w["staff"].request("qr_render", conv=w.group, ids=[ours]), "not_found")


async def test_the_patient_is_named_as_every_reader_may_see_her(server: Running) -> None:
    """IM-6, MSG-3: in a group, where other patients see her pseudonym (and whoever joins later reads back), a quick
    reply names her by it, though staff see her real name; in her direct chat with staff, by her real name."""
    with recording() as wire:
        async with open_teams(server) as w:
            hello = await save(w, "owner", "nh", "问候", "{{patient}}您好，我是{{me}}（{{me.title}}）")
            await w["patient"].send(w.group, "大家好")
            (hers,) = await take(w["other"], 1)
            alias = hers.sender.name

            (text,) = await rendered(w, "owner", w.group, hello, member=w.ref("patient"))  # as staff see her
            assert text == {"kind": "text", "text": f"{alias}您好，我是王建华（主任医师）"}
            await w["owner"].send(w.group, text["text"])
            (got,) = await take(w["other"], 1)
            assert got.text == text["text"]
            assert any(f["op"] == "msg" for f in wire.frames(w["other"]))
            assert leaks(wire.frames(w["other"]), [A.name, A.username]) == []

            # Only staff, she and her husband see her real name here today; whoever joins tomorrow would not.
            hers_alone = (await w["owner"].request("group_create", name="张女士专属", members=[A.username]))["conv"]
            (text,) = await rendered(w, "owner", hers_alone, hello, member=w.ref("patient"))
            assert A.name not in text["text"]

            (direct,) = await rendered(w, "owner", f"u:{A.username}", hello)  # the patient of a direct chat
            assert direct["text"] == f"{A.name}您好，我是王建华（主任医师）"

            error = await refused(w["owner"].request("qr_render", conv=w.group, ids=[hello]), "bad_request")
            assert error.field == "member"
            for not_a_patient in (w.ref("staff"), w.ref("family")):
                error = await refused(w["owner"].request("qr_render", conv=w.group, ids=[hello],
                                                         member=not_a_patient), "bad_request")
                assert error.field == "member"
            error = await refused(w["owner"].request("qr_render", conv=w.group, ids=[hello], member="a999"),
                                  "not_found")
            assert error.field == "member"
            shared = await save(w, "admin", "nh", "问候", "{{patient}}您好", scope="shared")
            await refused(w["outsider"].request("qr_render", conv=w.group, ids=[shared]), "forbidden")  # not in it
            error = await refused(w["outsider"].request("qr_render", conv=f"u:{A.username}", ids=[hello]),
                                  "not_found")  # the doctor's own reply
            assert error.field == "ids[0]"


async def test_facts_recorded_by_a_bot_fill_templates(server: Running) -> None:
    """MSG-3: a bot records a patient's next visit; a quick reply tells her. Only bots and staff record facts,
    only about patients, and a fact not recorded is named rather than left blank. SEC-1: recording is audited."""
    async with open_teams(server) as w:
        visit = await save(w, "owner", "fz", "复诊", "{{patient}}，您下次复诊：{{fact.next_visit}}，{{fact.place}}")
        await w["bot"].set_fact(A.username, "next_visit", "12月3日上午8点")
        await w["staff"].set_fact(A.username, "place", "门诊三楼")
        (text,) = await rendered(w, "owner", f"u:{A.username}", visit)
        assert text["text"] == f"{A.name}，您下次复诊：12月3日上午8点，门诊三楼"

        error = await refused(w["owner"].request("qr_render", conv=w.group, ids=[visit], member=w.ref("other")),
                              "bad_request")
        assert error.field == "member" and "next_visit" in (error.detail or "") and "place" in (error.detail or "")

        await refused(w["patient"].set_fact(A.username, "next_visit", "明天"), "forbidden")
        await refused(w["family"].set_fact(A.username, "next_visit", "明天"), "forbidden")
        assert (await refused(w["bot"].set_fact(PEOPLE["staff"].username, "x", "y"), "bad_request")).field == "user"
        assert (await refused(w["bot"].set_fact("nobody", "x", "y"), "not_found")).field == "user"
        assert (await refused(w["bot"].request("facts_set", user=A.username, key="Next", value="y"),
                              "bad_request")).field == "key"

        await w["bot"].set_fact(A.username, "place", None)
        error = await refused(w["owner"].request("qr_render", conv=f"u:{A.username}", ids=[visit]), "bad_request")
        assert "place" in (error.detail or "") and "next_visit" not in (error.detail or "")
        assert (await refused(w["bot"].set_fact(A.username, "place", None), "not_found")).field == "key"

        entries = (await w["admin"].request("audit", limit=1000))["entries"]
        facts = [(e["actor"], e["action"], e["target"], e["detail"]) for e in entries if e["action"].startswith("fact")]
        assert facts == [(PEOPLE["bot"].username, "fact_set", A.username, {"key": "next_visit"}),
                         (PEOPLE["staff"].username, "fact_set", A.username, {"key": "place"}),
                         (PEOPLE["bot"].username, "fact_remove", A.username, {"key": "place"})]


@pytest.mark.parametrize(("clock", "today"), [
    (lambda: datetime(2027, 1, 31, 15, 59, tzinfo=UTC), "2027年1月31日"),  # 23:59 in Beijing, a month's last minute
    (lambda: datetime(2027, 1, 31, 16, 1, tzinfo=UTC), "2027年2月1日"),  # 00:01 in Beijing, still January in UTC
])
async def test_today_is_the_date_in_beijing(server: Running, today: str) -> None:
    """MSG-3: ``{{today}}`` is today's date in Asia/Shanghai, as patients write it, whatever the hour elsewhere;
    ``{{group}}`` the group's name."""
    async with open_teams(server) as w:
        reply = await save(w, "staff", "jt", "今天", "今天是{{today}}，欢迎来到{{group}}")
        (text,) = await rendered(w, "staff", w.group, reply)
        assert text["text"] == f"今天是{today}，欢迎来到移植一组"
        assert (await refused(w["staff"].request("qr_render", conv=f"u:{A.username}", ids=[reply]),
                              "bad_request")).field == "conv"


async def test_fill_ins_are_asked_for_then_filled(server: Running) -> None:
    """MSG-3: the list shows each reply's prompts; rendering without them names the missing ones; the values
    the sender gives are put in as they are, even when they look like a variable."""
    async with open_teams(server) as w:
        reply = await save(w, "staff", "tz", "体征", "体重{{?体重}}，身高{{ ?身高 }}；再确认体重：{{?体重}}")
        entry = (await listed(w, "staff"))[reply]
        assert (entry["prompts"], entry["variables"]) == (["体重", "身高"], [])
        assert (await w["staff"].quick_replies("tz"))[0].prompts == ["体重", "身高"]

        error = await refused(w["staff"].request("qr_render", conv=w.group, ids=[reply]), "bad_request")
        assert error.field == "fill" and "体重" in (error.detail or "") and "身高" in (error.detail or "")
        error = await refused(w["staff"].request("qr_render", conv=w.group, ids=[reply], fill={"体重": "60kg"}),
                              "bad_request")
        assert error.field == "fill" and "身高" in (error.detail or "") and "体重" not in (error.detail or "")

        (text,) = await rendered(w, "staff", w.group, reply, fill={"体重": "{{patient}}", "身高": "162cm"})
        assert text["text"] == "体重{{patient}}，身高162cm；再确认体重：{{patient}}"


async def test_several_snippets_make_one_text_and_other_kinds_their_own_messages(server: Running) -> None:
    """MSG-1, MSG-3: text snippets join into one text message; a notice is a message of its own; what the server
    renders goes out with the ordinary send and arrives, as the patient may see it."""
    async with open_teams(server) as w:
        first = await save(w, "owner", "a1", "第一段", "{{patient}}您好。")
        notice = await save(w, "owner", "tz", "通知", kind="notice",
                            body={"title": "取卵术前须知", "content": "{{patient}}：术前一晚22点后禁食禁水。"})
        second = await save(w, "owner", "a2", "第二段", "有问题请随时联系{{me}}。")
        alias = (await rendered(w, "owner", w.group, first, member=w.ref("patient")))[0]["text"].removesuffix("您好。")

        ready = await rendered(w, "owner", w.group, first, notice, second, member=w.ref("patient"))
        assert ready == [
            {"kind": "text", "text": f"{alias}您好。\n有问题请随时联系王建华。"},
            {"kind": "notice", "body": {"title": "取卵术前须知", "content": f"{alias}：术前一晚22点后禁食禁水。"}},
        ]
        acks = await w["owner"].send_quick_replies(w.group, [first, notice, second], member=w.ref("patient"))
        assert [a.seq for a in acks] == [1, 2]  # rendering alone sent nothing
        got = await take(w["patient"], 2)
        assert [(m.kind, m.text) for m in got] == [
            ("text", f"{alias}您好。\n有问题请随时联系王建华。"),
            ("notice", f"【通知】取卵术前须知：{alias}：术前一晚22点后禁食禁水。"),
        ]
        assert got[0].sender.name == "王建华"


async def test_slash_search_puts_shortcuts_first_then_scope_then_use(server: Running) -> None:
    """MSG-3: ``/`` offers shortcuts that start with what was typed (any case), then titles and texts that contain
    it (Chinese substrings too); personal before team before shared; the most used first."""
    async with open_teams(server) as w:
        ids = {
            "P1": await save(w, "owner", "yzq", "移植前准备", "移植前一天请清淡饮食"),
            "P2": await save(w, "owner", "bc", "B超复查", "请明早空腹来院复查"),
            "T1": await save(w, "staff", "yzh", "移植后注意事项", "移植后避免剧烈运动", scope="team", team=TEAM),
            "S1": await save(w, "admin", "yz", "移植当天须知", "请提前半小时到达", scope="shared"),
            "S2": await save(w, "admin", "qs", "取卵术前", "取卵后两周准备胚胎移植", scope="shared"),
            "S3": await save(w, "admin", "myz", "免疫治疗", "请按时用药", scope="shared"),
        }
        name = {v: k for k, v in ids.items()}

        async def offered(kind: str, typed: str, limit: int = 10) -> list[str]:
            return [name[r.id] for r in await w[kind].quick_replies(typed, limit=limit)]

        assert await offered("owner", "yz") == ["P1", "T1", "S1"]
        assert await offered("owner", "YZ") == ["P1", "T1", "S1"]
        assert await offered("owner", "移植") == ["P1", "T1", "S2", "S1"]  # no use yet: by shortcut
        assert await offered("owner", "b超") == ["P2"]
        assert await offered("owner", "两周") == ["S2"]
        assert await offered("owner", "z") == []  # shortcuts match from their start
        assert await offered("owner", "my") == ["S3"]
        for _ in range(2):
            await rendered(w, "owner", w.group, ids["S1"])
        await rendered(w, "owner", w.group, ids["P2"])
        assert await offered("owner", "移植") == ["P1", "T1", "S1", "S2"]  # S1 used twice now
        assert await offered("owner", "") == ["P2", "P1", "T1", "S1", "S3", "S2"]
        assert await offered("owner", "", limit=2) == ["P2", "P1"]
        assert await offered("staff", "移植") == ["T1", "S2", "S1"]  # the nurse has not used S1: her own ranking
        assert await offered("outsider", "yz") == ["S1"]
        assert (await w["owner"].quick_replies("移植"))[2].uses == 2


async def test_bad_templates_are_refused_when_saved(server: Running) -> None:
    """MSG-2, MSG-3: an unknown variable, a bad fill-in name, a body its kind refuses, text where a body belongs
    and a shortcut taken in the same scope are refused with the field named; nothing is saved."""
    async with open_teams(server) as w:
        nurse = w["staff"]
        for template, field in (("{{patinet}}您好", "text"), ("{{fact.Next Visit}}", "text"), ("{{?}}", "text"),
                                ("{{? 体 重}}", "text"), ("{{me.name}}", "text"), ("   ", "text")):
            error = await refused(nurse.save_quick_reply("x", "x", template), "bad_request")
            assert error.field == field, (template, error.error)
        assert "{{patinet}}" in ((await refused(nurse.save_quick_reply("x", "x", "{{patinet}}"), "bad_request")).detail
                                 or "")
        for kind, body, text, field in (
            ("notice", {"title": "复诊", "content": "{{doctor}}"}, None, "body.content"),
            ("notice", {"content": "内容"}, None, "body.title"),
            ("notice", None, "只有文字", "body"),
            ("survey", {"q": 1}, None, "kind"),
            ("text", {"title": "x"}, "x", "body"),
            ("treatment_items", {"title": "移植日", "day": "{{today}}", "items": [{"name": "移植"}]}, None, "body.day"),
        ):
            error = await refused(nurse.save_quick_reply("x", "x", text, kind=kind, body=body), "bad_request")
            assert error.field == field, (kind, body, error.error)
        assert (await refused(nurse.save_quick_reply("x", "x", "x", scope="team"), "bad_request")).field == "team"
        assert (await refused(nurse.save_quick_reply("x", "x", "x", team=TEAM), "bad_request")).field == "team"
        assert await listed(w, "staff") == {}

        await save(w, "staff", "Yz", "移植", "您好")
        assert (await refused(nurse.save_quick_reply("yZ", "又一个", "您好"), "bad_request")).field == "shortcut"
        await save(w, "staff", "yz", "移植", "您好", scope="team", team=TEAM)  # another scope: no clash
        assert sorted(r["shortcut"] for r in (await listed(w, "staff")).values()) == ["yz", "yz"]

        long_title = await save(w, "staff", "bt", "标题", kind="notice", body={"title": "{{?标题}}", "content": "内容"})
        error = await refused(nurse.request("qr_render", conv=w.group, ids=[long_title], fill={"标题": "长" * 201}),
                              "bad_request")
        assert error.field == "ids[0]"
        assert (await rendered(w, "staff", w.group, long_title, fill={"标题": "短"}))[0]["body"]["title"] == "短"


async def test_a_quick_reply_lets_its_users_fetch_its_attachments(server: Running) -> None:
    """MSG-4 (the hook for the attachment access check): whoever may use a quick reply may fetch the files it
    carries, such as a PDF instruction sheet; nobody else."""
    async with open_teams(server) as w:
        pdf = await w["owner"].upload(SAMPLES["application/pdf"] + bytes(500), "application/pdf", "移植后须知.pdf")
        image = await w["admin"].upload(SAMPLES["image/jpeg"] + bytes(300), "image/jpeg")
        fake = {"id": "att_nothing01", "mime": "application/pdf", "size": 5}
        await refused(w["owner"].request("qr_save", shortcut="x", title="x", kind="lab_report_pdf",
                                         body={"title": "x", "pdf": fake}), "not_found")  # files must exist
        await save(w, "owner", "xz", "须知", kind="lab_report_pdf", body={"title": "移植后须知", "pdf": pdf})
        await save(w, "admin", "tp", "图片", kind="image_group", body={"images": [image, pdf]}, scope="shared")
        assert await w["staff"].download(pdf.id) == SAMPLES["application/pdf"] + bytes(500)  # through fetch
        await refused(w["patient"].download(pdf.id), "not_found")

        async def may(kind: str, attachment: Attachment) -> bool:
            return await quickreplies.may_use_attachment(server.store, w.users[kind].id, attachment.id, CARE_TEAM)
        assert [await may(k, image) for k in ("owner", "staff", "outsider", "patient", "bot")] == [
            True, True, True, False, False]
        assert await may("owner", pdf) and await may("staff", pdf)  # the shared one carries the sheet too
        await w["admin"].request("qr_delete", id=(await w["staff"].quick_replies("tp"))[0].id)
        assert [await may(k, pdf) for k in ("owner", "staff", "outsider")] == [True, False, False]
        assert not await quickreplies.may_use_attachment(server.store, w.users["owner"].id, "att_nothing01", CARE_TEAM)


async def test_concurrent_changes_keep_one_winner(server: Running) -> None:
    """MSG-3, races: two team members saving the same shortcut at once get one reply and a clear refusal; two
    deleting the same reply at once get one success and a not_found."""
    async with open_teams(server) as w:

        async def save_as(who: str, outcomes: list[str]) -> None:
            try:
                await save(w, who, "same", "同时", f"{who} 的版本", scope="team", team=TEAM)
                outcomes.append("ok")
            except ClientError as exc:
                outcomes.append(str(exc.field))

        async def delete_as(who: str, reply_id: int, outcomes: list[str]) -> None:
            try:
                await w[who].request("qr_delete", id=reply_id)
                outcomes.append("ok")
            except ClientError as exc:
                outcomes.append(exc.code)

        for _ in range(3):
            saved: list[str] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(save_as, "owner", saved)
                nursery.start_soon(save_as, "staff", saved)
            assert sorted(saved) == ["ok", "shortcut"]
            (reply,) = await w["owner"].quick_replies("same")
            deleted: list[str] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(delete_as, "owner", reply.id, deleted)
                nursery.start_soon(delete_as, "staff", reply.id, deleted)
            assert sorted(deleted) == ["not_found", "ok"]


async def test_quick_replies_and_their_ranking_survive_a_restart(server: Running) -> None:
    """MSG-3: quick replies, teams, facts and use counts live in Postgres; a restarted server has them all."""
    async with open_teams(server) as w:
        reply = await save(w, "staff", "fz", "复诊", "{{fact.next_visit}}复诊", scope="team", team=TEAM)
        await w["bot"].set_fact(A.username, "next_visit", "周五")
        await rendered(w, "staff", f"u:{A.username}", reply)
    restarted = ChatServer(server.settings, server.store, await open_keys(server.store))
    async with trio.open_nursery() as nursery:
        fresh = Running(restarted, server.store, await nursery.start(restarted.serve), server.settings)
        async with login(fresh, "staff") as nurse:
            (found,) = await nurse.quick_replies("fz")
            assert (found.id, found.uses, found.team) == (reply, 1, TEAM)
            (text,) = (await nurse.request("qr_render", conv=f"u:{A.username}", ids=[reply]))["messages"]
            assert text["text"] == "周五复诊"
        restarted.shutdown()


@pytest.mark.slow
async def test_teams_and_quick_replies_from_the_command_line(server: Running, db: str) -> None:
    """MSG-3, SEC-1: ``imserver team`` makes a team (audited as the operator); ``imclient qr add``, ``qr search`` and
    ``qr use`` save a team quick reply, find it by ``/`` and send it filled in, to arrive like any message."""
    async with open_ward(server, online=("patient", "admin")) as w:
        dr, nurse = PEOPLE["owner"].username, PEOPLE["staff"].username
        assert await imserver_ok(db, "team", "create", TEAM) == [{"team": TEAM}]
        for who in (dr, nurse):
            assert await imserver_ok(db, "team", "add", TEAM, who) == [{"team": TEAM, "user": who}]
        assert await imserver_ok(db, "team", "list") == [{"team": TEAM, "members": sorted([dr, nurse])}]
        refusals = [await imserver(db, "team", "add", TEAM, A.username), await imserver(db, "team", "create", TEAM),
                    await imserver(db, "team", "remove", "无此组", nurse)]
        assert all(r.returncode == 1 and r.stderr for r in refusals)
        assert await imserver_ok(db, "team", "remove", TEAM, nurse) == [{"team": TEAM, "user": nurse}]

        added = lines(await imclient(server, dr, "qr", "add", "yzh", "移植后注意事项",
                                     "{{patient}}您好，移植后请平卧{{?分钟}}分钟。", "--scope", "team", "--team", TEAM))
        assert added[0]["prompts"] == ["分钟"] and added[0]["team"] == TEAM
        found = lines(await imclient(server, dr, "qr", "search", "移植"))
        assert [f["id"] for f in found] == [added[0]["id"]]
        sent = lines(await imclient(server, dr, "qr", "use", str(added[0]["id"]), w.group, "--member", A.username,
                                    "--fill", "分钟=30"))
        assert [s["seq"] for s in sent] == [1]
        (got,) = await take(w["patient"], 1)
        assert got.text.endswith("您好，移植后请平卧30分钟。") and A.name not in got.text  # a group: her pseudonym
        missing = await imclient(server, dr, "qr", "use", str(added[0]["id"]), w.group, "--member", A.username)
        assert missing.returncode == 1 and json.loads(missing.stderr)["error"] == "bad_request"

        operator = f"cli:{getpass.getuser()}"
        entries = (await w["admin"].request("audit", limit=1000))["entries"]
        assert [(e["actor"], e["action"], e["target"]) for e in entries if e["action"].startswith("team")] == [
            (operator, "team_create", None), (operator, "team_add", dr), (operator, "team_add", nurse),
            (operator, "team_remove", nurse)]
