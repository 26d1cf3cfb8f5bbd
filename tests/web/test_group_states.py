"""A group's states as the app shows them, from what the server says and never guessed (issue 15; SPEC.md §11):
mute all, a banned group, an isolated member, friend requests, and staff looking up a patient's real identity.
Each test makes a group of its own with the demo's accounts (the doctor owns it), sets the state through the
Python SDK as the doctor or the admin would, and lifts it again at the end; screenshots of each state are kept."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from playwright.sync_api import Browser, Page, expect

from clients.python import Client
from tests.system import Demo
from tests.web.conftest import as_user, logged_in, messages_with, open_conv, shot


def unique(text: str) -> str:
    return f"{text}#{uuid.uuid4().hex[:6]}"


def request(system: Demo, username: str, op: str, **fields: Any) -> dict[str, Any]:
    """One request as ``username``, through the protocol; its answer."""
    async def run(client: Client) -> dict[str, Any]:
        return await client.request(op, **fields)
    return as_user(system, username, run)


def say(system: Demo, username: str, conv: str, text: str) -> int:
    """``username`` writes ``text`` in ``conv`` from another device; its seq."""
    async def run(client: Client) -> int:
        return (await client.send(conv, text)).seq
    return as_user(system, username, run)


def sender_as_seen(system: Demo, viewer: str, conv: str, seq: int) -> str:
    """The name ``viewer`` is shown for the sender of message ``seq``."""
    async def run(client: Client) -> str:
        page, _ = await client.history(conv, after=seq - 1, limit=1)
        return page[0].sender.name
    return as_user(system, viewer, run)


def member_id(system: Demo, conv: str, username: str) -> str:
    """``username``'s member id in ``conv`` as the doctor sees it (a real identity: ``u<n>``)."""
    members = request(system, "dr_wang", "members", conv=conv)["members"]
    return next(str(m["id"]) for m in members if m.get("username") == username)


@pytest.fixture
def group(system: Demo) -> Iterator[tuple[str, str]]:
    """A new group of the doctor's with three demo patients (and chen_hong's husband, who follows her): its
    address and name."""
    name = unique("状态测试群")
    conv = request(system, "dr_wang", "group_create", name=name, members=["chen_hong", "zhao_min", "liu_fang"])["conv"]
    yield str(conv), name


def drawn_seqs(page: Page) -> list[int]:
    """The seqs of the message rows the chat draws, top to bottom."""
    return page.locator("[data-testid^=msg-]").evaluate_all("rows => rows.map(r => +r.dataset.testid.slice(4))")


def test_mute_all_replaces_a_patients_input_and_staff_still_speak(
    system: Demo, browser: Browser, group: tuple[str, str]
) -> None:
    """IM-4, SPEC.md §11.4: as the doctor mutes the group, the patient's input bar gives way to a notice on her
    open chat; the doctor's own input bar stays, with a note, and what he sends reaches her. Unmuted, her input
    bar is back."""
    conv, name = group
    patient = logged_in(browser, system, "chen_hong")
    open_conv(patient, name)
    expect(patient.get_by_test_id("composer-input")).to_be_visible()
    request(system, "dr_wang", "group_set", conv=conv, muted=True)
    try:
        expect(patient.get_by_test_id("muted-notice")).to_have_text("全员禁言中，暂时不能发言")
        expect(patient.get_by_test_id("composer-input")).to_have_count(0)
        shot(patient, "group-muted-patient")

        doctor = logged_in(browser, system, "dr_wang")
        expect(doctor.get_by_test_id(f"conv-{conv}")).to_contain_text("禁言中")
        open_conv(doctor, name)
        expect(doctor.get_by_test_id("muted-staff-note")).to_be_visible()
        text = unique("禁言期间请勿焦虑，有问题私聊护士")
        doctor.get_by_test_id("composer-input").fill(text)
        doctor.get_by_test_id("composer-send").click()
        expect(doctor.locator("[data-state=sending]")).to_have_count(0, timeout=30_000)
        shot(doctor, "group-muted-staff")
        expect(messages_with(patient, text)).to_be_visible(timeout=30_000)
    finally:
        request(system, "dr_wang", "group_set", conv=conv, muted=False)
    expect(patient.get_by_test_id("composer-input")).to_be_visible()
    expect(patient.get_by_test_id("muted-notice")).to_have_count(0)


