"""Small helpers for tests that drive the server through the SDK."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import trio

from clients.python import Client
from clients.python.client import Event, Lost
from protocol import Message, decode_frame, encode


async def take(client: Client, count: int, seconds: float = 5) -> list[Message]:
    """The next ``count`` messages from ``client.messages()`` (catching up first)."""
    got: list[Message] = []
    with trio.fail_after(seconds):
        async for message in client.messages():
            got.append(message)
            if len(got) == count:
                break
    return got


def as_frame(event: Event) -> dict[str, Any]:
    """An event from ``Client.events`` as the frame the server sent, which the SDK decoded and checked against the
    contract; a lost connection as ``{"op": "_lost", "code": ..., "reason": ...}``."""
    if isinstance(event, Lost):
        return {"op": "_lost", "code": event.code, "reason": event.reason}
    return decode_frame(encode(event))


async def next_push(client: Client, op: str, seconds: float = 5) -> dict[str, Any]:
    """The next push frame with this ``op``, skipping others."""
    with trio.fail_after(seconds):
        async for event in client.events():
            if (frame := as_frame(event))["op"] == op:
                return frame
    raise AssertionError("the client's events ended")


def script(name: str) -> str:
    """The path of a console script installed beside this Python (the venv may not be on PATH)."""
    return str(Path(sys.executable).parent / name)
