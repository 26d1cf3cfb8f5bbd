"""``imserver demo`` without DATABASE_URL: its own Postgres, demo data, a clean stop on Ctrl-C (README line 1)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from clients.python import open_client
from imserver.demo import DEMO_PASSWORD, WELCOME
from tests.helpers import script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_demo_runs_its_own_postgres_and_stops_on_ctrl_c() -> None:
    data = Path(tempfile.mkdtemp(prefix="imserver-demo-", dir="/var/tmp"))
    ws_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"IMSERVER_DATA": str(data), "IMSERVER_LISTEN": f"127.0.0.1:{ws_port}",
            "IMSERVER_HTTP_LISTEN": f"127.0.0.1:{http_port}"}
    printed = bytearray()
    try:
        async with trio.open_nursery() as nursery:
            process = await nursery.start(partial(
                trio.run_process, [script("imserver"), "demo"], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False,
            ))

            async def keep_output() -> None:
                async for chunk in process.stdout:
                    printed.extend(chunk)
            nursery.start_soon(keep_output)
            url = f"ws://127.0.0.1:{ws_port}/"
            with trio.fail_after(60):
                while True:
                    try:
                        async with open_client(url, username="chen_hong", password=DEMO_PASSWORD) as patient:
                            page, _ = await patient.history("g:1")
                            assert page[0].text == WELCOME
                            assert page[0].sender.name == "王医生"
                            await patient.send("g:1", "请问移植后可以洗澡吗？")
                        break
                    except OSError:
                        await trio.sleep(0.3)
            # and every bot runs beside it (issue 5): the echo bot answers a doctor's /help
            async with open_client(url, username="dr_wang", password=DEMO_PASSWORD) as doctor:
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
            # and the pathway bot took the demo patient's cycle from the simulated hospital system (issue 6)
            async with open_client(url, username="chen_hong", password=DEMO_PASSWORD) as patient:
                with trio.fail_after(60):
                    async for message in patient.messages():
                        if message.sender.role == "bot" and message.text.startswith("【欢迎入群】"):
                            break
            # and the outside systems' simulators, each a process, named in the banner (DESIGN rule 8)
            with trio.fail_after(30):
                while "外部系统模拟器" not in printed.decode(errors="replace"):  # noqa: ASYNC110
                    await trio.sleep(0.1)
            urls = re.findall(r"(?:微信|短信|电话|医院系统) (http://\S+)", printed.decode())
            assert len(urls) == 4
            async with httpx.AsyncClient() as http:
                for simulator in urls:
                    assert (await http.get(f"{simulator}/_sim/received")).status_code == 200
            process.send_signal(signal.SIGINT)
            with trio.fail_after(30):
                await process.wait()
            assert process.returncode == 0
        assert not (data / "pgdata" / "postmaster.pid").exists(), "the private Postgres was left running"
    finally:
        shutil.rmtree(data, ignore_errors=True)
