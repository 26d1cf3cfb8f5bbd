"""The chat server process: listeners, connection lifecycles, events and shutdown (fan-out: ``delivery``).

Task tree (every task has an owner; shutdown walks it top-down):

    serve
    ├── background: bus listener, HTTP (/healthz, /metrics)      cancelled last
    └── core: batch writer                                       drains on shutdown
        └── clients: WebSocket listener, one task per connection told "bye", then cancelled

Shutdown: stop accepting, refuse new sends, let the writer commit and ack what
it holds, send every connection ``bye``/``shutdown``, wait a grace period for
their queues to drain, then cancel what is left.
"""

from __future__ import annotations

import gc
import logging
import math
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imserver import auth, bus, handlers, metrics, websocket
from imserver.config import Settings, split_hostport
from imserver.connection import Connection
from imserver.delivery import Delivery
from imserver.directory import Directory
from imserver.hub import Hub
from imserver.services import Services
from imserver.store import accounts, conversations
from imserver.store.migrate import ping
from imserver.websocket import ConnectionClosed, WebSocket
from imserver.writer import MessageWriter, Overloaded
from pgtrio.bridge import Store
from protocol import ErrorCode, ProtocolError
from protocol.clock import Clock, system_clock

log = logging.getLogger(__name__)

SHED_PAUSE = 1.0
"""Seconds at most that a connection whose send was shed waits for the writer's next commit before reading on."""


@dataclass(frozen=True)
class Addresses:
    """Where a started server listens (ports are real even when 0 was asked for)."""

    ws_port: int
    http_port: int


