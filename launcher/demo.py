"""The whole system on one machine with demo data, for a first look (``imdemo``; README's first line).

Without DATABASE_URL it runs a private Postgres cluster under IMSERVER_DATA (default ``./.imserver-data``) and
stops it when the demo stops; the data stays for the next run. The server runs in this process; every bot
(``imbot run NAME``) and every outside system's simulator (``python -m integrations.simulator``: WeChat, SMS,
robot calls, the hospital system) is a process of its own, started and stopped with it.

Stopping (Ctrl-C, or SIGINT/SIGTERM to this process): the server shuts down gracefully, then the bots and the
simulators are stopped, then the private Postgres. A terminal's Ctrl-C reaches every process of the group at
once; each of them stops quietly on it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import httpx
import trio

from imserver.admin import Admin
from imserver.cli import serve_until_signal
from imserver.config import Settings, split_hostport
from imserver.pgcluster import PrivateCluster
from imserver.server import Addresses
from imserver.store.migrate import create_database, migrate
from integrations.serving import serve as serve_web
from launcher import texts
from launcher.seed import DEMO_PASSWORD, GROUP, PHONES, USERS, seed, seed_bots
from pgtrio.bridge import Store, open_store
from protocol.clock import Clock
from webadmin.app import VIEW_TOKENS, WebConfig, web_app

DATABASE = "imserver"
SIMULATORS = ("wechat", "sms", "phone", "his")
DEMO_OUTSIDE_KEY = "demo-outside-key"
"""The simulators' API key (WeChat: its app secret), given to them and to the bots."""
DEMO_VIEW_KEY = "demo-mini-program-view-key"
"""The demo's key for view tokens (docs/web.md), unless view_issuer_key is set."""
DEMO_WECHAT_APP_ID = "wx0000demo0000"
DEMO_WECHAT_TEMPLATE = "demo-template-notice"
_IMBOT = [sys.executable, "-m", "bots.cli"]
BOTS_ONLINE_WITHIN = 60
"""Seconds the banner waits for every bot to log in; after that it is printed all the same."""


def run_demo(settings: Settings, clock: Clock) -> None:
    """Run the demo until it is stopped (module docstring); ``clock`` dates the demo patient's cycle."""
    if settings.database_url:
        trio.run(_serve_demo, settings, clock)
        return
    data = Path(os.environ.get("IMSERVER_DATA", ".imserver-data")).resolve()
    print(texts.NO_DATABASE.format(data=data), flush=True)
    cluster = PrivateCluster(data)
    with cluster:
        trio.run(_create_database, cluster.dsn)
        trio.run(_serve_demo, dataclasses.replace(settings, database_url=cluster.dsn_for(DATABASE)), clock)


async def _create_database(admin_dsn: str) -> None:
    async with open_store(admin_dsn, min_size=1, max_size=1) as store:
        await create_database(store, DATABASE)


async def _serve_demo(settings: Settings, clock: Clock) -> None:
    async with open_store(settings.database_url, max_size=settings.db_pool_size) as store:
        await migrate(store)
        group_id = await seed(store)
        bots = await _bot_names()
        await seed_bots(store, bots, group_id)
        await _serve(store, settings, clock, group_id, bots)


async def _serve(store: Store, settings: Settings, clock: Clock, group_id: int, bots: list[str]) -> None:
    """The server, the simulators and the bots, until the server stops on a signal; then the others."""
    async with trio.open_nursery() as nursery:
        async def serve(*, task_status: trio.TaskStatus[Addresses]) -> None:
            await serve_until_signal(store, settings, task_status=task_status)
            nursery.cancel_scope.cancel()  # the server has stopped: stop the bots and simulators too
        addresses: Addresses = await nursery.start(serve)
        url = f"{'wss' if settings.tls_cert else 'ws'}://127.0.0.1:{addresses.ws_port}/"
        web = await nursery.start(serve_web, web_app(Admin(store), web_config(settings, url), clock),
                                  *split_hostport(settings.web_listen))
        outside = {system: await start_simulator(nursery, system) for system in SIMULATORS}
        await _publish_demo_cycle(outside["his"], clock)
        online = {name: trio.Event() for name in bots}
        for name in bots:
            nursery.start_soon(_run_bot, name, url, settings.database_url, outside, online[name])
        with trio.move_on_after(BOTS_ONLINE_WITHIN):  # a /help sent before a bot is online is never answered
            for event in online.values():
                await event.wait()
        print(banner(settings, addresses, web, group_id, bots, outside), flush=True)


async def _bot_names() -> list[str]:
    """The bots this install has, asked of ``imbot list``."""
    listed = await trio.run_process([*_IMBOT, "list"], capture_stdout=True)
    return [json.loads(line)["name"] for line in listed.stdout.decode().splitlines() if line.strip()]


async def _run_bot(name: str, url: str, dsn: str, outside: dict[str, str], online: trio.Event) -> None:
    """One bot as its own process (``imbot run``, its state in its own schema), stopped when the demo stops;
    its outbox reaches the simulators (bots/README.md, "Notify someone"). Its log lines are passed on to ours;
    ``online`` is set when one says it is online, or when it stops."""
    env = os.environ | {"IMBOT_URL": url, "IMBOT_PASSWORD": DEMO_PASSWORD, "IMBOT_DATABASE_URL": dsn}
    command = partial(trio.run_process, [*_IMBOT, "run", name], env=env | outside_env(outside),
                      stderr=subprocess.PIPE, check=False)
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(command)
        assert process.stderr is not None
        async for line in _lines(process.stderr):
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
            if b'"msg": "bot online"' in line:
                online.set()
    online.set()


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[bytes]:
    """The lines of ``stream``, each with its newline, until it ends."""
    pending = b""
    async for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending + b"\n"


