"""Screenshots of the chat app's main screens in a 390x844 phone viewport, for a person to look at.

Runs Debian's chromium through Playwright for Python against a running demo (``make demo``, or ``imdemo`` with
its ports set), logs in as the demo's patient, husband and doctor and saves a PNG per screen:

    .venv/bin/python tests/web/shots.py --url http://127.0.0.1:8082/ --out /tmp/webapp-shots

Needs ``pip install playwright`` in the venv (no browser download: it drives /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

PASSWORD = "demo1234"
VIEW_KEY = "demo-mini-program-view-key"


def phone(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                                  has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai")
    return context.new_page()


def login(page: Page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_test_id("login-username").locator("input").fill(username)
    page.get_by_test_id("login-password").locator("input").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.locator("[data-testid^=conv-]").first.wait_for()


def open_conv(page: Page, name: str) -> None:
    page.get_by_test_id("conv-name").filter(has_text=name).first.click()
    page.get_by_test_id("chat-title").wait_for()
    page.wait_for_timeout(1500)


def shot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"))
    print(out / f"{name}.png")


def scroll_to(page: Page, test_id: str) -> bool:
    """Scroll the chat up until a row with ``test_id`` is drawn (the list draws only the rows near the view)."""
    for _ in range(60):
        if page.get_by_test_id(test_id).count() > 0:
            page.get_by_test_id(test_id).last.scroll_into_view_if_needed()
            return True
        page.get_by_test_id("message-list").evaluate("el => { el.scrollTop -= 500; }")
        page.wait_for_timeout(150)
    return False


def fill_form_and_sign(page: Page, out: Path) -> None:
    """The pathway's form: sent empty first (a message per field), then filled in; then the consent signed."""
    assert scroll_to(page, "form-open")
    page.get_by_test_id("form-open").last.click()
    page.get_by_test_id("form-submit").click()
    shot(page, out, "03a-form-errors")
    page.get_by_test_id("form-field-height").locator("input").fill("163")
    page.get_by_test_id("form-field-weight").locator("input").fill("52.5")
    page.get_by_test_id("form-field-last_period").locator("input").fill("2026-11-20")
    page.get_by_test_id("form-field-allergy").get_by_text("无", exact=True).click()
    shot(page, out, "03b-form-filled")
    page.get_by_test_id("form-submit").click()
    page.get_by_test_id("form-reply").last.wait_for()  # her answer, at the end (the form has scrolled away)
    if not scroll_to(page, "consent-open"):
        return  # signed in an earlier run
    page.get_by_test_id("consent-open").last.click()
    pad = page.get_by_test_id("signature-pad")
    page.wait_for_timeout(600)  # the sheet slides up: where the pad is once it stands still
    box = pad.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 40, box["y"] + 120)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 40 + step * 9, box["y"] + 120 - (step % 7) * 12)
    page.mouse.up()
    shot(page, out, "03c-signature")
    page.get_by_test_id("signature-confirm").click()
    page.get_by_test_id("signature").last.wait_for()
    page.wait_for_timeout(2500)
    shot(page, out, "03d-done")


def quick_reply(page: Page, out: Path) -> None:
    """A doctor types /yz: the quick reply asks its fill-in and which patient, then goes out filled in.
    Needs a quick reply ``yz`` of dr_wang with ``{{patient}}`` and ``{{?小时}}`` (imclient qr add)."""
    page.get_by_test_id("composer-input").fill("/yz")
    page.get_by_test_id("quick-reply-yz").wait_for()
    shot(page, out, "07a-quick-panel")
    page.get_by_test_id("quick-reply-yz").click()
    page.get_by_test_id("qr-prompt-小时").locator("input").fill("2")
    page.get_by_test_id("quick-prompts").locator(".van-radio").first.click()
    shot(page, out, "07b-quick-prompts")
    page.get_by_test_id("quick-send").click()
    page.wait_for_timeout(2000)


def view_token(url: str, username: str) -> str:
    request = urllib.request.Request(f"{url.rstrip('/')}/api/view-tokens", method="POST",
                                     data=json.dumps({"username": username}).encode(),
                                     headers={"Authorization": f"Bearer {VIEW_KEY}"})
    with urllib.request.urlopen(request) as answer:
        return str(json.load(answer)["path"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8082/")
    parser.add_argument("--out", type=Path, default=Path("/tmp/webapp-shots"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        page = phone(browser)
        page.goto(args.url)
        page.get_by_test_id("login-submit").wait_for()
        shot(page, args.out, "01-login")
        login(page, args.url, "chen_hong")
        page.wait_for_timeout(1500)
        shot(page, args.out, "02-list-patient")
        open_conv(page, "pathway")
        shot(page, args.out, "03-service-pathway")
        fill_form_and_sign(page, args.out)
        page.go_back()
        open_conv(page, "移植群")
        page.get_by_test_id("composer-input").fill("王医生您好，移植后可以洗澡吗？")
        page.get_by_test_id("composer-send").click()
        page.wait_for_timeout(1500)
        shot(page, args.out, "04-group-patient")

        other = phone(browser)
        login(other, args.url, "zhao_min")
        open_conv(other, "移植群")
        shot(other, args.out, "04b-group-other-patient")

        husband = phone(browser)
        login(husband, args.url, "chen_family")
        open_conv(husband, "移植群")
        shot(husband, args.out, "05-group-husband")

        doctor = phone(browser)
        login(doctor, args.url, "dr_wang")
        shot(doctor, args.out, "06-list-doctor")
        open_conv(doctor, "移植群")
        shot(doctor, args.out, "07-group-doctor")
        quick_reply(doctor, args.out)
        doctor.get_by_test_id("sender-name").filter(has_text="陈红").first.click()
        doctor.wait_for_timeout(800)
        shot(doctor, args.out, "07c-member-sheet")
        doctor.keyboard.press("Escape")

        viewer = phone(browser)
        viewer.goto(args.url.rstrip("/") + view_token(args.url, "chen_hong"))
        viewer.locator("[data-testid^=conv-]").first.wait_for()
        shot(viewer, args.out, "08-view-list")
        open_conv(viewer, "移植群")
        shot(viewer, args.out, "09-view-group")
        browser.close()


if __name__ == "__main__":
    main()
