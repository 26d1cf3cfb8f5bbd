"""The chat app in a phone's browser against the whole demo system (issue 15): what a patient, her husband, a
doctor and a mini-program viewer see and may do. Each test logs in on phones of its own; screenshots of every
main screen are kept (conftest). The system is shared by the tests, so each one writes texts of its own and
looks only for those."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Browser, expect

from clients.python import Client
from tests.system import Demo
from tests.web.conftest import (
    GROUP,
    Cable,
    as_user,
    logged_in,
    messages_with,
    open_conv,
    phone_context,
    scroll_to,
    shot,
    view_path,
)


def unique(text: str) -> str:
    """``text`` with a tag of its own, so that a test finds its own messages in the shared system."""
    return f"{text}#{uuid.uuid4().hex[:6]}"


def test_the_login_screen_and_a_patients_conversation_list(system: Demo, browser: Browser) -> None:
    """IM-19: a patient logs in; her list pins her service conversation with the pathway bot above her groups."""
    page = phone_context(browser).new_page()
    page.goto(system.web)
    page.get_by_test_id("login-submit").click()  # nothing typed: told what is missing, not sent
    expect(page.get_by_test_id("login-username")).to_be_visible()
    shot(page, "login")
    page.close()
    page = logged_in(browser, system, "chen_hong")
    names = page.get_by_test_id("conv-name")
    expect(names.filter(has_text="pathway")).to_be_visible(timeout=60_000)
    expect(names.filter(has_text=GROUP)).to_be_visible()
    assert "pathway" in names.first.inner_text()  # the service conversation is pinned on top
    shot(page, "list-patient")


def test_a_patient_fills_her_form_and_signs_her_consent_and_the_bot_records_both(
    system: Demo, browser: Browser
) -> None:
    """EDU-2: the pathway form refuses an empty answer field by field, and a day the calendar does not have (a day
    reads YYYY-MM-DD as she types it); then her answer goes and the bot thanks her for it; she signs the consent
    on the canvas and the bot records the signature; both show as done, with no toast laid over the chat."""
    page = logged_in(browser, system, "chen_hong")
    expect(page.get_by_test_id("conv-name").filter(has_text="pathway")).to_be_visible(timeout=60_000)
    open_conv(page, "pathway")
    shot(page, "service-pathway")
    scroll_to(page, "form-open")
    page.get_by_test_id("form-open").last.click()
    page.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("form-field-height").get_by_test_id("form-error")).to_have_text("请填写身高（cm）")
    expect(page.get_by_test_id("form-field-allergy").get_by_test_id("form-error")).to_have_text("请选择过敏史")
    shot(page, "form-errors")
    page.get_by_test_id("form-field-height").locator("input").fill("163")
    page.get_by_test_id("form-field-weight").locator("input").fill("52.5")
    day = page.get_by_test_id("form-field-last_period")
    day.locator("input").fill("2026/02/30")  # shaped as she types: YYYY-MM-DD, never the browser's 02/30/2026
    expect(day.locator("input")).to_have_value("2026-02-30")
    page.get_by_test_id("form-field-allergy").get_by_text("无", exact=True).click()
    page.get_by_test_id("form-submit").click()
    expect(day.get_by_test_id("form-error")).to_have_text("末次月经日期应为有效日期，按“年-月-日”填写，如 2026-11-20")
    shot(page, "form-day")
    day.locator("input").fill("20261120")
    expect(day.locator("input")).to_have_value("2026-11-20")
    page.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("form-sheet")).to_be_hidden()
    assert not page.locator(".van-toast").is_visible()  # nothing over the chat: her answer shows in it
    expect(page.get_by_test_id("bubble").filter(has_text="已收到您填写的「建档基本信息」").last).to_be_visible(
        timeout=30_000)
    scroll_to(page, "consent-open")
    page.get_by_test_id("consent-open").last.click()
    pad = page.get_by_test_id("signature-pad")
    expect(pad).to_be_visible()
    page.wait_for_timeout(600)  # the sheet slides up: draw where the pad is once it stands still
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 40, box["y"] + box["height"] / 2)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 40 + step * 9, box["y"] + box["height"] / 2 - (step % 7) * 10)
    page.mouse.up()
    shot(page, "signature-pad")
    page.get_by_test_id("signature-confirm").click()
    expect(page.get_by_test_id("signature-sheet")).to_be_hidden()
    assert not page.locator(".van-toast").is_visible()  # no 已签署 toast over the cards
    expect(page.get_by_test_id("bubble").filter(has_text="已收到您对「辅助生殖治疗知情同意书」的签名").last
           ).to_be_visible(timeout=30_000)
    scroll_to(page, "form-done")
    expect(page.get_by_test_id("form-done").last).to_be_visible()
    scroll_to(page, "consent-done")
    expect(page.get_by_test_id("consent-done").last).to_be_visible()
    shot(page, "form-and-consent-done")


def test_a_patient_sees_another_patient_by_pseudonym_and_the_doctor_with_title(system: Demo, browser: Browser) -> None:
    """IM-6, IM-7: what one patient writes in the group reaches another under a pseudonym; the doctor keeps his
    name and title."""
    text = unique("请问移植后可以上班吗？")
    writer = logged_in(browser, system, "liu_fang")
    open_conv(writer, GROUP)
    writer.get_by_test_id("composer-input").fill(text)
    writer.get_by_test_id("composer-send").click()
    expect(writer.locator("[data-state=sending]")).to_have_count(0, timeout=30_000)
    reader = logged_in(browser, system, "zhao_min")
    open_conv(reader, GROUP)
    message = messages_with(reader, text).last
    expect(message).to_be_visible()
    expect(message.get_by_test_id("sender-name")).not_to_have_text("刘芳")
    expect(message.get_by_test_id("sender-name")).to_have_text(re.compile(r"^\D+\d{2,}$"))
    scroll_to(reader, "sender-title")
    doctor = reader.locator("[data-testid^=msg-]").filter(has=reader.get_by_test_id("sender-title")).first
    expect(doctor.get_by_test_id("sender-name")).to_have_text("王医生")
    expect(doctor.get_by_test_id("sender-title")).to_have_text("主任医师")
    shot(reader, "group-patient")


def test_the_husband_has_no_input_bar_in_a_read_only_group(system: Demo, browser: Browser) -> None:
    """IM-9: family only read in a group whose family_can_speak is off (the demo group's default)."""
    page = logged_in(browser, system, "chen_family")
    open_conv(page, GROUP)
    expect(page.get_by_test_id("family-readonly")).to_be_visible()
    expect(page.get_by_test_id("composer-input")).to_have_count(0)
    shot(page, "group-husband")


def test_a_mention_only_message_reaches_its_patient_and_not_another(system: Demo, browser: Browser) -> None:
    """IM-10: the doctor picks 仅TA可见 for chen_hong in the member list; she sees the message, marked as for her
    only; zhao_min, in the same group, sees the doctor's next message but never that one."""
    private, public = unique("陈红，您的报告已出，请单独来诊室"), unique("大家好，明天门诊照常")
    doctor = logged_in(browser, system, "dr_wang")
    shot(doctor, "list-doctor")
    open_conv(doctor, GROUP)
    doctor.get_by_test_id("open-members").click()
    doctor.get_by_test_id("member-list").get_by_text("陈红", exact=True).first.click()
    doctor.get_by_test_id("member-sheet").get_by_text("仅TA可见").click()
    expect(doctor.get_by_test_id("only-chip")).to_be_visible()
    doctor.get_by_test_id("composer-input").fill(private)
    shot(doctor, "mention-only-composer")
    doctor.get_by_test_id("composer-send").click()
    expect(messages_with(doctor, private).get_by_test_id("only-mark")).to_be_visible(timeout=30_000)
    doctor.get_by_test_id("composer-input").fill(public)
    doctor.get_by_test_id("composer-send").click()
    expect(doctor.locator("[data-state=sending]")).to_have_count(0, timeout=30_000)

    patient = logged_in(browser, system, "chen_hong")
    open_conv(patient, GROUP)
    expect(messages_with(patient, private).get_by_test_id("only-mark")).to_be_visible(timeout=30_000)
    shot(patient, "mention-only-seen")
    other = logged_in(browser, system, "zhao_min")
    open_conv(other, GROUP)
    expect(messages_with(other, public)).to_be_visible(timeout=30_000)
    expect(messages_with(other, private)).to_have_count(0)


def test_a_doctor_sends_a_quick_reply_with_its_variables_filled(system: Demo, browser: Browser) -> None:
    """MSG-3: typing / offers the doctor's quick replies; the one chosen asks its fill-in and which patient it is
    for, and goes out filled in (the patient named as the group knows her)."""
    shortcut = f"fc{uuid.uuid4().hex[:4]}"

    async def save(client: Client) -> None:
        await client.save_quick_reply(shortcut, "复查提醒", "{{patient}}您好，请于{{?小时}}小时后复查。——{{me}}")
    as_user(system, "dr_wang", save)
    doctor = logged_in(browser, system, "dr_wang")
    open_conv(doctor, GROUP)
    doctor.get_by_test_id("composer-input").fill(f"/{shortcut}")
    expect(doctor.get_by_test_id(f"quick-reply-{shortcut}")).to_be_visible(timeout=30_000)
    shot(doctor, "quick-reply-panel")
    doctor.get_by_test_id(f"quick-reply-{shortcut}").click()
    doctor.get_by_test_id("qr-prompt-小时").locator("input").fill("2")
    doctor.get_by_test_id("quick-prompts").get_by_text("陈红").first.click()
    shot(doctor, "quick-reply-prompts")
    doctor.get_by_test_id("quick-send").click()
    sent = messages_with(doctor, "小时后复查").filter(has_text="请于2小时后复查。——王医生").last
    expect(sent).to_be_visible(timeout=30_000)
    assert "{{" not in sent.inner_text()

    patient = logged_in(browser, system, "chen_hong")
    open_conv(patient, GROUP)
    expect(messages_with(patient, "请于2小时后复查。——王医生").last).to_be_visible(timeout=30_000)


def test_a_message_sent_while_the_network_is_down_arrives_once_and_so_do_the_missed_ones(
    system: Demo, browser: Browser
) -> None:
    """IM-19, DESIGN rule 2: her phone loses the network (the connection cut, the browser offline) while she sends;
    the banner says so and the message waits as 发送中. Meanwhile the doctor writes. When the network returns the
    app reconnects by itself: her message is stored once, and the doctor's arrives, once."""
    mine, missed = unique("断网时发的消息"), unique("医生在您断网时的回复")
    cable = Cable(system.ws_port)
    context = phone_context(browser)
    try:
        context.route("**/config.json", lambda route: route.fulfill(
            json={"ws_url": f"ws://127.0.0.1:{cable.port}/"}, headers={"Cache-Control": "no-store"}))
        page = context.new_page()
        page.goto(system.web)
        page.get_by_test_id("login-username").locator("input").fill("zhao_min")
        page.get_by_test_id("login-password").locator("input").fill("demo1234")
        page.get_by_test_id("login-submit").click()
        open_conv(page, GROUP)

        cable.cut()
        context.set_offline(True)
        expect(page.get_by_test_id("offline-banner")).to_be_visible(timeout=30_000)
        page.get_by_test_id("composer-input").fill(mine)
        page.get_by_test_id("composer-send").click()
        expect(page.get_by_test_id("pending-sending")).to_be_visible()
        shot(page, "offline-sending")

        async def reply(client: Client) -> None:
            await client.send("g:1", missed)
        as_user(system, "dr_wang", reply)

        context.set_offline(False)
        cable.mend()
        expect(page.get_by_test_id("offline-banner")).to_have_count(0, timeout=60_000)
        expect(messages_with(page, missed)).to_have_count(1, timeout=60_000)
        expect(page.locator("[data-testid^=pending-]")).to_have_count(0, timeout=30_000)
        expect(messages_with(page, mine)).to_have_count(1)
        shot(page, "reconnected")
    finally:
        context.close()
        cable.close()

    async def stored(client: Client) -> list[str]:
        page, _ = await client.history("g:1", limit=100)
        return [m.text for m in page]
    texts = as_user(system, "dr_wang", stored)
    assert (texts.count(mine), texts.count(missed)) == (1, 1)


def test_the_view_link_opens_read_only_and_leaves_the_address_bar(system: Demo, browser: Browser) -> None:
    """IM-17: the mini-program's view token opens her chats without any input bar or member actions, and the token
    is taken out of the address bar (kept for the tab only)."""
    page = phone_context(browser).new_page()
    page.goto(system.web + view_path(system, "chen_hong"))
    expect(page.get_by_test_id("view-note")).to_be_visible(timeout=30_000)
    assert "token=" not in page.url
    shot(page, "view-list")
    open_conv(page, GROUP)
    expect(page.get_by_test_id("readonly-note")).to_be_visible()
    expect(page.get_by_test_id("composer-input")).to_have_count(0)
    expect(page.get_by_test_id("open-members")).to_have_count(0)
    shot(page, "view-group")
