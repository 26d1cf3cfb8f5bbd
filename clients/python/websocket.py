"""The client side of WebSocket over a trio stream: the opening handshake and the frames after it.

Why not trio-websocket: it gives every connection a reader task and a queue,
and parses frame by frame in a general state machine; a bot in a hundred
groups, or a load generator holding thousands of connections, spends most of
its CPU there. Here the caller's own task reads: one ``receive_some`` brings
many frames, ``protocol.wsframes`` parses them in one loop, and
``receive_message`` hands them out one by one. Pings are answered as they are
read; writes from several tasks take turns (a lock).
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
from collections import deque
from urllib.parse import urlsplit

import trio

from protocol import wsframes

RECEIVE_BYTES = 1 << 16
MAX_HEAD = 16 * 1024
"""Largest handshake answer we read; a server sends a few hundred bytes."""
CLOSE_WAIT = 1.0
"""Seconds to wait for the server's answer to our close frame."""
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ConnectionClosed(Exception):
    """The WebSocket is closed: by the server (its close ``code`` and ``reason``), or the TCP connection was lost."""

    def __init__(self, code: int | None = None, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed ({code} {reason})")


class HandshakeError(ConnectionError):
    """The server did not accept the WebSocket (an HTTP error, or not a WebSocket server): a kind of OSError."""


class ClientWebSocket:
    def __init__(self, stream: trio.abc.Stream, *, max_message: int, leftover: bytes = b"") -> None:
        self._stream = stream
        self._reader = wsframes.FrameReader(masked=False, max_message=max_message)
        self._ready: deque[tuple[int, bytes]] = deque()
        self._send_lock = trio.Lock()
        self._closed: ConnectionClosed | None = None
        self._close_sent = False
        self._leftover = leftover
        self._gone = trio.Event()

    async def send_message(self, payload: bytes) -> None:
        """Error handling: ConnectionClosed once the connection is closed or lost."""
        await self._send(wsframes.frame(payload, mask=os.urandom(4)))

    async def receive_message(self) -> bytes:
        """The next data message; pings are answered meanwhile. Error handling: ConnectionClosed at the end."""
        while True:
            while self._ready:
                opcode, payload = self._ready.popleft()
                if opcode in (wsframes.BINARY, wsframes.TEXT):
                    return payload
                await self._control(opcode, payload)
            if self._closed is not None:
                raise self._closed
            data: bytes | bytearray
            data, self._leftover = self._leftover, b""
            try:
                data = data or await self._stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                await self._lost(ConnectionClosed(1006, None))
                continue
            try:
                self._ready.extend(self._reader.feed(data))
            except wsframes.FrameError as exc:
                await self._close(exc.code, str(exc))
                self._closed = ConnectionClosed(exc.code, str(exc))

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send our close frame, give the reading task a moment to see the server's answer, then close TCP."""
        if self._closed is None:
            await self._close(code, reason)
            with trio.move_on_after(CLOSE_WAIT):
                await self._gone.wait()
            self._closed = self._closed or ConnectionClosed(code, reason)
        await trio.aclose_forcefully(self._stream)

    async def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == wsframes.PING:
            await self._send(wsframes.frame(payload, wsframes.PONG, mask=os.urandom(4)), quiet=True)
        elif opcode == wsframes.CLOSE:
            code, reason = wsframes.parse_close(payload)
            await self._close(code if code != 1005 else 1000)  # answer it (RFC 6455 §5.5.1)
            await self._lost(ConnectionClosed(code, reason))

    async def _close(self, code: int, reason: str = "") -> None:
        if not self._close_sent:
            self._close_sent = True
            payload = wsframes.close_payload(code, reason)
            await self._send(wsframes.frame(payload, wsframes.CLOSE, mask=os.urandom(4)), quiet=True, closing=True)

    async def _lost(self, why: ConnectionClosed) -> None:
        self._closed = self._closed or why
        self._close_sent = True
        self._gone.set()
        await trio.aclose_forcefully(self._stream)

    async def _send(self, data: bytes, *, quiet: bool = False, closing: bool = False) -> None:
        if self._closed is not None or (self._close_sent and not closing):
            if quiet:
                return
            raise self._closed or ConnectionClosed(None, "closing")
        try:
            async with self._send_lock:
                await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self._closed = self._closed or ConnectionClosed(1006, None)
            if not quiet:
                raise self._closed from None


async def connect(url: str, *, ssl_context: ssl.SSLContext | None, max_message: int) -> ClientWebSocket:
    """Open TCP (and TLS for wss://, handshake finished first, so a certificate error raises) and upgrade.

    The caller bounds the time (a TLS handshake that never finishes would otherwise wait forever).

    Error handling: OSError (ssl.SSLCertVerificationError for a certificate the context does not trust),
    HandshakeError if the server refuses the upgrade.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream: trio.abc.Stream
    if secure:
        stream = await trio.open_ssl_over_tcp_stream(
            host, port, ssl_context=ssl_context or ssl.create_default_context(), https_compatible=True
        )
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream)
            if isinstance(exc.__cause__, OSError):
                raise exc.__cause__ from None
            raise
    else:
        stream = await trio.open_tcp_stream(host, port)
    try:
        leftover = await _handshake(stream, parts.netloc, resource)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return ClientWebSocket(stream, max_message=max_message, leftover=leftover)


async def _handshake(stream: trio.abc.Stream, netloc: str, resource: str) -> bytes:
    """RFC 6455 §4.1; returns what the server sent after its answer."""
    key = base64.b64encode(os.urandom(16))
    await stream.send_all(
        b"GET " + resource.encode() + b" HTTP/1.1\r\nHost: " + netloc.encode() + b"\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise HandshakeError("the server's answer to the upgrade is too long")
        try:
            chunk = await stream.receive_some(RECEIVE_BYTES)
        except trio.BrokenResourceError as exc:
            raise HandshakeError("connection lost during the upgrade") from exc
        if not chunk:
            raise HandshakeError("connection closed during the upgrade")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status.split(" ")[1:2] != ["101"]:
        raise HandshakeError(f"the server refused the upgrade: {status}")
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
    if headers.get("upgrade", "").lower() != "websocket" or headers.get("sec-websocket-accept") != accept:
        raise HandshakeError("the server's upgrade answer is not a valid WebSocket accept")
    return rest
