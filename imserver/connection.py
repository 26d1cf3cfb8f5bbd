"""One client connection: its outbound queue, its rate limit and how it closes (DESIGN rule 6).

Frames for a connection are queued without waiting (``push``) and written by
the connection's own writer task, so a slow client never stalls the code that
fans a message out to many. A client whose queue overflows is disconnected and
resyncs when it reconnects. What is queued is already a WebSocket frame
(``framed``), built once per audience and shared by every connection in it
(NFR-3); a writer that falls behind writes what has piled up in one go.
"""

from __future__ import annotations

import msgspec
import trio

from imserver import metrics
from imserver.model import Session
from imserver.websocket import ConnectionClosed, WebSocket
from protocol import MESSAGES_ZH, ErrorCode, ProtocolError, ServerSession, encode
from protocol.frames import Bye, Ok
from protocol.wsframes import frame

CLOSE_TIMEOUT = 1.0
"""Seconds to wait for the peer's answer to our close frame before closing TCP."""
COALESCE_BYTES = 64 * 1024
"""A writer with a backlog joins queued frames into one write of at most this many bytes (plus one frame).

Queued frames are shared by all connections, the joined copy is not: a slow connection blocked in a write
holds one, so this bounds memory per slow connection. At ~300 bytes a frame it is still ~200 frames a write.
"""


def framed(message: msgspec.Struct) -> bytes:
    """A protocol frame (its struct in ``protocol.frames``) as the WebSocket frame that carries it: build it once,
    push it to everyone who gets it."""
    return frame(encode(message))


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


_backlogged: set[Connection] = set()
"""Connections with frames waiting in their queue. The outbound-queue gauge sums only these: summing over every
connection cost a scrape tens of milliseconds at 10,000 idle phones (issue 14 item 1), and few are ever behind."""
metrics.OUTBOUND_QUEUE.set_function(lambda: sum(c.queued() for c in _backlogged))


class Connection:
    """An open WebSocket and what the server knows about it."""

    def __init__(self, ws: WebSocket, *, remote: str, max_frame: int, queue: int) -> None:
        self.ws = ws
        self.remote = remote
        self.protocol = ServerSession(max_frame)
        self.session: Session | None = None
        self.limiter: TokenBucket | None = None
        self._out_send, self._out_recv = trio.open_memory_channel[bytes](queue)
        self._close: tuple[int, str] = (1000, "")
        self._finishing = False
        self._backlog = False
        """Frames are queued or held by the writer task: a direct write now would overtake them."""
        self.cancel_scope = trio.CancelScope()

    @property
    def user_id(self) -> int:
        assert self.session is not None
        return self.session.user.id

    def push(self, data: bytes) -> None:
        """Queue a WebSocket frame (``framed``) without waiting; overflow disconnects the client (slow consumer)."""
        if self.offer(data):
            metrics.FRAMES_OUT.inc()

    def offer(self, data: bytes) -> bool:
        """``push`` without counting it in the metrics: a fan-out counts all its frames with one update.

        Returns whether the frame was queued.
        """
        if self._finishing:
            return False
        if not self._backlog:
            written = self.ws.write_nowait(data)  # the common case: straight into the socket buffer
            if written == len(data):
                return True
            data = data[written:]
        try:
            self._out_send.send_nowait(data)
            if not self._backlog:
                self._backlog = True
                _backlogged.add(self)
        except trio.WouldBlock:
            self.abort(4000, ErrorCode.SLOW_CONSUMER)
            return False
        return True

    def reply(self, answer: Ok) -> None:
        self.push(framed(answer))

    def fail(self, error: ProtocolError) -> None:
        metrics.ERRORS.labels(str(error.code)).inc()
        self.push(framed(error.error_frame()))
        if error.fatal:
            self.finish(1008, error.code, bye=False)

    def finish(self, code: int, reason: ErrorCode, *, bye: bool = True) -> None:
        """Close after the frames already queued (and a ``bye``) are written."""
        if self._finishing:
            return
        if bye:
            self.push(framed(Bye(code=str(reason), message=MESSAGES_ZH[reason])))
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

    async def keep_alive(self, idle_timeout: float, pong_timeout: float) -> None:
        """Ping after ``idle_timeout`` in which nothing came from the peer; finish if nothing answers within
        ``pong_timeout`` (SPEC.md §2.4).

        Whatever the peer sends counts, a pong included: a silent client that answers pings is pinged once
        per ``idle_timeout``. Runs beside the task that reads (``ws.receive_message``), which sees the pong.
        """
        ws = self.ws
        while not self._finishing:
            heard = ws.last_heard
            await trio.sleep_until(heard + idle_timeout)
            if ws.last_heard != heard:
                continue  # the peer spoke meanwhile: wait out a full idle_timeout from then
            with trio.move_on_after(pong_timeout):
                try:
                    await ws.ping()
                except ConnectionClosed:
                    return
            if ws.last_heard == heard:
                self.finish(4001, ErrorCode.IDLE_TIMEOUT)
                return

    async def run_writer(self) -> None:
        """Write queued frames until ``finish``; then close the WebSocket with its reason.

        After each wait it takes whatever else is queued (up to ``COALESCE_BYTES``)
        and writes it with one ``send_all``: a busy connection costs one write per
        backlog, not one per frame.
        """
        queue = self._out_recv
        try:
            async for data in queue:
                size = len(data)
                if size < COALESCE_BYTES:
                    chunks = [data]
                    while size < COALESCE_BYTES:
                        try:
                            more = queue.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        chunks.append(more)
                        size += len(more)
                    if len(chunks) > 1:
                        data = b"".join(chunks)
                await self.ws.send_frames(data)
                if not queue.statistics().current_buffer_used:
                    self._backlog = False
                    _backlogged.discard(self)
            with trio.move_on_after(CLOSE_TIMEOUT):  # a peer that never answers the close is cut off
                await self.ws.aclose(*self._close)
        except ConnectionClosed:
            pass
        finally:
            _backlogged.discard(self)

    async def aclose_now(self) -> None:
        """Close the socket after an abort, without waiting long for the peer."""
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await self.ws.aclose(*self._close)
