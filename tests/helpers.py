"""Small helpers for tests that drive the server through the SDK."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import trio

from clients.python import Client
from clients.python.client import Event, Lost
from pgtrio.bridge import Store
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


async def database_now(store: Store) -> datetime:
    """The database's clock, which stamps what the server records with ``now()`` (audit entries, sessions). A test
    comparing times with those reads this, not the machine's clock: the two differ under tests/run_at.sh."""
    async def txn(db: asyncpg.Connection) -> datetime:
        now: datetime = await db.fetchval("select now()")
        return now
    return await store.run("test_database_now", txn, transaction=False)


def script(name: str) -> str:
    """The path of a console script installed beside this Python (the venv may not be on PATH)."""
    return str(Path(sys.executable).parent / name)


class ManualClock:
    """A ``protocol.clock.Clock`` that stands still until the test moves it (DESIGN rule 10): what is due, leased or
    overdue is decided by the test, never by the hour it runs at."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._reads = 0
        self._read = trio.Event()

    def __call__(self) -> datetime:
        self._reads += 1
        self._read.set()
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    async def wait_read(self, times: int = 1) -> None:
        """Until the time has been asked ``times`` more. A jobs runner with nothing to run asks it before each
        claim, so two more reads mean it finished a claim begun after this call: it has seen what was due then."""
        until = self._reads + times
        while self._reads < until:
            self._read = trio.Event()
            await self._read.wait()
