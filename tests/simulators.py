"""Outside-system simulators for tests, on real sockets: in the test's nursery (Hypercorn, as in production)
or as a process of their own (``python -m integrations.simulator``), and their control endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from typing import Any

import httpx
import trio

from integrations.simulation import serve
from integrations.simulator import create_app


async def start_simulator(nursery: trio.Nursery, system: str) -> str:
    """A fresh simulator served in ``nursery``; its URL."""
    url: str = await nursery.start(partial(serve, create_app(system)))
    return url


async def start_simulator_process(nursery: trio.Nursery, system: str) -> tuple[trio.Process, str]:
    """``python -m integrations.simulator SYSTEM --port 0`` in ``nursery``; the process and the URL it printed."""
    process: trio.Process = await nursery.start(partial(
        trio.run_process, [sys.executable, "-m", "integrations.simulator", system, "--port", "0"],
        stdout=subprocess.PIPE, check=False,
    ))
    assert process.stdout is not None
    line = b""
    with trio.fail_after(30):
        while not line.endswith(b"\n"):
            line += await process.stdout.receive_some(1)
    return process, str(json.loads(line)["url"])


async def faults(url: str, **given: Any) -> None:
    """Tell the simulator at ``url`` to fail, hang or be slow (integrations.simulation)."""
    async with httpx.AsyncClient() as http:
        (await http.post(f"{url}/_sim/faults", json=given)).raise_for_status()


async def received(url: str) -> dict[str, list[dict[str, Any]]]:
    """What the simulator at ``url`` received: ``requests`` (every one) and ``messages`` (each sent once)."""
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{url}/_sim/received")
        answer.raise_for_status()
        result: dict[str, list[dict[str, Any]]] = answer.json()
        return result
