"""The server's own WebSocket layer (imserver/websocket.py; NFR-3).

Frames the server builds are checked against wsproto's parser; the layer is
driven by a wsproto client over an in-memory stream (every byte up to the test)
and, for listening, TLS and hostile input, over real sockets.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection as FrameParser
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from clients.python.websocket import _handshake
from imserver import websocket
from imserver.connection import COALESCE_BYTES, Connection
from imserver.websocket import ConnectionClosed, WebSocket
from protocol import ErrorCode
from protocol.wsframes import FrameReader, frame
from tests.conftest import Running
from tests.imserver.test_bad_input import TIMEOUT, logged_in
from tests.imserver.test_lifecycle import self_signed

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


# -- frame(): what wsproto makes of it ----------------------------------------------------------


def parse(data: bytes) -> list[Event]:
    """Server-to-client bytes as a wsproto client sees them (frames only, no handshake)."""
    client = FrameParser(ConnectionType.CLIENT)
    client.receive_data(data)
    return list(client.events())


@pytest.mark.parametrize(("size", "header"), [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (70_000, 10)])
def test_frame_is_one_final_binary_frame_with_the_shortest_length_field(size: int, header: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    data = frame(payload)
    assert len(data) == header + size
    events = parse(data)
    assert len(events) == 1 and isinstance(events[0], BytesMessage), events
    assert events[0].data == payload and events[0].frame_finished and events[0].message_finished


@FAST
@given(sizes=st.lists(st.integers(0, 70_000), min_size=1, max_size=4), fill=st.binary(min_size=1, max_size=7))
def test_joined_frames_parse_back_to_the_same_messages(sizes: list[int], fill: bytes) -> None:
    """What the writer does with a backlog: frames joined into one write are read as the same messages."""
    payloads = [(fill * (size // len(fill) + 1))[:size] for size in sizes]
    events = parse(b"".join(frame(p) for p in payloads))
    assert [bytes(e.data) for e in events if isinstance(e, BytesMessage)] == payloads
    assert all(isinstance(e, BytesMessage) and e.message_finished for e in events)


# -- the WebSocket over an in-memory stream -------------------------------------------------------


class Peer:
    """A client WebSocket driven by the test: it answers nothing by itself."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.eof = False

    async def put(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def next(self) -> Event | None:
        """The next event, or None once the server closed the stream."""
        while True:
            for event in self.ws.events():
                return event
            if self.eof:
                return None
            data = bytes(await self.stream.receive_some(65536))
            if not data:
                self.eof = True
                return None
            self.ws.receive_data(data)

    async def message(self) -> bytes | str:
        event = await self.next()
        assert isinstance(event, Message), event
        return event.data


@asynccontextmanager
async def pair(max_message: int = 1000) -> AsyncIterator[tuple[WebSocket, Peer]]:
    """A server WebSocket and its peer, handshake done, joined by an in-memory stream."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    peer = Peer(client_stream)
    with trio.fail_after(TIMEOUT):
        await peer.put(Request(host="example", target="/"))
        ws = await websocket.accept(server_stream, max_message=max_message)
        assert isinstance(await peer.next(), AcceptConnection)
    yield ws, peer


async def test_messages_are_assembled_and_pings_answered_on_the_way() -> None:
    async with pair() as (ws, peer):
        await peer.put(BytesMessage(b"hel", message_finished=False))
        await peer.put(Ping(b"p1"))  # a control frame between fragments
        await peer.put(BytesMessage(b"lo"))
        await peer.put(TextMessage("text"))
        with trio.fail_after(TIMEOUT):
            assert await ws.receive_message() == b"hello"
            assert await ws.receive_message() == "text"
            pong = await peer.next()
        assert isinstance(pong, Pong) and pong.payload == b"p1"
        await ws.send_frames(frame(b"a") + frame(b"b" * 300))
        assert [await peer.message(), await peer.message()] == [b"a", b"b" * 300]


async def test_a_message_over_the_limit_closes_with_1009_before_it_is_read() -> None:
    async with pair(max_message=1000) as (ws, peer):
        await peer.put(BytesMessage(b"x" * 600, message_finished=False))
        await peer.put(BytesMessage(b"x" * 600))
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as closed:
            await ws.receive_message()
        assert closed.value.reason.code == 1009
        close = await peer.next()
        assert isinstance(close, CloseConnection) and close.code == 1009, close
        with pytest.raises(ConnectionClosed):
            await ws.send_frames(frame(b"late"))  # nothing after a close
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.aclose)  # waits for the peer's answer
            await peer.put(close.response())
        assert await peer.next() is None  # then TCP is closed


def header(size: int, *, opcode: int = 0x2, fin: bool = True) -> bytes:
    """A masked frame header declaring ``size`` bytes of payload (RFC 6455 §5.2), and its masking key."""
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return bytes((first, 0x80 | size)) + bytes(4)
    if size < 65536:
        return bytes((first, 0x80 | 126)) + size.to_bytes(2, "big") + bytes(4)
    return bytes((first, 0x80 | 127)) + size.to_bytes(8, "big") + bytes(4)


@pytest.mark.parametrize(
    "frames",
    [
        [header(2**63 - 1)],
        [header(1001)],
        [header(1001, opcode=0x1)],  # text
        [header(600, fin=False) + bytes(600), header(401, opcode=0x0)],  # fragments: 1001 declared in all
        [header(600, fin=False) + bytes(600), header(5, opcode=0x9) + b"ping!", header(401, opcode=0x0)],
    ],
    ids=["2^63-1", "limit+1", "text", "fragments", "ping-between"],
)
async def test_a_header_declaring_more_than_the_limit_closes_with_1009_without_reading_on(frames: list[bytes]) -> None:
    """SPEC.md §2.3 (issue 14 item 10): the close comes on the header; no payload of it is sent, so a server that
    waited for it would wait for ever (it used to read up to the limit first)."""
    async with pair(max_message=1000) as (ws, peer):
        for data in frames:
            await peer.stream.send_all(data)
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as closed:
            await ws.receive_message()
        assert closed.value.reason == websocket.CloseReason(1009, "message larger than 1000 bytes")
        while isinstance(event := await peer.next(), Pong):
            pass
        assert isinstance(event, CloseConnection) and event.code == 1009, event


async def test_a_new_message_after_a_fragmented_one_is_counted_from_zero() -> None:
    async with pair(max_message=1000) as (ws, peer):
        await peer.put(BytesMessage(b"x" * 600, message_finished=False))
        await peer.put(BytesMessage(b"x" * 400))
        await peer.put(BytesMessage(b"y" * 1000))
        with trio.fail_after(TIMEOUT):
            assert await ws.receive_message() == b"x" * 1000
            assert await ws.receive_message() == b"y" * 1000


async def test_exactly_the_limit_is_a_message() -> None:
    async with pair(max_message=1000) as (ws, peer):
        await peer.put(BytesMessage(b"x" * 1000))
        with trio.fail_after(TIMEOUT):
            assert await ws.receive_message() == b"x" * 1000


async def test_the_peers_close_is_answered_and_ends_the_connection() -> None:
    async with pair() as (ws, peer):
        await peer.put(CloseConnection(4321, "done"))
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as closed:
            await ws.receive_message()
        assert (closed.value.reason.code, closed.value.reason.reason) == (4321, "done")
        answer = await peer.next()
        assert isinstance(answer, CloseConnection) and answer.code == 4321
        assert await peer.next() is None


async def test_bad_framing_fails_the_connection_with_1002() -> None:
    async with pair() as (ws, peer):
        await peer.stream.send_all(b"\x82\x05hello")  # unmasked: clients must mask (RFC 6455 §5.1)
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as closed:
            await ws.receive_message()
        assert closed.value.reason.code == 1002
        close = await peer.next()
        assert isinstance(close, CloseConnection) and close.code == 1002
        with trio.fail_after(TIMEOUT):
            await ws.aclose()  # nothing more can be parsed: it does not wait for an answer
        assert await peer.next() is None


async def test_ping_waits_for_its_pong_and_a_later_pong_answers_earlier_pings() -> None:
    async with pair() as (ws, peer), trio.open_nursery() as nursery:
        answered: list[int] = []

        async def ping(n: int) -> None:
            await ws.ping()
            answered.append(n)

        async def read() -> None:
            with pytest.raises(ConnectionClosed):
                await ws.receive_message()  # someone must read for pongs to be seen

        nursery.start_soon(read)
        nursery.start_soon(ping, 1)
        first = await peer.next()
        nursery.start_soon(ping, 2)
        second = await peer.next()
        assert isinstance(first, Ping) and isinstance(second, Ping) and first.payload != second.payload
        await trio.testing.wait_all_tasks_blocked()
        assert answered == []
        await peer.put(second.response())
        with trio.fail_after(TIMEOUT):
            while len(answered) < 2:  # noqa: ASYNC110 (the test owns no event to wait on)
                await trio.sleep(0.001)
        assert sorted(answered) == [1, 2]
        await peer.put(CloseConnection(1000))


async def test_our_close_waits_for_the_answer_as_long_as_it_is_let(autojump_clock: trio.testing.MockClock) -> None:
    async with pair() as (ws, peer):
        await peer.put(BytesMessage(b"before"))
        with trio.move_on_after(5) as waited:
            await ws.aclose(4000, "slow_consumer")
        assert waited.cancelled_caught, "a peer that never answers is waited for until the caller's timeout"
        assert (await peer.next(), await peer.next()) == (CloseConnection(4000, "slow_consumer"), None)


async def test_messages_after_our_close_are_dropped() -> None:
    got: list[bytes | str] = []
    async with pair() as (ws, peer), trio.open_nursery() as nursery:

        async def read() -> None:
            with pytest.raises(ConnectionClosed):
                while True:
                    got.append(await ws.receive_message())

        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ws.aclose, 1001, "shutdown")
        close = await peer.next()
        assert isinstance(close, CloseConnection) and close.code == 1001
        await peer.stream.send_all(b"\x82\x88\x00\x00\x00\x00too late")  # sent before it saw the close
        await peer.put(close.response())
        assert await peer.next() is None
    assert got == []


# -- keep-alive (SPEC.md §2.4) -------------------------------------------------------------------


async def read_until_closed(ws: WebSocket) -> None:
    """The connection's read loop, as far as liveness goes: someone must read for pongs to be seen."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.receive_message()


async def test_a_silent_peer_that_answers_pings_is_pinged_once_per_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Issue 14 item 1: a pong is hearing from the peer. When it was not, every pong was followed by the next ping
    at once (12,000 pings in 5 s per silent phone); now a phone in a pocket costs one ping per idle_timeout.
    Then a peer that stops answering is told ``idle_timeout`` and closed with 4001 after ``pong_timeout``."""
    async with pair() as (ws, peer), trio.open_nursery() as nursery:
        client = Connection(ws, remote="test", max_frame=1000, queue=10)
        nursery.start_soon(client.run_writer)
        nursery.start_soon(read_until_closed, ws)
        nursery.start_soon(client.keep_alive, 10.0, 5.0)
        pings = 0
        with trio.move_on_after(105):
            while pings <= 10:  # a spinning keep-alive fails here instead of looping at one instant for ever
                event = await peer.next()
                assert isinstance(event, Ping), event
                pings += 1
                await peer.put(event.response())
        assert pings == 10, f"{pings} pings in 105 s of silence with idle_timeout 10 s"
        await peer.put(BytesMessage(b"a request"))  # a frame also counts: the next ping is 10 s after it
        started = trio.current_time()
        assert isinstance(await peer.next(), Ping)  # not answered
        assert trio.current_time() - started == pytest.approx(10.0)
        bye = await peer.next()
        assert isinstance(bye, BytesMessage) and b"idle_timeout" in bye.data, bye
        close = await peer.next()
        assert isinstance(close, CloseConnection) and (close.code, close.reason) == (4001, "idle_timeout"), close
        assert trio.current_time() - started == pytest.approx(15.0)
        await peer.put(close.response())


# -- the connection's writer --------------------------------------------------------------------


class Recorder:
    """Stands in for the WebSocket under a Connection: records writes and the close."""

    remote = "test"

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    async def send_frames(self, data: bytes) -> None:
        self.writes.append(data)
        await trio.lowlevel.checkpoint()

    def write_nowait(self, data: bytes) -> int:
        return 0  # as a TLS stream answers: everything goes through the writer

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        await trio.lowlevel.checkpoint()


async def test_the_writer_joins_a_backlog_into_few_writes_and_closes_with_the_reason() -> None:
    recorder = Recorder()
    conn = Connection(recorder, remote="test", max_frame=1000, queue=100)  # type: ignore[arg-type]
    payloads = [bytes([i]) * 10 for i in range(5)] + [b"x" * (COALESCE_BYTES // 2 + 1)] * 3
    for payload in payloads:
        conn.push(frame(payload))
    conn.finish(1001, ErrorCode.SHUTDOWN)  # queues a bye, then the close
    with trio.fail_after(TIMEOUT):
        await conn.run_writer()
    # One write takes what is queued until it passes COALESCE_BYTES: the 5 small and 2 big, then the last and the bye.
    assert len(recorder.writes) == 2, [len(w) for w in recorder.writes]
    assert all(len(w) < COALESCE_BYTES + len(frame(payloads[-1])) for w in recorder.writes)
    received = [bytes(e.data) for e in parse(b"".join(recorder.writes)) if isinstance(e, BytesMessage)]
    assert received[:-1] == payloads and b"bye" in received[-1]
    assert recorder.closed == (1001, "shutdown")


@asynccontextmanager
async def tcp_pair() -> AsyncIterator[tuple[WebSocket, trio.SocketStream]]:
    """A server WebSocket and the raw client socket under it, upgraded, over real loopback TCP."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0], await trio.open_tcp_stream("127.0.0.1", port) as client:
        server = await listeners[0].accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client_handshake, client, port)
            ws = await websocket.accept(server, max_message=1 << 20)
        yield ws, client


