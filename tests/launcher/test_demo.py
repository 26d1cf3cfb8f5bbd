"""``make demo`` as a newcomer meets it (README's first line): ``imdemo`` without DATABASE_URL runs its own Postgres,
the server, every bot and the outside systems' simulators; the banner's command works as printed; a patient's
``/help`` names what she may use; the logs are one format; Ctrl-C stops everything quietly with exit status 0.

The demo runs as a process group of its own, started from the repository as ``make demo`` starts it, and is
shared by the tests of this module (started again if a test stopped it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from clients.python import open_client
from launcher.seed import DEMO_PASSWORD, WELCOME
from tests.system import ROOT, Demo

pytestmark = pytest.mark.slow
BOTS = {"echo", "pathway", "ward"}


class Demos:
    """The module's demo, started when a test needs it running."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.current: Demo | None = None

    def running(self) -> Demo:
        if self.current is None or not self.current.running:
            self.current = Demo(private_cluster=self.data)
        return self.current


@pytest.fixture(scope="module")
def demos() -> Iterator[Demos]:
    data = Path(tempfile.mkdtemp(prefix="imdemo-", dir="/var/tmp"))  # the cluster's user must reach it
    demos = Demos(data)
    try:
        yield demos
    finally:
        if demos.current is not None and demos.current.running:
            demos.current.interrupt()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def demo(demos: Demos) -> Demo:
    return demos.running()


async def bots_online(demo: Demo) -> None:
    """Once every bot has logged in (its log says so): a bot reads what is sent after that."""
    def online() -> bool:
        return {entry.get("bot") for entry in demo.logs() if entry["msg"] == "bot online"} >= BOTS
    await trio.to_thread.run_sync(demo.wait_for, online, 60)


async def test_the_demo_serves_its_data_from_its_own_postgres(demo: Demo) -> None:
    async with open_client(demo.url, username="chen_hong", password=DEMO_PASSWORD) as patient:
        page, _ = await patient.history("g:1")
        assert page[0].text == WELCOME
        assert page[0].sender.name == "王医生"
        await patient.send("g:1", "请问移植后可以洗澡吗？")
    assert demo.data is not None and (demo.data / "pgdata" / "postmaster.pid").exists()


async def test_the_banners_command_works_as_printed(demo: Demo) -> None:
    """Pasted into a shell in the repository, where ``make demo`` ran, with the venv not on PATH."""
    (line,) = [line for line in demo.stdout if line.startswith("试一试：")]
    venv = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv)
    pasted = await trio.run_process(["bash", "-c", line.removeprefix("试一试：")], cwd=ROOT, capture_stdout=True,
                                    capture_stderr=True, check=False, env=os.environ | {"PATH": path})
    assert pasted.returncode == 0, pasted.stderr.decode()
    assert WELCOME in [json.loads(printed)["text"] for printed in pasted.stdout.decode().splitlines()]


async def test_the_banners_view_token_command_works_as_printed(demo: Demo) -> None:
    """IM-17: the mini-program's back end as the banner shows it: a view token for chen_hong, opened read-only."""
    (line,) = [line for line in demo.stdout if line.startswith("小程序只读视图：")]
    command, _, rest = line.removeprefix("小程序只读视图：").partition("，")
    pasted = await trio.run_process(["bash", "-c", command], cwd=ROOT, capture_stdout=True, check=False)
    issued = json.loads(pasted.stdout)
    web = re.search(r"打开 (http://\S+/)", rest)
    assert web is not None and issued["path"].startswith("/view#token=")
    async with httpx.AsyncClient() as http:
        assert (await http.get(web.group(1).rstrip("/") + issued["path"])).status_code in (200, 503)  # 503: no build
        assert (await http.get(web.group(1) + "config.json")).json() == {"ws_url": demo.url}
    async with open_client(demo.url, token=issued["token"]) as view:
        assert view.welcome.readonly and view.welcome.user.name == "陈红"
        page, _ = await view.history("g:1")
        assert page[0].text == WELCOME


async def test_a_patients_help_lists_the_commands_she_may_use(demo: Demo) -> None:
    """Sent as soon as the banner is up: the banner waits for the bots, so none misses it."""
    async with open_client(demo.url, username="chen_hong", password=DEMO_PASSWORD) as patient:
        await patient.send("u:pathway", "/help")
        with trio.fail_after(60):
            async for message in patient.messages():
                if message.sender.role == "bot" and "/help" in message.text:
                    break
    assert message.text.splitlines()[0].endswith("可供您使用的命令：")
    assert "/progress" in message.text
    assert "/enroll" not in message.text and "仅供医护人员" not in message.text


async def test_every_bot_and_simulator_runs_beside_it(demo: Demo) -> None:
    async with open_client(demo.url, username="dr_wang", password=DEMO_PASSWORD) as doctor:
        with trio.fail_after(60):
            while True:
                await doctor.send("u:echo", "/help")  # again until a started bot sees one
                with trio.move_on_after(2):
                    async for message in doctor.messages():
                        if message.sender.role == "bot" and "/echo" in message.text:
                            break
                    else:
                        raise AssertionError("messages() ended")
                    break
    # the pathway bot took the demo patient's cycle from the simulated hospital system (EDU-3, EDU-4)
    async with open_client(demo.url, username="chen_hong", password=DEMO_PASSWORD) as patient:
        with trio.fail_after(60):
            async for message in patient.messages():
                if message.sender.role == "bot" and message.text.startswith("【欢迎入群】"):
                    break
    # the outside systems' simulators, each a process, named in the banner (DESIGN rule 8)
    urls = re.findall(r"(?:微信|短信|电话|医院系统) (http://\S+)", "\n".join(demo.stdout))
    assert len(urls) == 4
    async with httpx.AsyncClient() as http:
        for simulator in urls:
            assert (await http.get(f"{simulator}/_sim/received")).status_code == 200


async def test_the_logs_are_one_format_and_each_bot_line_names_its_bot(demo: Demo) -> None:
    await bots_online(demo)
    async with open_client(demo.url, username="chen_hong", password=DEMO_PASSWORD) as patient:
        with trio.fail_after(60):  # her content came from the HIS feed: the pathway bot has polled it
            async for message in patient.messages():
                if message.sender.role == "bot" and message.text.startswith("【欢迎入群】"):
                    break
    logs = demo.logs()  # (each line parses as JSON, or this fails)
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in logs)
    assert all("bot" in entry for entry in logs if entry["logger"].startswith("bots"))
    assert {entry["bot"] for entry in logs if "bot" in entry} == BOTS
    assert [entry for entry in logs if entry["logger"].startswith("httpx")] == []  # no line per HIS poll


def test_ctrl_c_stops_everything_quietly(demos: Demos) -> None:
    demo = demos.running()
    before = len(demo.stderr)
    assert demo.interrupt() == 0
    assert demo.stdout[-1] == "演示已停止。"
    after = "\n".join(demo.stderr[before:])
    assert "Traceback" not in after and "KeyboardInterrupt" not in after, after
    assert all(json.loads(line) for line in demo.stderr[before:])
    assert [e["msg"] for e in demo.logs()[before:] if e["logger"] == "imserver.server"][-1] == "stopped"
    with pytest.raises(ProcessLookupError):
        os.killpg(demo.process.pid, 0)  # no bot, simulator or server process is left
    assert demo.data is not None
    assert not (demo.data / "pgdata" / "postmaster.pid").exists(), "the private Postgres was left running"
