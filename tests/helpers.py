"""Small helpers for tests that drive the server through the SDK."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import trio

from clients.python import Client
from protocol import Message


async def take(client: Client, count: int, seconds: float = 5) -> list[Message]:
    """The next ``count`` messages from ``client.messages()`` (catching up first)."""
    got: list[Message] = []
    with trio.fail_after(seconds):
        async for message in client.messages():
            got.append(message)
            if len(got) == count:
                break
    return got


async def next_push(client: Client, op: str, seconds: float = 5) -> dict[str, Any]:
    """The next push frame with this ``op``, skipping others."""
    with trio.fail_after(seconds):
        async for frame in client.events():
            if frame["op"] == op:
                return frame
    raise AssertionError("the client's events ended")


def script(name: str) -> str:
    """The path of a console script installed beside this Python (the venv may not be on PATH)."""
    return str(Path(sys.executable).parent / name)