async def client_handshake(stream: trio.SocketStream, port: int) -> None:
    assert await _handshake(stream, f"127.0.0.1:{port}", "/") == b""


async def read_frames(client: trio.SocketStream, count: int | None = None) -> tuple[list[tuple[int, bytes]], bool]:
    """Frames the client receives, until ``count`` or EOF; and whether bytes of an unfinished frame were left."""
    reader = FrameReader(masked=False, max_message=1 << 20)
    got: list[tuple[int, bytes]] = []
    while count is None or len(got) < count:
        data = await client.receive_some(1 << 16)
        if not data:
            return got, bool(reader._buffer)
        got += reader.feed(data)
    return got, bool(reader._buffer)


def numbered(i: int) -> bytes:
    return i.to_bytes(4, "big") * 2500  # 10 kB, each frame telling its number


async def test_direct_writes_and_the_writer_keep_frames_whole_and_in_order() -> None:
    """Frames go straight into the socket until it is full, then through the queue; the client sees one stream."""
    async with tcp_pair() as (ws, client):
        conn = Connection(ws, remote="test", max_frame=1000, queue=10_000)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run_writer)
            sent = 0
            while not conn.queued() and sent < 5000:  # until the kernel buffers are full (a few MB on loopback)
                conn.push(frame(numbered(sent)))
                sent += 1
            assert conn.queued(), "the socket never filled"
            for _ in range(50):
                conn.push(frame(numbered(sent)))
                sent += 1
            with trio.fail_after(TIMEOUT):
                got, _ = await read_frames(client, sent)
            assert [p for _, p in got] == [numbered(i) for i in range(sent)]
            await trio.sleep(0.05)  # the writer has emptied the queue: direct writes resume
            conn.push(frame(numbered(sent)))
            assert not conn.queued()
            with trio.fail_after(TIMEOUT):
                assert (await read_frames(client, 1))[0] == [(2, numbered(sent))]
            nursery.cancel_scope.cancel()