def outside_env(urls: dict[str, str]) -> dict[str, str]:
    """The IMBOT_* variables that point a bot's outbox (and the pathway bot's HIS feed) at these simulators
    (``system``: URL)."""
    return {f"IMBOT_{system.upper()}_URL": url for system, url in urls.items()} | {
        "IMBOT_WECHAT_APP_ID": DEMO_WECHAT_APP_ID, "IMBOT_WECHAT_SECRET": DEMO_OUTSIDE_KEY,
        "IMBOT_WECHAT_TEMPLATE": DEMO_WECHAT_TEMPLATE, "IMBOT_SMS_KEY": DEMO_OUTSIDE_KEY,
        "IMBOT_SMS_SIGN": "生殖中心", "IMBOT_PHONE_KEY": DEMO_OUTSIDE_KEY, "IMBOT_HIS_KEY": DEMO_OUTSIDE_KEY,
    }


async def _publish_demo_cycle(his_url: str, clock: Clock) -> None:
    """The simulated hospital system says the demo patient started an IVF cycle yesterday, with her contacts: the
    pathway bot picks it up from the feed and sends her file-building content (docs/pathway.md). The event id
    is fixed, so a demo started again on another day changes nothing."""
    yesterday = (clock() - timedelta(days=1)).date().isoformat()  # so her first content is already due
    event = {"type": "cycle_started", "id": "demo-cycle-chen_hong", "pathway": "ivf", "day": yesterday,
             "patient": {"username": "chen_hong", "his_id": "D0001", "phone": PHONES["chen_hong"], "openid": "o-demo"}}
    async with httpx.AsyncClient() as http:
        (await http.post(f"{his_url}/_sim/events", json=[event])).raise_for_status()


async def start_simulator(nursery: trio.Nursery, system: str) -> str:
    """The simulator of an outside system as a process in ``nursery`` (stopped with it); the URL it listens on.

    Error handling: TooSlowError if it does not say where it listens within 30 s; RuntimeError if it stops first.
    """
    command = [sys.executable, "-m", "integrations.simulator", system, "--port", "0",
               "--app-id", DEMO_WECHAT_APP_ID, "--secret", DEMO_OUTSIDE_KEY, "--api-key", DEMO_OUTSIDE_KEY]
    process: trio.Process = await nursery.start(partial(trio.run_process, command, stdout=subprocess.PIPE,
                                                        check=False))
    assert process.stdout is not None
    with trio.fail_after(30):
        async for line in _lines(process.stdout):
            return str(json.loads(line)["url"])
    raise RuntimeError(f"the {system} simulator stopped before it listened")


def installed(script: str) -> str:
    """How to call a console script of this install from the current directory, as a shell word: the venv's
    ``bin`` is not on PATH (``make install`` does not activate it), so ``.venv/bin/imclient`` in the repository,
    else the absolute path."""
    path = Path(sys.executable).parent / script
    relative = os.path.relpath(path)
    return shlex.quote(str(path) if relative.startswith("..") else relative)


def web_config(settings: Settings, ws_url: str) -> WebConfig:
    """The front door as the demo serves it: the app connects to the demo's server (unless ``public_ws_url`` says
    otherwise), and the mini-program's back end may ask for view tokens with the demo key."""
    return WebConfig.from_settings(dataclasses.replace(
        settings, public_ws_url=settings.public_ws_url or ws_url,
        view_issuer_key=settings.view_issuer_key or DEMO_VIEW_KEY,
    ))


def banner(
    settings: Settings, addresses: Addresses, web: str, group_id: int, bots: list[str], outside: dict[str, str]
) -> str:
    """What a newcomer reads once everything is up: addresses, accounts, and commands that work as printed."""
    host = settings.listen.rpartition(":")[0]
    url = f"{'wss' if settings.tls_cert else 'ws'}://{host}:{addresses.ws_port}/"
    try_it = (f"IMCLIENT_PASSWORD={DEMO_PASSWORD} {installed('imclient')} --url {url} --user chen_hong"
              f" history g:{group_id}")
    key = "$IMSERVER_VIEW_ISSUER_KEY" if settings.view_issuer_key else DEMO_VIEW_KEY  # a real key is not printed
    view_it = (f"curl -s -X POST {web}{VIEW_TOKENS} -H \"Authorization: Bearer {key}\""
               """ -d '{"username": "chen_hong"}'""")
    return texts.BANNER.format(
        url=url, http=f"http://{settings.http_listen.rpartition(':')[0]}:{addresses.http_port}", web=f"{web}/",
        password=DEMO_PASSWORD, accounts="、".join(texts.ACCOUNT.format(username=u, name=n) for u, n, _, _ in USERS),
        group=f"g:{group_id}", group_name=GROUP, bots="、".join(bots), try_it=try_it, view_it=view_it, **outside,
    )
