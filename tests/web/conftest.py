"""Browser tests: Debian's chromium driven by Playwright (sync API) from pytest, against the whole system as
``make demo`` runs it (server, bots, simulators, the web front door serving the built app) on a database of the
test session's own, in a phone's viewport. Screenshots go to ``test-artifacts/screens/`` (git-ignored), to be
looked at.

They run in a pytest process of their own (``make test`` runs ``pytest tests/web`` after the rest): while
Playwright's driver is up, its asyncio loop counts as running in the main thread, and trio-asyncio (the server's
database access) cannot open a loop there. Collected with other tests they are left out, with a note. Inside
this process, talk to the system through the protocol (the Python SDK is pure trio), not through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import urllib.request
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import trio
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, expect, sync_playwright

from clients.python import Client, open_client
from launcher.demo import DEMO_VIEW_KEY
from tests.databases import admin_sql, with_database
from tests.system import ROOT, Demo

T = TypeVar("T")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENS = ROOT / "test-artifacts" / "screens"
PHONE = {"width": 390, "height": 844}
"""An iPhone 12-14's viewport in CSS pixels, the size most of the hospital's patients hold."""
BUILD = ROOT / "clients" / "web" / "dist" / "index.html"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    browser = [item for item in items if here in Path(item.path).parents]
    for item in browser:
        item.add_marker(pytest.mark.slow)
    if browser and len(browser) < len(items):
        config.hook.pytest_deselected(items=browser)
        items[:] = [item for item in items if item not in browser]
        left_out = f"{len(browser)} browser tests left out: they run in a process of their own (pytest tests/web)"
        warnings.warn(pytest.PytestWarning(left_out), stacklevel=1)


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
def playwright(system: Demo) -> Iterator[Playwright]:
    """Playwright's driver on a plain asyncio loop: trio-asyncio (imported by the server's code) would otherwise
    hand it one of its own, which Playwright's greenlets cannot run. Outside trio, trio-asyncio defers to a policy
    set in this thread. It starts after the system, whose set-up uses the database (module docstring)."""
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


SETTLED = """() => document.getAnimations().every(
    a => a.playState !== "running" || a.effect?.getComputedTiming().endTime === Infinity)"""
"""No transition or animation is under way (a sheet or dialog sliding in), but for endless ones (spinners)."""


def shot(page: Page, name: str, element: Locator | None = None) -> Path:
    """Keep a screenshot of what the page shows now (or of ``element``) as ``test-artifacts/screens/<name>.png``."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.wait_for_function(SETTLED)
    if element is None:
        page.screenshot(path=str(path), full_page=False)
    else:
        element.screenshot(path=str(path))
    return path


PASSWORD = "demo1234"
"""Every demo account's password (launcher/seed.py)."""
GROUP = "试管婴儿·移植群"
"""The demo's group of patients, their husband, the doctor and the nurse (launcher/seed.py)."""


def logged_in(browser: Browser, system: Demo, username: str) -> Page:
    """A new phone on which ``username`` logged in through the login screen and sees her conversation list."""
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


def show_message(page: Page, seq: int) -> Locator:
    """The chat's row of message ``seq``, scrolled into view: up or down until the virtual list draws it."""
    for _ in range(80):
        row = page.get_by_test_id(f"msg-{seq}")
        if row.count() > 0:
            row.scroll_into_view_if_needed()
            return row
        drawn = page.locator("[data-testid^=msg-]").evaluate_all("rows => rows.map(r => +r.dataset.testid.slice(4))")
        step = -500 if not drawn or min(drawn) > seq else 500
        page.get_by_test_id("message-list").evaluate("(el, step) => { el.scrollTop += step; }", step)
        page.wait_for_timeout(150)
    raise AssertionError(f"message {seq} is not in the chat")


def messages_with(page: Page, text: str) -> Locator:
    """The chat's message rows that show ``text``."""
    return page.locator("[data-testid^=msg-]").filter(has_text=text)


def view_path(system: Demo, username: str) -> str:
    """What the mini-program's back end gets for ``username`` (docs/web.md): ``/view#token=...``."""
    request = urllib.request.Request(f"{system.web}/api/view-tokens", method="POST",
                                     data=json.dumps({"username": username}).encode(),
                                     headers={"Authorization": f"Bearer {DEMO_VIEW_KEY}"})
    with urllib.request.urlopen(request) as answer:
        return str(json.load(answer)["path"])


def as_user(system: Demo, username: str, act: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``act`` with ``username`` logged in through the Python SDK: another person, on another device."""
    async def run() -> T:
        async with open_client(system.url, username=username, password=PASSWORD, device="pytest") as client:
            return await act(client)
    return trio.run(run)


class Cable:
    """A TCP relay between the browser and the chat server that the test can cut, as a phone loses its network:
    every open connection is closed and new ones are refused until ``mend``. (Chromium's offline emulation does
    not close a WebSocket that is open.)"""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def mend(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
