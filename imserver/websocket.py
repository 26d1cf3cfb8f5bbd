"""The server side of WebSocket (RFC 6455) over a trio stream, built for fan-out (NFR-3).

Theory of operation: wsproto does the opening handshake and parses what the
peer sends (masked, possibly fragmented, control frames in between). Data the
server sends does not go through wsproto: :func:`protocol.wsframes.frame` builds one unmasked
binary frame, the caller builds it once per audience and writes the same
bytes object to every connection (:meth:`WebSocket.send_frames`), several
frames joined into one write when a connection has a backlog. wsproto keeps
no state about outgoing data frames other than fragmentation, and we never
fragment, so bypassing it is safe. Control frames (pong, ping, close) are rare
and do go through wsproto, which keeps its state machine in step.

One task reads: the connection's read loop (:meth:`WebSocket.receive_message`)
or, once that has stopped, :meth:`WebSocket.aclose` waiting for the peer's
close. Any task may write, one at a time (a send lock). As soon as either side
has sent a close frame no more messages are delivered or accepted: the
receiver sees :class:`ConnectionClosed`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import trio
from wsproto import ConnectionState, ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason as CloseCode
from wsproto.frame_protocol import FrameDecoder, FrameProtocol, Opcode, RsvBits
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

log = logging.getLogger(__name__)

RECEIVE_BYTES = 65536
"""Largest read from the stream at once."""
REQUEST_LINE = 8192
"""Bytes of the upgrade request kept to read its request line (h11 parses the rest)."""
REPLY_TIMEOUT = 1.0
"""Seconds to spend answering the peer's close frame before just closing TCP."""

@dataclass(frozen=True)
class CloseReason:
    """The close code and reason a WebSocket closed with (RFC 6455 §7)."""

    code: int
    reason: str


class ConnectionClosed(Exception):
    """The WebSocket is closed or closing: no more messages either way. ``reason`` is the first close seen."""

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason)
        self.reason = reason


class HandshakeFailed(Exception):
    """The peer closed, or sent something other than a WebSocket upgrade, before the opening handshake completed."""


ABNORMAL = CloseReason(1006, "")
"""The stream ended without a close frame (RFC 6455 §7.1.5)."""


class MessageLimit(Extension):
    """Refuses a message whose declared length passes the limit on the header that declares it (SPEC.md §2.3).

    Not an extension on the wire: it is never offered nor accepted, and uses no reserved bit. It is
    wsproto's hook on every frame header, the one place that sees a frame's length before its payload;
    without it a frame declaring 2^63 − 1 bytes was read up to the limit before being refused.
    The length of a fragmented message is the sum its frames declare.
    """

    name = "x-imserver-message-limit"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.exceeded = False
        self._declared = 0

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False

    def accept(self, offer: str) -> None:
        return None

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseCode | RsvBits:
        if not opcode.iscontrol():
            start = opcode is not Opcode.CONTINUATION
            self._declared = payload_length + (0 if start else self._declared)
            if self._declared > self.limit:
                self.exceeded = True
                return CloseCode.MESSAGE_TOO_BIG
        return RsvBits(False, False, False)


