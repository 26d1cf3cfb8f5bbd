"""``imserver demo``: the whole system on one machine with demo data, for a first look.

Without DATABASE_URL it runs a private Postgres cluster under IMSERVER_DATA
(default ``./.imserver-data``) and stops it on Ctrl-C; the data stays for the
next run. Demo accounts are created once; every one has the password below.
The outside systems the bots notify through (WeChat, SMS, robot calls) are
simulators, each a process of its own (``python -m integrations.simulator``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import trio

from imserver.actions.accounts import do_create_user, do_link_family
from imserver.actions.base import Actor, Context
from imserver.actions.conversations import do_add_member, do_create_group
from imserver.actions.words import do_set_word
from imserver.cli import serve_until_signal
from imserver.config import Settings
from imserver.model import MemberRole, Role, User
from imserver.pgcluster import PrivateCluster
from imserver.server import Addresses
from imserver.store import accounts, conversations
from imserver.store.messages import Draft, write_batch
from imserver.store.migrate import create_database, migrate
from imserver.words import Policy
from pgtrio.bridge import Store, open_store
from protocol.frames import Sender

DEMO_PASSWORD = "demo1234"
DATABASE = "imserver"
USERS = [
    ("admin", "系统管理员", Role.ADMIN, ""),
    ("dr_wang", "王医生", Role.STAFF, "主任医师"),
    ("nurse_li", "李护士", Role.STAFF, "护士长"),
    ("chen_hong", "陈红", Role.PATIENT, ""),
    ("zhao_min", "赵敏", Role.PATIENT, ""),
    ("liu_fang", "刘芳", Role.PATIENT, ""),
    ("chen_family", "陈红的丈夫", Role.FAMILY, ""),
]
WORDS = [("代孕", "block"), ("卖卵", "block"), ("微信", "mask"), ("QQ", "flag")]
GROUP = "试管婴儿·移植群"
WELCOME = "欢迎加入移植群！移植前后有任何疑问，都可以在群里提问，医生和护士会及时回复。"


def run_demo(settings: Settings) -> None:
    if settings.database_url:
        trio.run(_serve_demo, settings)
        return
    data = Path(os.environ.get("IMSERVER_DATA", ".imserver-data")).resolve()
    print(f"未配置 DATABASE_URL：在 {data} 启动内置 PostgreSQL …", flush=True)
    with PrivateCluster(data) as cluster_dsn:
        trio.run(_create_database, cluster_dsn)
        dsn = cluster_dsn.replace("/postgres?", f"/{DATABASE}?", 1)
        trio.run(_serve_demo, dataclasses.replace(settings, database_url=dsn))


async def _create_database(admin_dsn: str) -> None:
    async with open_store(admin_dsn, min_size=1, max_size=1) as store:
        await create_database(store, DATABASE)


async def _serve_demo(settings: Settings) -> None:
    async with open_store(settings.database_url, max_size=settings.db_pool_size) as store:
        await migrate(store)
        group_id = await seed(store)
        bots = await _bot_names()
        await _seed_bots(store, bots, group_id)
        async with trio.open_nursery() as nursery:
            async def serve(*, task_status: trio.TaskStatus[Addresses]) -> None:
                await serve_until_signal(store, settings, task_status=task_status)
                nursery.cancel_scope.cancel()  # the server has stopped: stop the bots too
            addresses: Addresses = await nursery.start(serve)
            url = f"{'wss' if settings.tls_cert else 'ws'}://127.0.0.1:{addresses.ws_port}/"
            outside = {system: await start_simulator(nursery, system) for system in SIMULATORS}
            await _publish_demo_cycle(outside["his"])
            for name in bots:
                nursery.start_soon(_run_bot, name, url, settings.database_url, outside)
            _banner(settings, addresses, group_id, bots, outside)


async def _bot_names() -> list[str]:
    """The bots this install has, asked of ``imbot list`` (the server does not import bots: STYLE.md)."""
    listed = await trio.run_process([*_IMBOT, "list"], capture_stdout=True)
    return [json.loads(line)["name"] for line in listed.stdout.decode().splitlines() if line.strip()]


async def _seed_bots(store: Store, names: list[str], group_id: int) -> None:
    """A bot account per bot (its name, the demo password), each an admin of the demo group."""
    ctx, operator = Context(store), Actor.operator()
    for name in names:
        bot = await accounts.user_by_name(store, name)
        if bot is None:
            bot = await do_create_user(ctx, operator, name, f"{name} 机器人", Role.BOT, DEMO_PASSWORD)
        await do_add_member(ctx, operator, group_id, bot.id, MemberRole.ADMIN)


async def _run_bot(name: str, url: str, dsn: str, outside: dict[str, str]) -> None:
    """One bot as its own process (``imbot run``, its state in its own schema), stopped when the demo stops;
    its outbox reaches the simulators (bots/README.md, "Notify someone")."""
    env = os.environ | {"IMBOT_URL": url, "IMBOT_PASSWORD": DEMO_PASSWORD, "IMBOT_DATABASE_URL": dsn}
    await trio.run_process([*_IMBOT, "run", name], env=env | outside_env(outside), check=False)


def outside_env(urls: dict[str, str]) -> dict[str, str]:
    """The IMBOT_* variables that point a bot's outbox (and the pathway bot's HIS feed) at these simulators
    (``system``: URL)."""
    return {f"IMBOT_{system.upper()}_URL": url for system, url in urls.items()} | {
        "IMBOT_WECHAT_APP_ID": DEMO_WECHAT_APP_ID, "IMBOT_WECHAT_SECRET": DEMO_OUTSIDE_KEY,
        "IMBOT_WECHAT_TEMPLATE": DEMO_WECHAT_TEMPLATE, "IMBOT_SMS_KEY": DEMO_OUTSIDE_KEY,
        "IMBOT_SMS_SIGN": "生殖中心", "IMBOT_PHONE_KEY": DEMO_OUTSIDE_KEY, "IMBOT_HIS_KEY": DEMO_OUTSIDE_KEY,
    }


async def _publish_demo_cycle(his_url: str) -> None:
    """The simulated hospital system says the demo patient started an IVF cycle yesterday, with her contacts: the
    pathway bot picks it up from the feed and sends her file-building content (docs/pathway.md). The event id
    is fixed, so a demo started again on another day changes nothing."""
    yesterday = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).date().isoformat()  # content is due
    event = {"type": "cycle_started", "id": "demo-cycle-chen_hong", "pathway": "ivf", "day": yesterday,
             "patient": {"username": "chen_hong", "his_id": "D0001", "phone": "13800138000", "openid": "o-demo"}}
    async with httpx.AsyncClient() as http:
        (await http.post(f"{his_url}/_sim/events", json=[event])).raise_for_status()


_IMBOT = [sys.executable, "-m", "bots.cli"]
SIMULATORS = ("wechat", "sms", "phone", "his")
DEMO_OUTSIDE_KEY = "demo-outside-key"
"""The simulators' API key (WeChat: its app secret), given to them and to the bots."""
DEMO_WECHAT_APP_ID = "wx0000demo0000"
DEMO_WECHAT_TEMPLATE = "demo-template-notice"


