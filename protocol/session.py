"""The server's view of one connection's protocol state (SPEC.md §4), sans I/O.

Theory of operation: a connection starts in AWAIT_HELLO, where only ``hello``
is accepted; anything else is a protocol violation and ends the connection.
Once the server has authenticated the hello it calls :meth:`ServerSession.open`,
and every op is accepted except a second ``hello`` and, in a read-only session,
the ops that write. The transport feeds each WebSocket message to
:meth:`ServerSession.receive` and acts on what comes back.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from protocol.codec import DEFAULT_MAX_FRAME, decode_request
from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import PROTOCOL_VERSIONS, Hello, Request


class Phase(Enum):
    """Where a connection is in its life."""

    #: Waiting for ``hello``; nothing else is accepted.
    AWAIT_HELLO = auto()
    #: Authenticated; requests flow.
    OPEN = auto()


class ServerSession:
    """Validates each incoming frame against the connection's phase and mode."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.phase = Phase.AWAIT_HELLO
        self.readonly = False

    def receive(self, data: bytes | str) -> Request[Any]:
        """Decode one WebSocket message into a request the server may act on.

        Error handling: raises ProtocolError; when its ``fatal`` is set the
        server sends the error frame and closes the connection.
        """
        if self.phase is Phase.AWAIT_HELLO:
            return self._receive_hello(data)
        request = self._decode(data)
        if isinstance(request, Hello):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "already authenticated", rid=request.rid)
        if self.readonly and request.writes:
            raise ProtocolError(ErrorCode.READ_ONLY, rid=request.rid)
        return request

    def _receive_hello(self, data: bytes | str) -> Request[Any]:
        """Before the handshake every error is fatal: a peer that cannot say hello is not a client."""
        try:
            request = self._decode(data)
        except ProtocolError as error:
            if error.code is ErrorCode.UNKNOWN_OP:
                error = ProtocolError(ErrorCode.AUTH_REQUIRED, rid=error.rid)
            error.fatal = True
            raise error from None
        if not isinstance(request, Hello):
            raise ProtocolError(ErrorCode.AUTH_REQUIRED, rid=request.rid, fatal=True)
        return request

    def _decode(self, data: bytes | str) -> Request[Any]:
        if isinstance(data, str):
            raise ProtocolError(ErrorCode.BAD_FRAME, "text messages are not part of the protocol")
        return decode_request(data, self.max_frame)

    def open(self, *, readonly: bool) -> None:
        """Record a successful handshake."""
        self.phase = Phase.OPEN
        self.readonly = readonly


def negotiate(hello: Hello) -> int:
    """The highest version both sides speak.

    Error handling: raises a fatal ProtocolError(UNSUPPORTED_VERSION).
    """
    common = set(hello.versions) & set(PROTOCOL_VERSIONS)
    if not common:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"server speaks {list(PROTOCOL_VERSIONS)}",
            rid=hello.rid,
            fatal=True,
        )
    return max(common)