class WebSocket:
    """An accepted server WebSocket. Made by :func:`serve` (or :func:`accept`), which does the opening handshake."""

    def __init__(self, stream: trio.abc.Stream, *, max_message: int) -> None:
        self.remote = _peer_address(stream)
        self._stream = stream
        self._ws = WSConnection(ConnectionType.SERVER)
        self._limit = MessageLimit(max_message)
        self._send_lock = trio.Lock()
        self._receive_lock = trio.Lock()
        self._parts: list[bytes | bytearray | str] = []
        self._pings: dict[bytes, trio.Event] = {}
        self._closed: CloseReason | None = None
        """Set as soon as a close frame went either way or the stream failed."""
        self._done = False
        """The peer's close frame came (or the stream ended): the close handshake is over."""
        self._broken = False
        """A write was interrupted part-way: no further frame can follow it on this stream."""
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        """For :meth:`write_nowait`; -1 for TLS, whose stream encrypts and writes in its own calls."""
        self._owed: trio.Event | None = None
        """Set while a direct write left a frame half written: until ``send_frames`` writes the rest,
        nothing else may be written (and an abort may not add a close frame)."""
        self.last_heard = trio.current_time()
        """When bytes last came from the peer (a frame, part of one, a pong): what liveness goes by."""

    async def _accept(self) -> None:
        """Read the upgrade request and accept it.

        Error handling: raises HandshakeFailed on EOF or a request that is not a
        WebSocket upgrade (answered with 400 first, when possible); stream errors
        (trio.BrokenResourceError, including a failed TLS handshake) propagate.
        """
        head = b""
        while True:
            for event in self._ws.events():
                if isinstance(event, Request):
                    refusal = _refusal(head, event)
                    if refusal is not None:
                        await self._write(self._ws.send(RejectConnection(status_code=400)))
                        raise HandshakeFailed(refusal)
                    await self._write(self._ws.send(AcceptConnection(extensions=[self._limit])))
                    return
            data = await self._stream.receive_some(RECEIVE_BYTES)
            if not data:
                raise HandshakeFailed("closed before the upgrade request")
            head = (head + data)[:REQUEST_LINE]
            try:
                self._ws.receive_data(cast(bytes, data))
            except (RemoteProtocolError, UnicodeError) as exc:  # wsproto lets a Host that is not IDNA raise
                with contextlib.suppress(LocalProtocolError):  # h11 may refuse to answer at all
                    await self._write(self._ws.send(getattr(exc, "event_hint", None) or RejectConnection()))
                raise HandshakeFailed(repr(exc)) from None

    async def receive_message(self) -> bytes | str:
        """The next whole message (binary as bytes, text as str); answers pings and pongs on the way.

        Error handling: raises ConnectionClosed when the peer closes (its close is
        answered and TCP closed), when the stream ends or breaks, when we have
        begun to close, or when a frame header declares a message over ``max_message``
        (then a close 1009 is sent, none of its payload read; finish with :meth:`aclose`,
        which waits for the answer).
        """
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        self._receive_lock.acquire_nowait()  # no checkpoint; raises if another task is reading
        try:
            while True:
                for event in self._ws.events():
                    if isinstance(event, BytesMessage | TextMessage):
                        message = await self._on_message(event)
                        if message is not None and self._closed is None:  # none once we began to close
                            return message
                    elif isinstance(event, Ping):
                        if self._ws.state is ConnectionState.OPEN:
                            await self._write(self._ws.send(event.response()))
                    elif isinstance(event, Pong):
                        self._on_pong(bytes(event.payload))
                    elif isinstance(event, CloseConnection):
                        await self._on_close(event)
                    if self._closed is not None:
                        raise ConnectionClosed(self._closed)
                await self._receive_some()
        finally:
            self._receive_lock.release()

    async def send_frames(self, data: bytes) -> None:
        """Write frames made by :func:`frame` (one, or several joined into one write).

        After a partial :meth:`write_nowait`, the next call must carry the rest
        of that frame first (the connection's queue keeps that order).

        Error handling: raises ConnectionClosed once either side began to close or the stream failed.
        """
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        await self._write(data, completes=True)

    def write_nowait(self, data: bytes) -> int:
        """Write what the socket takes at once, without a checkpoint or a task switch; returns the bytes written.

        The fan-out path (NFR-3): most frames fit the socket buffer, so queueing
        them for the writer task costs more than the write. Only on plain TCP,
        only while no write is in progress; 0 means "queue it". After a partial
        write the rest must go through :meth:`send_frames` before anything else.
        """
        if self._fd < 0 or self._closed is not None or self._broken or self._owed or self._send_lock.locked():
            return 0
        try:
            written = os.write(self._fd, data)
        except OSError:  # would block, or the stream broke: the writer task finds out and reports it
            return 0
        if written < len(data):
            self._owed = trio.Event()
        return written

    async def ping(self) -> None:
        """Send a ping and wait for its pong; a pong to a later ping answers earlier ones too.

        The pong is seen by whoever reads (:meth:`receive_message`), so someone
        must be reading. Error handling: raises ConnectionClosed if closed.
        """
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        payload = random.getrandbits(32).to_bytes(4, "big")
        answered = self._pings[payload] = trio.Event()
        data = self._ws.send(Ping(payload))
        written = self.write_nowait(data)  # most of the time all of it, without a task switch: 10,000 idle phones
        if written < len(data):
            await self._write(data[written:], completes=written > 0)
        await answered.wait()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (unless one went already), wait for the peer's, then close TCP.

        Run it under a timeout: a peer that never answers is waited for as long
        as the caller lets it. The stream is closed however this ends, even
        when cancelled. Never raises ConnectionClosed.
        """
        try:
            if self._owed is not None:  # the rest of a frame was dropped (abort): nothing may follow
                self._broken = True
            if self._ws.state is ConnectionState.OPEN and not self._done and not self._broken:
                self._closed = self._closed or CloseReason(code, reason)
                await self._write(self._ws.send(CloseConnection(code, reason)))
            while not self._done and not self._broken:  # read until the peer's close; whatever else comes is dropped
                async with self._receive_lock:  # waits while a read loop is still reading: it may see the close
                    if not self._done:
                        await self._drop_until_close()
        except ConnectionClosed:
            pass
        finally:
            await self._close_stream()

    # -- inside ---------------------------------------------------------------------------------

    async def _on_message(self, event: BytesMessage | TextMessage) -> bytes | str | None:
        if not event.message_finished:
            self._parts.append(event.data)
            return None
        parts, self._parts = self._parts, []
        if isinstance(event, TextMessage):
            return "".join([*parts, event.data]) if parts else event.data  # type: ignore[list-item]
        return b"".join([*parts, event.data]) if parts else bytes(event.data)  # type: ignore[list-item]

    def _on_pong(self, payload: bytes) -> None:
        if payload not in self._pings:
            return
        while self._pings:
            key, answered = next(iter(self._pings.items()))
            del self._pings[key]
            answered.set()
            if key == payload:
                return

    async def _on_close(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.OPEN:  # not a close frame: wsproto could not parse the peer's frames
            reason = f"message larger than {self._limit.limit} bytes" if self._limit.exceeded else event.reason
            await self._fail(CloseReason(event.code, reason or ""))
            self._done = True  # the parser is dead, no close can be read: "fail the connection" (RFC 6455 §7.1.7)
            return
        self._done = True
        self._closed = self._closed or CloseReason(event.code, event.reason or "")
        if state is ConnectionState.REMOTE_CLOSING:  # the peer began: answer, then close TCP (RFC 6455 §7.1.1)
            with trio.move_on_after(REPLY_TIMEOUT):
                await self._write(self._ws.send(event.response()))
            await self._close_stream()

    async def _fail(self, reason: CloseReason) -> None:
        """Begin closing because of the peer's input; :meth:`aclose` completes the handshake."""
        self._closed = self._closed or reason
        if self._ws.state is ConnectionState.OPEN and not self._broken:
            await self._write(self._ws.send(CloseConnection(reason.code, reason.reason)))

    async def _drop_until_close(self) -> None:
        while not self._done:
            for event in self._ws.events():
                if isinstance(event, CloseConnection):
                    self._done = True
                    return
            await self._receive_some()

    async def _receive_some(self) -> None:
        try:
            data = await self._stream.receive_some(RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self._done = True
            self._closed = self._closed or ABNORMAL
            await self._close_stream()
            raise ConnectionClosed(self._closed)
        self.last_heard = trio.current_time()
        if self._ws.state is not ConnectionState.CLOSED:
            self._ws.receive_data(cast(bytes, data))

    async def _write(self, data: bytes, *, completes: bool = False) -> None:
        """Write under the send lock; error handling: raises ConnectionClosed if the stream is closed or broken.

        While a frame is half written (``_owed``) only ``completes`` (the rest of it) may go first.
        """
        while self._owed is not None and not completes:
            await self._owed.wait()
        if self._broken:
            raise ConnectionClosed(self._closed or ABNORMAL)
        lock = self._send_lock
        try:
            lock.acquire_nowait()  # no extra checkpoint when nobody else is writing
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await self._stream.send_all(data)
            if completes and self._owed is not None:
                self._owed.set()
                self._owed = None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._broken = self._done = True
            self._closed = self._closed or ABNORMAL
            raise ConnectionClosed(self._closed) from None
        except BaseException:  # cancelled part-way: the peer may hold half a frame, so nothing may follow
            self._broken = True
            raise
        finally:
            lock.release()

    async def _close_stream(self) -> None:
        self._done = True
        self._closed = self._closed or ABNORMAL
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._stream)