class ChatServer:
    """One server process: it owns the listeners, the connections' tasks, the batch writer and the bus listener."""

    def __init__(self, settings: Settings, store: Store, keys: ServerKeys, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.store = store
        self.hub = Hub()
        self.directory = Directory(store)
        self.delivery = Delivery(store, self.directory, self.hub)
        self.writer = MessageWriter(store, self.delivery, max_batch=settings.batch_max, queue=settings.writer_queue,
                                    sender_queue=settings.writer_sender_queue)
        self.services = Services(
            settings, store, self.directory, self.hub, self.writer, keys.signer, keys.cipher, clock
        )
        self._stop = trio.Event()
        self.closing = False

    def shutdown(self) -> None:
        """Begin a graceful shutdown; ``serve`` returns when it is done."""
        self._stop.set()

    async def serve(self, *, task_status: trio.TaskStatus[Addresses] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as background:
            await background.start(self._run_bus)
            await self.services.load()
            background.start_soon(self._warm_directory)
            http_port = await background.start(self._run_http)
            async with trio.open_nursery() as core:
                await core.start(self.writer.run)
                async with trio.open_nursery() as clients:
                    listener = trio.CancelScope()
                    ws_port = await core.start(self._run_listener, clients, listener)
                    log.info("serving", extra={"ws_port": ws_port, "http_port": http_port})
                    task_status.started(Addresses(ws_port, http_port))
                    await self._stop.wait()
                    log.info("shutting down")
                    listener.cancel()
                    self.closing = True
                    self.writer.close()  # core waits for the writer to drain before closing
                    with trio.move_on_after(self.settings.shutdown_grace):
                        await self.writer.finished.wait()
                    for client in self.hub.connections():
                        client.finish(1001, ErrorCode.SHUTDOWN)
                    with trio.move_on_after(self.settings.shutdown_grace):
                        await self.hub.wait_empty()
                    clients.cancel_scope.cancel()
            background.cancel_scope.cancel()
        log.info("stopped")

    # -- listeners --------------------------------------------------------------------------

    async def _run_listener(
        self, clients: trio.Nursery, scope: trio.CancelScope, *, task_status: trio.TaskStatus[int]
    ) -> None:
        host, port = split_hostport(self.settings.listen)
        context = None
        if self.settings.tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key or None)
        with scope:  # cancelling ``scope`` closes the listening socket
            await websocket.serve(
                self._handle, host, port, context, handler_nursery=clients, max_message=self.settings.hard_max_frame,
                handshake_timeout=self.settings.hello_timeout, task_status=task_status,
            )

    async def _warm_directory(self) -> None:
        """Load the rosters of recently active conversations in bulk, while already serving.

        Without it, after a restart under load every conversation's first message
        waits for its own roster load (seconds of stalls with thousands of chats).
        """
        started = trio.current_time()
        try:
            convs = await conversations.recently_active(self.store, self.settings.warm_messages)
            loaded = await self.directory.warm(convs)
        except Exception:
            log.exception("warming the roster cache failed; rosters load on first use")
            return
        log.info("roster cache warmed", extra={"rosters": loaded, "seconds": round(trio.current_time() - started, 2)})

    async def _run_http(self, *, task_status: trio.TaskStatus[int]) -> None:
        config = hypercorn.config.Config()
        config.bind = [self.settings.http_listen]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        app = Starlette(routes=[Route("/healthz", self._healthz), Route("/metrics", _metrics)])
        await hypercorn.trio.serve(
            app, config, shutdown_trigger=trio.sleep_forever,  # type: ignore[arg-type]
            task_status=_port_from_binds(task_status),
        )

    async def _healthz(self, request: HttpRequest) -> Response:
        ok = not self.closing
        try:
            with trio.fail_after(2):
                await ping(self.store)
        except Exception:
            ok = False
        body = {"status": "ok" if ok else "unavailable", "connections": len(self.hub.connections())}
        return JSONResponse(body, status_code=200 if ok else 503)

    # -- connections ------------------------------------------------------------------------

    async def _handle(self, ws: WebSocket) -> None:
        """One connection's life. Nothing it raises may reach the shared nursery and stop the server."""
        remote = ws.remote
        client = Connection(ws, remote=remote, max_frame=self.settings.max_frame, queue=self.settings.outbound_queue)
        try:
            with client.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(client.run_writer)
                    await self._read_loop(client)
                    client.finish(1000, ErrorCode.SESSION_ENDED, bye=False)  # flushes, then closes
            if client.cancel_scope.cancelled_caught:
                await client.aclose_now()
        except Exception:
            log.exception("connection failed", extra={"remote": remote})
            await client.aclose_now()
        finally:
            self.hub.detach(client)

    async def _read_loop(self, client: Connection) -> None:
        """Read and handle requests until the peer goes or the connection is told to finish."""
        s = self.settings
        # The deadline is for the client to send its hello; checking it is the server's time (argon2 under a
        # reconnect storm can take longer than the deadline, and a refused honest client would only retry).
        first = None
        with trio.move_on_after(s.hello_timeout):
            try:
                first = await client.ws.receive_message()
            except ConnectionClosed:
                return
        if first is not None:
            try:
                await self._dispatch(client, first)
            except ConnectionClosed:
                return
        if client.session is None:
            client.finish(1008, ErrorCode.AUTH_REQUIRED)
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.keep_alive, s.idle_timeout, s.pong_timeout)
            while not client.finishing:
                try:
                    data = await client.ws.receive_message()
                except ConnectionClosed:
                    break
                await self._dispatch(client, data)
                # A request may be handled without a checkpoint (a send is queued without waiting) and a deep
                # pipeline is already in the buffer: let the other connections have their turn after each one.
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()

    async def _dispatch(self, client: Connection, data: bytes | str) -> None:
        wait = client.limiter.take() if client.limiter is not None else 0.0  # every frame counts, even bad ones
        request = None
        try:
            try:
                request = client.protocol.receive(data)
            except ProtocolError as error:
                if wait and not error.fatal:
                    error = ProtocolError(ErrorCode.RATE_LIMITED, rid=error.rid, retry_after_ms=math.ceil(wait * 1000))
                raise error from None
            if wait:
                raise ProtocolError(ErrorCode.RATE_LIMITED, rid=request.rid, retry_after_ms=math.ceil(wait * 1000))
            metrics.REQUESTS.labels(type(request).__struct_config__.tag).inc()
            answer = await handlers.handle(self.services, client, request)
            if answer is not None:
                client.reply(answer)
        except ProtocolError as error:
            if error.rid is None and request is not None:  # the answer to a request carries its rid (SPEC.md §3)
                error.rid = request.rid
            client.fail(error)
            if isinstance(error, Overloaded):
                # The rest of her pipeline waits in the socket, not read only to be shed again, until the writer
                # has room: its next commit (SHED_PAUSE at most: pongs wait too).
                with trio.move_on_after(SHED_PAUSE):
                    await self.writer.wait_committed()
        except Exception:
            log.exception("request failed", extra={"remote": client.remote})
            client.fail(ProtocolError(ErrorCode.INTERNAL, rid=None if request is None else request.rid))

    # -- events ---------------------------------------------------------------------------

    async def _run_bus(self, *, task_status: trio.TaskStatus[None]) -> None:
        send, recv = trio.open_memory_channel[str](math.inf)
        async with trio.open_nursery() as nursery:
            await nursery.start(self._keep_listening, send)
            task_status.started()
            async for payload in recv:
                try:
                    await self._apply_event(bus.decode(payload))
                except Exception:
                    log.exception("bad bus event", extra={"payload": payload[:200]})

    async def _keep_listening(
        self, sink: trio.MemorySendChannel[str], *, task_status: trio.TaskStatus[None]
    ) -> None:
        """LISTEN for good; after a lost connection, forget cached rosters: events may have been missed."""
        try:
            await self.store.listen(bus.CHANNEL, sink, task_status=task_status)
        except Exception as exc:
            log.warning("event bus connection lost: %r", exc)
        while True:
            await trio.sleep(1)
            self.directory.forget()
            try:
                await self.store.listen(bus.CHANNEL, sink)
            except Exception as exc:
                log.warning("event bus connection lost again: %r", exc)

    async def _apply_event(self, event: bus.Event) -> None:
        """An event from the bus: caches first, then what the members are told."""
        await self.services.refresh([event])
        if isinstance(event, bus.SessionsEnded):
            reason = ErrorCode(event.reason)
            for sid in event.sessions:
                for client in list(self.hub.of_session(uuid.UUID(sid))):
                    client.finish(4003, reason)
        elif isinstance(event, bus.GroupChanged):
            await self.delivery.group_changed(event)
        elif isinstance(event, bus.MembersChanged):
            await self.delivery.members_changed(event)


