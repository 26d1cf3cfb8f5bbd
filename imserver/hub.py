"""Who is online: live connections by user and by session, and fan-out to them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TypeVar

import trio

from imserver import metrics
from imserver.connection import Connection

K = TypeVar("K")


class Hub:
    """The node's live connections, by user and by session; queues one frame to many of them at once."""

    def __init__(self) -> None:
        self._by_user: dict[int, set[Connection]] = {}
        self._by_session: dict[uuid.UUID, set[Connection]] = {}
        self._empty = trio.Event()
        self._empty.set()

    def attach(self, client: Connection) -> None:
        assert client.session is not None
        self._by_user.setdefault(client.session.user.id, set()).add(client)
        self._by_session.setdefault(client.session.id, set()).add(client)
        if self._empty.is_set():
            self._empty = trio.Event()
        metrics.CONNECTIONS.inc()

    def detach(self, client: Connection) -> None:
        if client.session is None or client not in self._by_user.get(client.session.user.id, ()):
            return
        _discard(self._by_user, client.session.user.id, client)
        _discard(self._by_session, client.session.id, client)
        metrics.CONNECTIONS.dec()
        if not self._by_user:
            self._empty.set()

    def online(self, user_id: int) -> bool:
        return user_id in self._by_user

    def of_user(self, user_id: int) -> set[Connection]:
        return self._by_user.get(user_id, set())

    def of_session(self, session_id: uuid.UUID) -> set[Connection]:
        return self._by_session.get(session_id, set())

    def connections(self) -> list[Connection]:
        return [c for clients in self._by_user.values() for c in clients]

    def deliver(self, user_ids: Iterable[int], data: bytes, exclude: object = None) -> None:
        """Queue the same WebSocket frame (``connection.framed``, built once) to every connection of these users."""
        by_user = self._by_user
        queued = 0
        for user_id in user_ids:
            for client in by_user.get(user_id, ()):
                if client is not exclude and client.offer(data):
                    queued += 1
        if queued:
            metrics.FRAMES_OUT.inc(queued)  # once per fan-out: an update costs about what queueing a frame does

    async def wait_empty(self) -> None:
        await self._empty.wait()


def _discard(index: dict[K, set[Connection]], key: K, client: Connection) -> None:
    clients = index[key]
    clients.discard(client)
    if not clients:
        del index[key]