def _refusal(head: bytes, request: Request) -> str | None:
    """Why an upgrade request that wsproto accepted is still not one (RFC 6455 §4.1, §4.2.1), or None.

    ``head`` is the start of the request as received: wsproto does not say its HTTP version.
    """
    line = head.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r")
    if not line.endswith(b" HTTP/1.1"):
        return "an upgrade is an HTTP/1.1 request"
    keys = [value for name, value in request.extra_headers if name.lower() == b"sec-websocket-key"]
    try:
        nonce = base64.b64decode(keys[0], validate=True) if len(keys) == 1 else b""
    except binascii.Error:
        nonce = b""
    if len(nonce) != 16:
        return "Sec-WebSocket-Key must be one base64-encoded 16-byte value"
    return None


def _peer_address(stream: trio.abc.Stream) -> str:
    sock = getattr(getattr(stream, "transport_stream", stream), "socket", None)  # through TLS
    try:
        return str(sock.getpeername()[0]) if sock is not None else "?"
    except (OSError, IndexError, TypeError):
        return "?"


Handler = Callable[[WebSocket], Awaitable[None]]


async def accept(stream: trio.abc.Stream, *, max_message: int) -> WebSocket:
    """Do the opening handshake (and the TLS one, for a TLS stream) and return the open WebSocket.

    Run it under a timeout. Error handling: raises HandshakeFailed,
    ConnectionClosed, trio.BrokenResourceError or trio.ClosedResourceError for
    whatever the peer does wrong; the caller closes the stream.
    """
    ws = WebSocket(stream, max_message=max_message)
    await ws._accept()
    return ws