async def _metrics(request: HttpRequest) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _port_from_binds(task_status: trio.TaskStatus[int]) -> Any:
    """Adapt hypercorn's "started with a list of URLs" to "started with a port"."""
    class Adapter:
        def started(self, binds: list[str]) -> None:
            task_status.started(int(binds[0].rsplit(":", 1)[1]))
    return Adapter()


GC_THRESHOLDS = (50_000, 20, 100)
"""Young-generation size and how often older generations are collected (CPython defaults: 700, 10, 10)."""


def tune_garbage_collector() -> None:
    """Keep the cyclic garbage collector's full passes from stalling the event loop (NFR-3).

    Each connection holds a few hundred long-lived objects (tasks, cancel
    scopes, channels); with the default thresholds CPython walked all of them
    every few seconds, 100-300 ms of loop time with 2,000 clients, which showed
    as periodic delivery stalls of that length (load/RESULTS.md). With a larger
    young generation short-lived objects die before promotion, so full passes
    become rare; what was loaded at start-up is frozen out of them for good.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass(frozen=True)
class ServerKeys:
    """The secrets every node shares: the token signer and the cipher of personal data (SEC-1, SEC-2)."""

    signer: auth.TokenSigner
    cipher: auth.FieldCipher


async def open_keys(store: Store) -> ServerKeys:
    """The keys every node shares, made on first use and kept in the database."""
    return ServerKeys(
        auth.TokenSigner(await accounts.server_key(store, auth.TOKEN_KEY)),
        auth.FieldCipher(await accounts.server_key(store, auth.FIELD_KEY)),
    )
