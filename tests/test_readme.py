"""README's "Running it for real" lines work as printed, in order, on a fresh database (a newcomer pastes them).

Only what names the reader's own machine is replaced: the database URL, HOST and the port. The first line
activates the venv; here that is putting the ``bin`` of this test's Python first on PATH, which is what it does.
A line that ends in ``&`` runs in the background, and a ``# {...}`` comment is the JSON the line must print.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parent.parent / "README.md"


def real_lines() -> list[str]:
    section = README.read_text("utf-8").split("## Running it for real\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("```\n", 1)[0].splitlines()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BACKGROUND = re.compile(r"^(.*?)\s*&\s*(?:#.*)?$")
"""A line ``COMMAND &  # comment``."""


async def shell(line: str, env: dict[str, str]) -> str:
    with trio.fail_after(60):
        done = await trio.run_process(["bash", "-c", line], env=env, capture_stdout=True, capture_stderr=True,
                                      check=False)
    assert done.returncode == 0, f"{line}\n{done.stderr.decode()}"
    return done.stdout.decode()


async def serving(server: trio.Process) -> None:
    """Wait until the server's log says it listens."""
    assert server.stderr is not None
    lines = b""
    with trio.fail_after(30):
        while b'"msg": "serving"' not in lines:
            chunk = await server.stderr.receive_some()
            assert chunk, f"the server stopped: {lines.decode()}"
            lines += chunk


async def test_running_it_for_real_works_as_printed(db: str) -> None:
    lines = real_lines()
    assert lines[0] == ". .venv/bin/activate"
    assert lines[1].startswith("export DATABASE_URL=")
    port = free_port()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                        "DATABASE_URL": db, "IMSERVER_HTTP_LISTEN": f"127.0.0.1:{free_port()}"}
    here = [line.replace("0.0.0.0:8080", f"127.0.0.1:{port}").replace("HOST:8080", f"127.0.0.1:{port}")
            for line in lines[2:]]
    background: list[trio.Process] = []
    try:
        for line in here:
            command = BACKGROUND.match(line)
            if command:  # (exec env: the process is the command itself, so terminate() reaches it)
                background.append(await trio.lowlevel.open_process(
                    ["bash", "-c", f"exec env {command[1]}"], env=env, stderr=subprocess.PIPE))
                if " run " in line:
                    await serving(background[-1])
                continue
            printed = await shell(line, env)
            expected = re.search(r"#\s*(\{.*\})\s*$", line)
            if expected:
                assert json.loads(printed) == json.loads(expected[1]), line
            if " history " in line:
                assert "明天上午九点移植" in printed
        # The patient listening in the background prints the doctor's message and stops: sent again if it was
        # sent before she was connected.
        (send,) = [line for line in here if " send " in line]
        listener = background[-1]
        with trio.fail_after(30):
            while listener.poll() is None:
                with trio.move_on_after(1):
                    await listener.wait()
                if listener.returncode is None:
                    await shell(send, env)
        assert listener.returncode == 0
    finally:
        for process in background:
            process.terminate()
            with trio.CancelScope(shield=True):
                await process.wait()