def test_a_banned_group_shows_the_blocked_screen_and_its_content_returns_when_lifted(
    system: Demo, browser: Browser, group: tuple[str, str]
) -> None:
    """IM-15, SPEC.md §11.8: the admin bans the group while she reads it: its messages leave her screen for the
    blocked screen, and her list marks it without a preview. Unbanned, its messages are back."""
    conv, name = group
    text = unique("明天上午八点空腹抽血")
    say(system, "dr_wang", conv, text)
    patient = logged_in(browser, system, "chen_hong")
    open_conv(patient, name)
    expect(messages_with(patient, text)).to_be_visible()
    request(system, "admin", "group_ban", conv=conv)
    try:
        expect(patient.get_by_test_id("banned-screen")).to_be_visible()
        expect(patient.get_by_test_id("banned-screen")).to_contain_text("该群已被封禁")
        expect(messages_with(patient, text)).to_have_count(0)
        expect(patient.get_by_test_id("composer-input")).to_have_count(0)
        expect(patient.get_by_test_id("open-members")).to_have_count(0)
        shot(patient, "group-banned")
        patient.get_by_text("返回").click()
        entry = patient.get_by_test_id(f"conv-{conv}")
        expect(entry).to_contain_text("已封禁")
        expect(entry.get_by_test_id("conv-preview")).not_to_contain_text(text)
        shot(patient, "list-banned")
        open_conv(patient, name)
        expect(patient.get_by_test_id("banned-screen")).to_be_visible()
    finally:
        request(system, "admin", "group_unban", conv=conv)
    expect(patient.get_by_test_id("banned-screen")).to_have_count(0)
    expect(messages_with(patient, text)).to_be_visible(timeout=30_000)
    expect(patient.get_by_test_id("composer-input")).to_be_visible()


def test_an_isolated_members_messages_leave_the_others_screens_and_leave_no_gap(
    system: Demo, browser: Browser, group: tuple[str, str]
) -> None:
    """IM-12, IM-13, SPEC.md §11.2, §11.3: the doctor isolates chen_hong. zhao_min, reading the group, sees her
    message go; what chen_hong writes while isolated never reaches her. chen_hong's own view is unchanged and
    the doctor, the owner, sees everything. zhao_min's chat draws the messages she may see one after another,
    with nothing for the hidden ones, also after a reload that pages back over them."""
    conv, name = group
    before, during = unique("我今天验血了"), unique("我被隔离了吗？")
    first = say(system, "dr_wang", conv, unique("大家好，这里是移植群"))
    hers = say(system, "chen_hong", conv, before)
    other = logged_in(browser, system, "zhao_min")
    open_conv(other, name)
    expect(messages_with(other, before)).to_be_visible()
    chen = member_id(system, conv, "chen_hong")
    request(system, "dr_wang", "isolate", conv=conv, member=chen)
    try:
        expect(messages_with(other, before)).to_have_count(0, timeout=30_000)  # retracted from her screen

        patient = logged_in(browser, system, "chen_hong")
        open_conv(patient, name)
        expect(messages_with(patient, before)).to_be_visible()
        patient.get_by_test_id("composer-input").fill(during)
        patient.get_by_test_id("composer-send").click()
        expect(patient.locator("[data-state=sending]")).to_have_count(0, timeout=30_000)
        expect(messages_with(patient, during)).to_be_visible()
        shot(patient, "group-isolated-self")
        last = say(system, "dr_wang", conv, unique("请大家按时用药"))

        expect(other.get_by_test_id(f"msg-{last}")).to_be_visible(timeout=30_000)
        expect(messages_with(other, during)).to_have_count(0)
        assert drawn_seqs(other) == [first, last]
        shot(other, "group-isolated-others")
        other.reload()  # the same chat, from the server's history this time
        expect(other.get_by_test_id("chat-title")).to_contain_text(name, timeout=30_000)
        expect(other.get_by_test_id(f"msg-{last}")).to_be_visible(timeout=30_000)
        other.wait_for_timeout(500)  # paging back, if it were to ask again for the hidden seqs
        assert drawn_seqs(other) == [first, last]
        assert first < hers < last  # her two seqs lie between, hidden

        doctor = logged_in(browser, system, "dr_wang")
        open_conv(doctor, name)
        expect(messages_with(doctor, before)).to_be_visible()
        expect(messages_with(doctor, during)).to_be_visible()
        shot(doctor, "group-isolated-owner")
    finally:
        request(system, "dr_wang", "unisolate", conv=conv, member=chen)
    after = say(system, "chen_hong", conv, unique("谢谢医生"))
    expect(other.get_by_test_id(f"msg-{after}")).to_be_visible(timeout=30_000)  # seen again from now on
    expect(messages_with(other, before)).to_have_count(0)  # what she sent up to the lift stays hidden


def test_a_page_of_hidden_seqs_does_not_stop_the_history(
    system: Demo, browser: Browser, group: tuple[str, str]
) -> None:
    """SPEC.md §11.3: 60 messages of an isolated member lie between the doctor's two; the latest page zhao_min's
    chat loads holds only hidden seqs besides his last message, and draws one row. The chat goes on paging back
    by itself, with nothing to scroll, until his first message shows right above his last."""
    conv, name = group
    first = say(system, "dr_wang", conv, unique("第一条通知"))
    chen = member_id(system, conv, "chen_hong")
    request(system, "dr_wang", "isolate", conv=conv, member=chen)
    try:
        async def chatter(client: Client) -> None:
            for n in range(60):
                if n == 40:
                    await trio.sleep(2.5)  # a patient's rate: 20 a second, bursts of 50
                await client.send(conv, f"隔离期间的第{n}条")
        as_user(system, "chen_hong", chatter)
        last = say(system, "dr_wang", conv, unique("第二条通知"))
        other = logged_in(browser, system, "zhao_min")
        open_conv(other, name)
        expect(other.get_by_test_id(f"msg-{first}")).to_be_visible(timeout=30_000)
        assert drawn_seqs(other) == [first, last]
        assert last - first == 61
    finally:
        request(system, "dr_wang", "unisolate", conv=conv, member=chen)


