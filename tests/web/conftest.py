"""Browser tests: Debian's chromium driven by Playwright (sync API) from pytest, against the whole system as
``make demo`` runs it (server, bots, simulators, the web front door serving the built app) on a database of the
test session's own, in a phone's viewport.

Every test of this folder runs in one pytest-xdist worker (``xdist_group``), so one system and one browser serve
them all. Screenshots go to ``test-artifacts/screens/`` (git-ignored), to be looked at.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.databases import admin_sql, with_database
from tests.system import ROOT, Demo

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENS = ROOT / "test-artifacts" / "screens"
PHONE = {"width": 390, "height": 844}
"""An iPhone 12-14's viewport in CSS pixels, the size most of the hospital's patients hold."""
BUILD = ROOT / "clients" / "web" / "dist" / "index.html"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def system(postgres: str) -> Iterator[Demo]:
    """The demo system on a fresh database (the bots make schemas of their own in it, so it is dropped after)."""
    assert BUILD.is_file(), "the web app is not built: run `make web` (make test does)"
    name = f"imtest_web_{os.getpid()}"
    admin_sql(postgres, f"drop database if exists {name} with (force)", f"create database {name}")
    demo = Demo(database_url=with_database(postgres, name))
    try:
        yield demo
    finally:
        if demo.running:
            demo.interrupt()
        admin_sql(postgres, f"drop database if exists {name} with (force)")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver on a plain asyncio loop: trio-asyncio (imported by the server's code) would otherwise
    hand it one of its own, which Playwright's greenlets cannot run. Outside trio, trio-asyncio defers to a policy
    set in this thread; inside trio (the other tests) it keeps its own."""
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with sync_playwright() as driver:
            yield driver
    finally:
        asyncio.set_event_loop_policy(None)


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"no chromium at {CHROMIUM}: apt-get install chromium fonts-wqy-microhei"
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
    yield browser
    browser.close()


def phone_context(browser: Browser) -> BrowserContext:
    """A new phone: its own storage (tokens, outbox), Chinese, in Beijing's time zone, touch."""
    return browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                               locale="zh-CN", timezone_id="Asia/Shanghai")


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = phone_context(browser)
    yield context.new_page()
    context.close()


def shot(page: Page, name: str) -> Path:
    """Keep a screenshot of what the page shows now, as ``test-artifacts/screens/<name>.png``."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