async def start_simulator(nursery: trio.Nursery, system: str) -> str:
    """The simulator of an outside system as a process in ``nursery`` (stopped with it); the URL it listens on.

    Error handling: TooSlowError if it does not say where it listens within 30 s.
    """
    command = [sys.executable, "-m", "integrations.simulator", system, "--port", "0",
               "--app-id", DEMO_WECHAT_APP_ID, "--secret", DEMO_OUTSIDE_KEY, "--api-key", DEMO_OUTSIDE_KEY]
    process: trio.Process = await nursery.start(partial(trio.run_process, command, stdout=subprocess.PIPE,
                                                        check=False))
    assert process.stdout is not None
    line = b""
    with trio.fail_after(30):
        while not line.endswith(b"\n"):
            line += await process.stdout.receive_some(1)
    return str(json.loads(line)["url"])


async def seed(store: Store) -> int:
    """Create the demo accounts and group once, as an operator would; return the group's id."""
    ctx, operator = Context(store), Actor.operator()
    if await accounts.user_by_name(store, USERS[0][0]) is None:
        for username, name, role, title in USERS:
            await do_create_user(ctx, operator, username, name, role, DEMO_PASSWORD, title=title)
    found = await conversations.group_by_name(store, GROUP)
    if found is not None:
        return found
    users: dict[str, User] = {}
    for username, _, _, _ in USERS:
        user = await accounts.user_by_name(store, username)
        assert user is not None
        users[username] = user
    doctor, wife, husband = users["dr_wang"], users["chen_hong"], users["chen_family"]
    await do_link_family(ctx, operator, wife, husband, "husband")  # he follows her into her groups
    for word, policy in WORDS:
        await do_set_word(ctx, operator, word, Policy(policy))
    patients = [u.id for u in users.values() if u.role is Role.PATIENT]
    conv_id = await do_create_group(ctx, operator, GROUP, doctor.id, patients)
    await do_add_member(ctx, operator, conv_id, users["nurse_li"].id, MemberRole.ADMIN)
    sender = Sender(doctor.ref, doctor.display_name, str(doctor.role))
    await store.run("seed", write_batch, [Draft(conv_id, doctor.id, sender, "text", WELCOME, None, "demo-welcome")])
    return conv_id


def _banner(settings: Settings, addresses: Addresses, group_id: int, bots: list[str], outside: dict[str, str]) -> None:
    host = settings.listen.rpartition(":")[0]
    scheme = "wss" if settings.tls_cert else "ws"
    print(
        f"\n聊天服务已启动：{scheme}://{host}:{addresses.ws_port}/"
        f"\n健康检查与指标：http://{settings.http_listen.rpartition(':')[0]}:{addresses.http_port}/healthz  /metrics"
        f"\n演示账号（密码均为 {DEMO_PASSWORD}）：" + "、".join(f"{u}（{n}）" for u, n, _, _ in USERS)
        + f"\n演示群：g:{group_id}（{GROUP}）"
        + f"\n机器人（已在演示群中，也可私聊，发送 /help）：{'、'.join(bots)}"
        + f"\n外部系统模拟器（收到的通知见 /_sim/received）：微信 {outside['wechat']}  短信 {outside['sms']}"
        f"  电话 {outside['phone']}  医院系统 {outside['his']}"
        "\n宣教助手：模拟医院系统已为 chen_hong 建立试管婴儿周期，她会在与 pathway 的私聊中收到建档宣教"
        f"\n试一试：IMCLIENT_PASSWORD={DEMO_PASSWORD} imclient --url {scheme}://{host}:{addresses.ws_port}/"
        f" --user chen_hong history g:{group_id}"
        "\n按 Ctrl-C 停止。\n",
        flush=True,
    )