def test_patients_become_friends_where_the_group_allows_it(
    system: Demo, browser: Browser, group: tuple[str, str]
) -> None:
    """IM-5, SPEC.md §11.6: where the group does not allow friends, a patient's sheet of another patient offers
    no friend request; the doctor allows it, liu_fang asks zhao_min (whom she sees by a pseudonym), zhao_min's
    list shows the request at once, she accepts and their direct chat opens, where they write to each other."""
    conv, name = group
    hello = unique("大家好，我也是这周移植")
    say(system, "zhao_min", conv, hello)
    asker_as_seen = sender_as_seen(system, "zhao_min", conv, say(system, "liu_fang", conv, unique("我也是")))
    assert "刘芳" not in asker_as_seen
    asker = logged_in(browser, system, "liu_fang")
    open_conv(asker, name)
    sender = messages_with(asker, hello).get_by_test_id("sender-name")
    pseudonym = sender.inner_text()
    assert re.fullmatch(r"\D+\d{2,}", pseudonym), pseudonym
    sender.click()
    sheet = asker.get_by_test_id("member-sheet")
    expect(sheet.get_by_text("@提醒")).to_be_visible()
    expect(sheet.get_by_text("加为好友")).to_have_count(0)
    sheet.get_by_text("取消").click()

    request(system, "dr_wang", "group_set", conv=conv, allow_friends=True)
    try:
        answerer = logged_in(browser, system, "zhao_min")
        sender.click()
        sheet.get_by_text("加为好友").click()
        expect(asker.locator(".van-toast").filter(has_text="好友申请已发送")).to_be_visible()

        request_row = answerer.get_by_test_id("friend-requests")
        expect(request_row).to_contain_text("请求加您为好友", timeout=30_000)
        expect(request_row).to_contain_text(f"{asker_as_seen} 请求加您为好友")  # a pseudonym, as in the group
        expect(request_row).to_contain_text(f"来自群聊「{name}」")  # which says nothing without its group
        shot(answerer, "friend-request")
        answerer.get_by_test_id("friend-accept").click()
        expect(answerer.get_by_test_id("chat-title")).to_be_visible(timeout=30_000)
        expect(answerer.get_by_test_id("friend-requests")).to_have_count(0)
        text = unique("你好，加个好友互相鼓励")
        answerer.get_by_test_id("composer-input").fill(text)
        answerer.get_by_test_id("composer-send").click()
        expect(answerer.locator("[data-state=sending]")).to_have_count(0, timeout=30_000)
        shot(answerer, "friend-chat")

        asker.get_by_text("返回").click()
        direct = asker.locator("[data-testid^='conv-d:']").filter(has_text=text)
        expect(direct).to_be_visible(timeout=30_000)
        direct.click()
        expect(messages_with(asker, text)).to_be_visible()
    finally:
        request(system, "dr_wang", "group_set", conv=conv, allow_friends=False)


def test_staff_see_a_patients_real_identity_after_a_warning_and_the_look_up_is_audited(
    system: Demo, browser: Browser, group: tuple[str, str]
) -> None:
    """SEC-1, SPEC.md §5.17, §11.9: the doctor taps a patient's name; 查看真实身份 warns that the look-up is
    recorded, then shows her name, username, phone and husband; the audit log has the entry."""
    conv, name = group
    text = unique("医生，我的报告出来了吗？")
    say(system, "chen_hong", conv, text)
    doctor = logged_in(browser, system, "dr_wang")
    open_conv(doctor, name)
    messages_with(doctor, text).get_by_test_id("sender-name").click()
    doctor.get_by_test_id("member-sheet").get_by_text("查看真实身份").click()
    confirm = doctor.locator(".van-dialog").filter(has_text="审计日志")
    expect(confirm).to_be_visible()
    shot(doctor, "identity-confirm")
    confirm.get_by_role("button", name="确定").click()
    shown = doctor.locator(".van-dialog").filter(has_text="真实身份")
    expect(shown).to_contain_text("陈红（chen_hong）")
    expect(shown).to_contain_text("手机号：13800138000")
    expect(shown).to_contain_text("家属：陈红的丈夫")
    shot(doctor, "identity-shown")
    shown.get_by_role("button", name="关闭").click()

    entries = request(system, "admin", "audit", actor="dr_wang", limit=1000)["entries"]
    assert any(e["action"] == "profile_read" and e["target"] == "chen_hong" and e["conv"] == conv for e in entries)
