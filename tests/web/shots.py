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
        page.get_by_test_id("chat-title").click()
        page.go_back()
        open_conv(page, "移植群")
        shot(page, args.out, "04-group-patient")

        husband = phone(browser)
        login(husband, args.url, "chen_family")
        open_conv(husband, "移植群")
        shot(husband, args.out, "05-group-husband")

        doctor = phone(browser)
        login(doctor, args.url, "dr_wang")
        shot(doctor, args.out, "06-list-doctor")
        open_conv(doctor, "移植群")
        shot(doctor, args.out, "07-group-doctor")

        viewer = phone(browser)
        viewer.goto(args.url.rstrip("/") + view_token(args.url, "chen_hong"))
        viewer.locator("[data-testid^=conv-]").first.wait_for()
        shot(viewer, args.out, "08-view-list")
        open_conv(viewer, "移植群")
        shot(viewer, args.out, "09-view-group")
        browser.close()


if __name__ == "__main__":
    main()