async def test_an_abort_after_half_a_frame_sends_no_close_frame_after_it() -> None:
    async with tcp_pair() as (ws, client):
        conn = Connection(ws, remote="test", max_frame=1000, queue=10_000)
        sent = 0
        while ws._owed is None and sent < 5000:  # no writer task: the first frame that does not fit is cut
            conn.push(frame(numbered(sent)))
            sent += 1
        assert ws._owed is not None, "no partial write happened"
        conn.abort(4000, ErrorCode.SLOW_CONSUMER)
        await conn.aclose_now()
        with trio.fail_after(TIMEOUT):
            got, unfinished = await read_frames(client)
        assert [p for _, p in got] == [numbered(i) for i in range(len(got))]
        assert unfinished, "the cut frame's head arrived and nothing after it"
        assert all(op == 2 for op, _ in got)  # no close frame glued to half a frame


# -- listening, TLS, hostile input --------------------------------------------------------------


async def echo(ws: WebSocket) -> None:
    """Answer each message with a binary frame of its bytes (text UTF-8 encoded), then close."""
    try:
        while True:
            message = await ws.receive_message()
            await ws.send_frames(frame(message.encode() if isinstance(message, str) else message))
    except ConnectionClosed:
        pass


@asynccontextmanager
async def echo_server(context: ssl.SSLContext | None = None) -> AsyncIterator[tuple[int, trio.CancelScope]]:
    async with trio.open_nursery() as conns:
        listener = trio.CancelScope()

        async def listen(*, task_status: trio.TaskStatus[int]) -> None:
            with listener:
                await websocket.serve(echo, "127.0.0.1", 0, context, handler_nursery=conns, max_message=1 << 20,
                                      handshake_timeout=2.0, task_status=task_status)

        port = await conns.start(listen)
        yield port, listener
        conns.cancel_scope.cancel()


