"""One client connection: its outbound queue, its rate limit and how it closes (DESIGN rule 6).

Frames for a connection are queued without waiting (``push``) and written by
the connection's own writer task, so a slow client never stalls the code that
fans a message out to many. A client whose queue overflows is disconnected and
resyncs when it reconnects.
"""

from __future__ import annotations

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from imserver import metrics
from imserver.model import Session
from protocol import ErrorCode, ProtocolError, ServerSession, encode

CLOSE_TIMEOUT = 1.0
"""Seconds to wait for the peer's answer to our close frame before closing TCP."""


class TokenBucket:
    """``rate`` requests per second with bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = trio.current_time()

    def take(self) -> float:
        """0 if a request may go now, else the seconds to wait."""
        now = trio.current_time()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class Connection:
    """An open WebSocket and what the server knows about it."""

    def __init__(self, ws: WebSocketConnection, *, remote: str, max_frame: int, queue: int) -> None:
        self.ws = ws
        self.remote = remote
        self.protocol = ServerSession(max_frame)
        self.session: Session | None = None
        self.limiter: TokenBucket | None = None
        self._out_send, self._out_recv = trio.open_memory_channel[bytes](queue)
        self._close: tuple[int, str] = (1000, "")
        self._finishing = False
        self.cancel_scope = trio.CancelScope()
        self.last_seen = trio.current_time()
        """When the last frame arrived; the keep-alive pings after ``idle_timeout`` of silence."""

    @property
    def user_id(self) -> int:
        assert self.session is not None
        return self.session.user.id

    def push(self, frame: bytes) -> None:
        """Queue a frame without waiting; overflow disconnects the client (slow consumer)."""
        if self._finishing:
            return
        try:
            self._out_send.send_nowait(frame)
        except trio.WouldBlock:
            self.abort(4000, ErrorCode.SLOW_CONSUMER)
            return
        metrics.FRAMES_OUT.inc()

    def reply(self, rid: int, **fields: object) -> None:
        self.push(encode({"op": "ok", "rid": rid, **fields}))

    def fail(self, error: ProtocolError) -> None:
        metrics.ERRORS.labels(str(error.code)).inc()
        self.push(encode(error.frame()))
        if error.fatal:
            self.finish(1008, error.code, bye=False)

    def finish(self, code: int, reason: ErrorCode, *, bye: bool = True) -> None:
        """Close after the frames already queued (and a ``bye``) are written."""
        if self._finishing:
            return
        if bye:
            self.push(encode(ProtocolError(reason).frame() | {"op": "bye"}))
        self._finishing = True
        self._close = (code, str(reason))
        metrics.DISCONNECTS.labels(str(reason)).inc()
        self._out_send.close()

    def abort(self, code: int, reason: ErrorCode) -> None:
        """Close now, dropping what is queued."""
        if not self._finishing:
            metrics.DISCONNECTS.labels(str(reason)).inc()
        self._finishing = True
        self._close = (code, str(reason))
        self.cancel_scope.cancel()

    @property
    def finishing(self) -> bool:
        return self._finishing

    def queued(self) -> int:
        return self._out_recv.statistics().current_buffer_used

    async def run_writer(self) -> None:
        """Write queued frames until ``finish``; then close the WebSocket with its reason."""
        try:
            async for frame in self._out_recv:
                await self.ws.send_message(frame)
            with trio.move_on_after(CLOSE_TIMEOUT):  # a peer that never answers the close is cut off
                await self.ws.aclose(*self._close)
        except ConnectionClosed:
            pass

    async def aclose_now(self) -> None:
        """Close the socket after an abort, without waiting long for the peer."""
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await self.ws.aclose(*self._close)