async def serve(
    handler: Handler, host: str, port: int, ssl_context: ssl.SSLContext | None, *,
    handler_nursery: trio.Nursery, max_message: int, handshake_timeout: float,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen on host:port (0 = any free port, reported to ``task_status``) and run ``handler`` per WebSocket.

    A connection that does not complete the opening handshake within
    ``handshake_timeout`` is closed without reaching ``handler``. Handlers run in
    ``handler_nursery``; cancelling this task closes the listening sockets and
    leaves open connections to their nursery. Error handling: what ``handler``
    raises reaches ``handler_nursery``, so it must catch what should not stop
    the server.
    """
    listeners: list[trio.abc.Listener[trio.abc.Stream]]
    if ssl_context is None:
        listeners = list(await trio.open_tcp_listeners(port, host=host))
    else:
        listeners = list(await trio.open_ssl_over_tcp_listeners(port, ssl_context, host=host, https_compatible=True))
    try:
        ports = {_port(listener) for listener in listeners}
        if len(ports) != 1:
            raise ValueError(f"{host}:{port} gave listeners on several ports: {sorted(ports)}")
        task_status.started(ports.pop())
        serve_one = partial(_serve_one, handler, max_message, handshake_timeout)
        await trio.serve_listeners(serve_one, listeners, handler_nursery=handler_nursery)
    finally:
        with trio.CancelScope(shield=True):
            for listener in listeners:
                await listener.aclose()


async def _serve_one(handler: Handler, max_message: int, handshake_timeout: float, stream: trio.abc.Stream) -> None:
    """One connection: handshake, then ``handler``; ``serve_listeners`` closes the stream when this returns."""
    ws = None
    with trio.move_on_after(handshake_timeout):
        try:
            ws = await accept(stream, max_message=max_message)
        except (HandshakeFailed, ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("handshake failed", extra={"remote": _peer_address(stream), "error": repr(exc)})
        except Exception:  # whatever a peer sends must not reach the nursery shared by all connections
            log.warning("handshake failed unexpectedly", extra={"remote": _peer_address(stream)}, exc_info=True)
    if ws is None:
        await trio.aclose_forcefully(stream)
        return
    await handler(ws)


def _port(listener: trio.abc.Listener[trio.abc.Stream]) -> int:
    inner: Any = getattr(listener, "transport_listener", listener)  # through TLS
    port: int = inner.socket.getsockname()[1]
    return port
