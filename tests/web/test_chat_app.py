"""The chat app in a phone's browser against the whole demo system (issue 15): what a patient, her husband and a
mini-program viewer see and may do. Each test logs in on a phone of its own; screenshots are kept (conftest)."""

from __future__ import annotations

import json
import re
import urllib.request

from playwright.sync_api import Browser, Page, expect

from tests.system import Demo
from tests.web.conftest import phone_context, shot

PASSWORD = "demo1234"
VIEW_KEY = "demo-mini-program-view-key"
GROUP = "试管婴儿·移植群"


def logged_in(browser: Browser, system: Demo, username: str) -> Page:
    page = phone_context(browser).new_page()
    page.goto(system.web)
    page.get_by_test_id("login-username").locator("input").fill(username)
    page.get_by_test_id("login-password").locator("input").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("conv-name").first).to_be_visible(timeout=30_000)
    return page


def open_conv(page: Page, name: str) -> None:
    page.get_by_test_id("conv-name").filter(has_text=name).first.click()
    expect(page.get_by_test_id("chat-title")).to_contain_text(name)


def scroll_to(page: Page, test_id: str) -> None:
    """Scroll the chat up until a row with ``test_id`` is drawn (the virtual list draws rows near the view only)."""
    for _ in range(60):
        if page.get_by_test_id(test_id).count() > 0:
            page.get_by_test_id(test_id).last.scroll_into_view_if_needed()
            return
        page.get_by_test_id("message-list").evaluate("el => { el.scrollTop -= 500; }")
        page.wait_for_timeout(150)
    raise AssertionError(f"no {test_id} in the chat")


def test_a_patient_fills_her_form_and_the_bot_records_it(system: Demo, browser: Browser) -> None:
    """EDU-2: the pathway form refuses an empty answer field by field, then her answer is sent and the bot
    thanks her for it; the form shows as done."""
    page = logged_in(browser, system, "chen_hong")
    expect(page.get_by_test_id("conv-name").filter(has_text="pathway")).to_be_visible(timeout=60_000)
    open_conv(page, "pathway")
    scroll_to(page, "form-open")
    page.get_by_test_id("form-open").last.click()
    page.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("form-field-height").get_by_test_id("form-error")).to_have_text("请填写身高（cm）")
    expect(page.get_by_test_id("form-field-allergy").get_by_test_id("form-error")).to_have_text("请选择过敏史")
    shot(page, "form-errors")
    page.get_by_test_id("form-field-height").locator("input").fill("163")
    page.get_by_test_id("form-field-weight").locator("input").fill("52.5")
    page.get_by_test_id("form-field-last_period").locator("input").fill("2026-11-20")
    page.get_by_test_id("form-field-allergy").get_by_text("无", exact=True).click()
    page.get_by_test_id("form-submit").click()
    expect(page.get_by_test_id("form-reply").last).to_be_visible()
    expect(page.get_by_test_id("bubble").filter(has_text="已收到您填写的").last).to_be_visible(timeout=30_000)
    scroll_to(page, "form-done")
    shot(page, "form-done")


def test_a_patient_sees_another_patient_by_pseudonym_and_the_doctor_with_title(system: Demo, browser: Browser) -> None:
    """IM-6, IM-7: what one patient writes in the group reaches another under a pseudonym; the doctor keeps his
    name and title."""
    writer = logged_in(browser, system, "liu_fang")
    open_conv(writer, GROUP)
    writer.get_by_test_id("composer-input").fill("请问移植后可以上班吗？")
    writer.get_by_test_id("composer-send").click()
    expect(writer.locator("[data-state=sending]")).to_have_count(0, timeout=30_000)
    reader = logged_in(browser, system, "zhao_min")
    open_conv(reader, GROUP)
    message = reader.locator("[data-testid^=msg-]").filter(has_text="请问移植后可以上班吗？").last
    expect(message).to_be_visible()
    expect(message.get_by_test_id("sender-name")).not_to_have_text("刘芳")
    expect(message.get_by_test_id("sender-name")).to_have_text(re.compile(r"^\D+\d{2,}$"))
    doctor = reader.locator("[data-testid^=msg-]").filter(has_text="欢迎加入移植群").first
    expect(doctor.get_by_test_id("sender-name")).to_have_text("王医生")
    expect(doctor.get_by_test_id("sender-title")).to_have_text("主任医师")
    shot(reader, "group-pseudonyms")


def test_the_husband_has_no_input_bar_in_a_read_only_group(system: Demo, browser: Browser) -> None:
    """IM-9: family only read in a group whose family_can_speak is off (the demo group's default)."""
    page = logged_in(browser, system, "chen_family")
    open_conv(page, GROUP)
    expect(page.get_by_test_id("family-readonly")).to_be_visible()
    expect(page.get_by_test_id("composer-input")).to_have_count(0)
    shot(page, "husband-read-only")


def test_the_view_link_opens_read_only_and_leaves_the_address_bar(system: Demo, browser: Browser) -> None:
    """IM-17: the mini-program's view token opens her chats without any input bar, and the token is taken out of
    the address bar (kept for the tab only)."""
    request = urllib.request.Request(f"{system.web}/api/view-tokens", method="POST",
                                     data=json.dumps({"username": "chen_hong"}).encode(),
                                     headers={"Authorization": f"Bearer {VIEW_KEY}"})
    with urllib.request.urlopen(request) as answer:
        path = json.load(answer)["path"]
    page = phone_context(browser).new_page()
    page.goto(system.web + path)
    expect(page.get_by_test_id("view-note")).to_be_visible(timeout=30_000)
    assert "token=" not in page.url
    open_conv(page, GROUP)
    expect(page.get_by_test_id("readonly-note")).to_be_visible()
    expect(page.get_by_test_id("composer-input")).to_have_count(0)
    expect(page.get_by_test_id("open-members")).to_have_count(0)
    shot(page, "view-mode")
