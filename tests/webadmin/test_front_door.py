"""The web front door on a real socket, beside a real chat server: the app's page and files with the right caching,
its runtime configuration, and view tokens for the mini-program (IM-17): only with the issuer's key, only for
patients and family, audited, valid for the minutes configured, and read-only whatever the client asks."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import trio

from clients.python import ClientError, open_client
from imserver.admin import Admin
from imserver.config import Settings
from imserver.model import Role
from imserver.store import accounts
from integrations.serving import serve
from protocol.clock import HOSPITAL_ZONE
from tests.conftest import PASSWORD, Running
from tests.helpers import ManualClock
from webadmin.app import ASSET_CACHE, VIEW_TOKENS, WebConfig, web_app

KEY = "mini-program-backend-key-01"
NOW = datetime(2027, 1, 31, 23, 59, tzinfo=HOSPITAL_ZONE)  # a month's last minute in Beijing
PAGE = "<!doctype html><title>生殖中心</title><div id=app></div>"


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A built app as Vite lays it out: index.html and hashed files under assets/."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "assets" / "index-3f9a1c.js").write_text("console.log('app')", encoding="utf-8")
    return tmp_path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


async def front_door(
    server: Running, nursery: trio.Nursery, clock: ManualClock, **overrides: Any
) -> httpx.AsyncClient:
    settings = dataclasses.replace(Settings(listen="0.0.0.0:9443", view_issuer_key=KEY), **overrides)
    config = WebConfig.from_settings(settings)
    url = await nursery.start(serve, web_app(Admin(server.store), config, clock))
    return httpx.AsyncClient(base_url=url)


@pytest.fixture
async def web(
    server: Running, nursery: trio.Nursery, clock: ManualClock, build: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with await front_door(server, nursery, clock, web_root=str(build)) as client:
        yield client


async def test_the_page_is_never_cached_and_its_files_are_cached_for_good(web: httpx.AsyncClient) -> None:
    for path in ("/", "/view"):  # the mini-program's web-view opens /view: the same page, the app picks the mode
        page = await web.get(path)
        assert (page.status_code, page.text, page.headers["cache-control"]) == (200, PAGE, "no-cache"), path
    asset = await web.get("/assets/index-3f9a1c.js")
    assert (asset.status_code, asset.headers["cache-control"]) == (200, ASSET_CACHE)
    missing = await web.get("/assets/index-000000.js")
    assert missing.status_code == 404 and "cache-control" not in missing.headers
    assert (await web.get("/nowhere")).json()["error"] == "not_found"


async def test_the_app_learns_the_websocket_url_at_run_time(
    server: Running, nursery: trio.Nursery, clock: ManualClock, build: Path
) -> None:
    async with await front_door(server, nursery, clock, web_root=str(build)) as web:
        assert (await web.get("/config.json")).json() == {"ws_url": "ws://127.0.0.1:9443/"}  # the demo's default
    public = "wss://im.example-hospital.cn/ws"
    async with await front_door(server, nursery, clock, web_root=str(build), public_ws_url=public) as web:
        answer = await web.get("/config.json")
        assert answer.json() == {"ws_url": public} and answer.headers["cache-control"] == "no-store"


async def test_without_a_build_the_page_says_how_to_make_one(
    server: Running, nursery: trio.Nursery, clock: ManualClock, tmp_path: Path
) -> None:
    async with await front_door(server, nursery, clock, web_root=str(tmp_path / "none")) as web:
        page = await web.get("/")
        assert page.status_code == 503 and "make web" in page.text and "尚未构建" in page.text


async def test_a_view_token_opens_a_read_only_session_whatever_the_client_asks(
    server: Running, web: httpx.AsyncClient
) -> None:
    doctor = await server.user("dr_wang", Role.STAFF, "王医生")
    await server.user("chen_hong", name="陈红")
    async with open_client(server.url, username=doctor.username, password=PASSWORD) as dr:
        group = (await dr.request("group_create", name="移植群", members=["chen_hong"]))["conv"]
        await dr.send(group, "明早八点空腹抽血")
    answer = await web.post(VIEW_TOKENS, json={"username": "chen_hong"}, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 201, answer.text
    issued = answer.json()
    assert issued["path"] == f"/view#token={issued['token']}"
    assert issued["expires_at"] == "2027-02-01T00:59:00+08:00"
    async with open_client(server.url, token=issued["token"], readonly=False) as view:
        assert view.welcome.readonly
        page, _ = await view.history(group)
        assert [m.text for m in page] == ["明早八点空腹抽血"]
        for op, fields in (("send", {"conv": group, "cid": "x", "text": "我能发吗"}),
                           ("upload_begin", {"mime": "image/png", "size": 10, "sha256": "0" * 64}),
                           ("group_create", {"name": "我的群"})):
            with pytest.raises(ClientError) as refused:
                await view.request(op, **fields)
            assert refused.value.code == "read_only", (op, refused.value)
    assert [m.text for m in (await _history_as(server, "chen_hong", group))] == ["明早八点空腹抽血"]


async def _history_as(server: Running, username: str, conv: str) -> list[object]:
    async with open_client(server.url, username=username, password=PASSWORD) as client:
        page, _ = await client.history(conv)
        return list(page)


async def test_a_view_token_lasts_the_minutes_configured_and_is_audited(
    server: Running, web: httpx.AsyncClient
) -> None:
    patient = await server.user("chen_hong")
    auth = {"Authorization": f"Bearer {KEY}"}
    for asked, minutes in ((None, 60), (15, 15), (24 * 60, 60)):  # shorter if asked, never longer
        answer = await web.post(VIEW_TOKENS, json={"username": "chen_hong", "minutes": asked}
                                if asked else {"username": "chen_hong"}, headers=auth)
        assert answer.status_code == 201
        expires = datetime.fromisoformat(answer.json()["expires_at"])
        assert expires == NOW + timedelta(minutes=minutes), asked

    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch("select actor, action, target_id from audit_log where action = 'view_token'")
    rows = await server.store.run("test", txn)
    assert [(r["actor"], r["target_id"]) for r in rows] == [("api:view:1", patient.id)] * 3
    sessions = await server.store.run("test", lambda db: db.fetch("select readonly, expires_at from sessions"))
    assert [(r["readonly"], r["expires_at"] - NOW) for r in sessions] == [
        (True, timedelta(minutes=60)), (True, timedelta(minutes=15)), (True, timedelta(minutes=60))]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-wrong-key"}, {"Authorization": KEY},
                                     {"Authorization": f"Basic {KEY}"}])
async def test_only_the_issuers_key_gets_a_view_token(
    server: Running, web: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    await server.user("chen_hong")
    answer = await web.post(VIEW_TOKENS, json={"username": "chen_hong"}, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_with_no_issuer_key_configured_no_one_gets_a_view_token(
    server: Running, nursery: trio.Nursery, clock: ManualClock, build: Path
) -> None:
    await server.user("chen_hong")
    async with await front_door(server, nursery, clock, web_root=str(build), view_issuer_key="") as web:
        for headers in ({}, {"Authorization": f"Bearer {KEY}"}):
            answer = await web.post(VIEW_TOKENS, json={"username": "chen_hong"}, headers=headers)
            assert answer.status_code == 401, headers


async def test_view_tokens_are_for_active_patients_and_family_only(server: Running, web: httpx.AsyncClient) -> None:
    await server.user("dr_wang", Role.STAFF)
    await server.user("pathway", Role.BOT)
    await server.user("husband", Role.FAMILY)
    banned = await server.user("banned_one")
    await server.store.run("test", accounts.set_banned_txn, banned.id, True)
    auth = {"Authorization": f"Bearer {KEY}"}
    assert (await web.post(VIEW_TOKENS, json={"username": "husband"}, headers=auth)).status_code == 201
    for username in ("dr_wang", "pathway", "banned_one", "nobody"):
        answer = await web.post(VIEW_TOKENS, json={"username": username}, headers=auth)
        assert (answer.status_code, answer.json()["error"]) == (404, "unknown_user"), username
    for body in (b"not json", b"[]", b'{"username": "Chen Hong"}', b'{"username": "chen", "minutes": 0}',
                 b'{"username": "chen", "extra": 1}'):
        answer = await web.post(VIEW_TOKENS, content=body, headers=auth)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_body"), body


def test_an_issuer_key_too_short_to_be_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="view_issuer_key"):
        WebConfig.from_settings(Settings(view_issuer_key="short-key"))