async def test_tls_carries_frames_of_every_length_form(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    async with echo_server(server_context) as (port, _):
        assert port > 0
        with trio.fail_after(TIMEOUT):
            async with open_websocket_url(f"wss://localhost:{port}/", ssl_context=client_context,
                                          max_message_size=1 << 20) as client:
                for size in (0, 125, 126, 65535, 65536, 300_000):
                    payload = bytes(i % 253 for i in range(size))
                    await client.send_message(payload)
                    assert await client.get_message() == payload
                await client.send_message("文字")
                assert await client.get_message() == "文字".encode()


async def test_cancelling_the_listener_closes_the_listening_socket_and_keeps_connections() -> None:
    async with echo_server() as (port, listener):
        with trio.fail_after(TIMEOUT):
            async with open_websocket_url(f"ws://127.0.0.1:{port}/") as client:
                listener.cancel()
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(OSError):
                    await trio.open_tcp_stream("127.0.0.1", port)
                await client.send_message(b"still here")
                assert await client.get_message() == b"still here"


def upgrade(*, key: bytes = b"dGhlIHNhbXBsZSBub25jZQ==", version: bytes = b"HTTP/1.1") -> bytes:
    """An upgrade request that is right but for what the test changes."""
    return (b"GET / " + version + b"\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")


BAD_KEYS = [b"", b"x", b"dGhlIHNhbXBsZSBub25jZQ", b"dGhlIHNhbXBsZSBub25jZQ=!", b"dGhlIHNhbXBsZSBub25jZXg=",
            b"dGhlIHNhbXBsZSBub25j", b"\xff" * 24]
"""Sec-WebSocket-Key values that are not one base64-encoded 16-byte nonce (RFC 6455 §4.2.1): empty, short,
unpadded, not base64, 17 bytes, 15 bytes, not ASCII (issue 14 item 10: each was accepted with 101)."""
GARBAGE = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200) + b"\r\n\r\n",  # a TLS hello on a plain port
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",  # HTTP, but no upgrade
    b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",  # a host that is not IDNA
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    *(upgrade(key=key) for key in BAD_KEYS),
    upgrade(version=b"HTTP/1.0"),
    upgrade(key=b"dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="),  # two keys
]
GARBAGE_IDS = ["tls", "junk", "no-upgrade", "bad-host", "post", *(f"key-{i}" for i in range(len(BAD_KEYS))),
               "http-1.0", "two-keys"]


