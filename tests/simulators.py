"""Outside-system simulators for tests, on real sockets in the test's nursery (Hypercorn, as in production),
and their control endpoints."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import trio

from integrations.serving import serve
from integrations.simulator import create_app


async def start_simulator(nursery: trio.Nursery, system: str, **credentials: str) -> str:
    """A fresh simulator served in ``nursery`` (accepting ``credentials``, else the demo ones); its URL.

    ``launcher.demo.start_simulator`` starts one as a process of its own."""
    url: str = await nursery.start(partial(serve, create_app(system, **credentials)))
    return url


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
