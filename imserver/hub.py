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
    def __init__(self) -> None:
        self._by_user: dict[int, set[Connection]] = {}
        self._by_session: dict[uuid.UUID, set[Connection]] = {}
        self._empty = trio.Event()
        self._empty.set()
        metrics.OUTBOUND_QUEUE.set_function(lambda: sum(c.queued() for c in self.connections()))

    def attach(self, conn: Connection) -> None:
        assert conn.session is not None
        self._by_user.setdefault(conn.session.user.id, set()).add(conn)
        self._by_session.setdefault(conn.session.id, set()).add(conn)
        if self._empty.is_set():
            self._empty = trio.Event()
        metrics.CONNECTIONS.inc()

    def detach(self, conn: Connection) -> None:
        if conn.session is None or conn not in self._by_user.get(conn.session.user.id, ()):
            return
        _discard(self._by_user, conn.session.user.id, conn)
        _discard(self._by_session, conn.session.id, conn)
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
        return [c for conns in self._by_user.values() for c in conns]

    def deliver(self, user_ids: Iterable[int], data: bytes, exclude: object = None) -> None:
        """Queue the same WebSocket frame (``connection.framed``, built once) to every connection of these users."""
        by_user = self._by_user
        queued = 0
        for user_id in user_ids:
            for conn in by_user.get(user_id, ()):
                if conn is not exclude and conn.offer(data):
                    queued += 1
        if queued:
            metrics.FRAMES_OUT.inc(queued)  # once per fan-out: an update costs about what queueing a frame does

    async def wait_empty(self) -> None:
        await self._empty.wait()


def _discard(index: dict[K, set[Connection]], key: K, conn: Connection) -> None:
    conns = index[key]
    conns.discard(conn)
    if not conns:
        del index[key]