@pytest.mark.parametrize("garbage", GARBAGE, ids=GARBAGE_IDS)
async def test_garbage_instead_of_an_upgrade_is_closed_and_hurts_nobody(
    server: Running, garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The bad host once stopped the whole server (wsproto lets its IDNA error out of the handshake)."""
    await server.user("alice")
    async with logged_in(server, "alice") as alice:
        stream = await trio.open_tcp_stream("127.0.0.1", server.addresses.ws_port)
        async with stream:
            await stream.send_all(garbage)
            answer = b""
            with trio.fail_after(TIMEOUT):  # well before the handshake timeout (10 s): refused, not timed out
                try:
                    while data := await stream.receive_some(4096):
                        answer += data
                except trio.BrokenResourceError:
                    pass
        assert answer.startswith(b"HTTP/1.1 400"), answer
        await alice.alive()
    assert not [r for r in caplog.records if r.name == "imserver.websocket" and r.levelno >= logging.WARNING]
    async with logged_in(server, "alice") as again:
        await again.alive()


async def test_a_silent_connection_is_closed_at_the_handshake_deadline(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as conns:
        server_stream, client_stream = trio.testing.memory_stream_pair()
        reached: list[WebSocket] = []

        async def handler(ws: WebSocket) -> None:
            reached.append(ws)

        conns.start_soon(partial(websocket._serve_one, handler, 1000, 3.0), server_stream)
        with trio.fail_after(3.5):
            assert await client_stream.receive_some(100) == b""  # closed at 3 s
        assert reached == []

