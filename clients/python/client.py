"""A trio client for protocol v1 (protocol/SPEC.md).

``open_client`` logs in and keeps one connection; ``send`` retries over a new
connection with the same client message id when an ack is lost, so a retry
never makes a duplicate (SPEC.md §5.1). ``messages`` yields each message of
the user's conversations exactly once and in order, live or after a
reconnect, by tracking the last seq per conversation and filling gaps with
``sync`` (SPEC.md §5.2).

Every answer and push is decoded with its struct of ``protocol.frames``, so a
frame the contract does not describe fails loudly (ContractError) instead of
surfacing later as a missing key: every test that drives a server through this
SDK checks the server against the contract.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import msgspec
import trio

from clients.python import websocket
from clients.python.websocket import ClientWebSocket, ConnectionClosed
from protocol import (
    ErrorFrame,
    Message,
    ProtocolError,
    Push,
    Request,
    decode_answer,
    decode_frame,
    decode_push,
    encode,
    peek,
)
from protocol.frames import (
    ANSWER_TYPES,
    PROTOCOL_VERSIONS,
    FactsSet,
    FactsSetAnswer,
    Fetch,
    Hello,
    HiddenPush,
    History,
    Listing,
    ListRequest,
    MsgPush,
    QrRender,
    QrSave,
    QrSaveAnswer,
    QrSearch,
    QuickReply,
    Read,
    ReadAnswer,
    Scope,
    Send,
    SendAnswer,
    SeqRange,
    Sync,
    SyncEntry,
    UploadBegin,
    UploadEnd,
    UploadPart,
    Welcome,
    answer_type,
)
from protocol.kinds import Attachment

A = TypeVar("A")
L = TypeVar("L", bound=Listing)


class ClientError(Exception):
    """The server answered with an error frame (SPEC.md §7)."""

    def __init__(self, error: ErrorFrame) -> None:
        self.error = error
        self.code = error.code
        self.message = error.message
        self.detail = error.detail
        self.field = error.field
        self.retry_after_ms = error.retry_after_ms
        super().__init__(f"{self.code}: {self.detail or self.message}")


class ContractError(Exception):
    """The server sent a frame the contract (``protocol.frames``) does not describe: a bug on one side."""


class ConnectionLost(Exception):
    """The connection closed before the answer came; ``reason`` is the close reason, if any."""

    def __init__(self, code: int | None = None, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed ({code} {reason})")


@dataclass(frozen=True)
class Lost:
    """Not a frame: the connection dropped (the close code and reason, if the server sent them)."""

    code: int | None
    reason: str | None


Event = Push | ErrorFrame | Lost
"""What :meth:`Client.events` yields: a push, an error the server could not pair with a request
(SPEC.md §3.4), or the news that the connection dropped."""


class _Slot:
    def __init__(self) -> None:
        self.event = trio.Event()
        self.data: bytes | None = None
        self.lost: ConnectionLost | None = None


class _Link:
    """One WebSocket: request/answer pairing and the pushes it received."""

    def __init__(self, ws: ClientWebSocket, events: trio.MemorySendChannel[Event | ContractError]) -> None:
        self.ws = ws
        self._events = events
        self._rids = itertools.count(1)
        self._slots: dict[int, _Slot] = {}
        self.lost: ConnectionLost | None = None

    async def request(self, request: Request[A]) -> A:
        rid = next(self._rids)
        data = await self._exchange(rid, encode(msgspec.structs.replace(request, rid=rid)))
        return _answer(data, answer_type(type(request)))

    async def request_loose(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Any frame, however odd (tests send malformed ones); an answer to a known op is still held to the contract."""
        rid = next(self._rids)
        data = await self._exchange(rid, encode({"op": op, "rid": rid, **fields}))
        expected: type[Any] = ANSWER_TYPES.get(op, dict)  # an op the contract does not know is answered by an error
        _answer(data, expected)
        return decode_frame(data)

    async def _exchange(self, rid: int, frame: bytes) -> bytes:
        if self.lost is not None:
            raise self.lost
        slot = self._slots[rid] = _Slot()
        try:
            await self.ws.send_message(frame)
        except ConnectionClosed as exc:
            raise _lost(exc) from None
        await slot.event.wait()
        if slot.lost is not None:
            raise slot.lost
        assert slot.data is not None
        return slot.data

    async def read_forever(self) -> None:
        try:
            while True:
                data = await self.ws.receive_message()
                op, rid = peek(data)
                if op in ("ok", "error") and rid in self._slots:
                    slot = self._slots.pop(rid)
                    slot.data = data
                    slot.event.set()
                    continue
                try:
                    event = decode_push(data)
                except ProtocolError as exc:
                    self._events.send_nowait(ContractError(f"{op} push: {exc.detail}"))
                    raise
                if event is not None:
                    self._events.send_nowait(event)
        except ConnectionClosed as exc:
            self.lost = _lost(exc)
        except ProtocolError:
            self.lost = ConnectionLost(None, "bad frame from server")
            await self.ws.aclose()
        for slot in self._slots.values():
            slot.lost = self.lost
            slot.event.set()
        self._slots.clear()
        self._events.send_nowait(Lost(self.lost.code, self.lost.reason))


class Client:
    """A logged-in user. Create it with :func:`open_client`.

    ``request`` sends a request struct and returns its answer struct
    (``await client.request(History(conv="g:12", after=0))`` is a ``HistoryAnswer``);
    ``request("op", **fields)`` sends any frame, however odd, and returns the answer as a map;
    ``whole`` follows the pages of a long list, ``sync`` and ``history`` those of messages (SPEC.md §3.7).
    Every answer and push is held to the contract: one it does not describe raises ContractError.
    """

    def __init__(
        self, nursery: trio.Nursery, url: str, *, username: str | None, password: str | None,
        token: str | None, device: str, readonly: bool, ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._nursery = nursery
        self.url = url
        self.username = username
        self._password = password
        self.token = token
        self.device = device
        self.readonly = readonly
        self._ssl = ssl_context
        self._events_send, self._events = trio.open_memory_channel[Event | ContractError](math.inf)
        self._link: _Link | None = None
        self._link_scope: trio.CancelScope | None = None
        self._welcome: Welcome | None = None
        self.positions: dict[str, int] = {}
        """The highest seq delivered by :meth:`messages`, per conversation."""

    @property
    def welcome(self) -> Welcome:
        """The answer to the last successful ``hello`` (SPEC.md §4.2)."""
        assert self._welcome is not None, "not connected yet"
        return self._welcome

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> Welcome:
        """(Re)connect and log in; returns the welcome (SPEC.md §4)."""
        await self.close()
        with trio.fail_after(CONNECT_TIMEOUT):
            ws = await websocket.connect(self.url, ssl_context=self._ssl, max_message=MAX_MESSAGE)
        link = _Link(ws, self._events_send)
        scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                await link.read_forever()
        self._nursery.start_soon(run)
        self._link, self._link_scope = link, scope
        hello = Hello(versions=list(PROTOCOL_VERSIONS), device=self.device, readonly=self.readonly)
        if self.token:
            hello.token = self.token
        else:
            hello.username, hello.password = self.username, self._password
        self._welcome = await link.request(hello)
        self.token = self._welcome.token or self.token
        return self._welcome

    async def close(self) -> None:
        if self._link is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self._link.ws.aclose()
            assert self._link_scope is not None
            self._link_scope.cancel()
            self._link = None

    @overload
    async def request(self, request: Request[A], /) -> A: ...

    @overload
    async def request(self, request: str, /, **fields: Any) -> dict[str, Any]: ...

    async def request(self, request: Request[Any] | str, /, **fields: Any) -> Any:
        """Send one request and wait for its answer: a request struct, or an op and its fields.

        Error handling: ClientError for an error frame, ConnectionLost if the
        connection closed first (the request may or may not have taken effect),
        ContractError for an answer the contract does not describe.
        """
        if self._link is None:
            await self.connect()
        assert self._link is not None
        if isinstance(request, str):
            return await self._link.request_loose(request, fields)
        return await self._link.request(request)

    # -- operations -------------------------------------------------------------------------

    async def send(
        self, conv: str, text: str | None = None, *, kind: str = "text", body: dict[str, Any] | None = None,
        cid: str | None = None, only: str | None = None, retries: int = 5,
    ) -> SendAnswer:
        """Send a message; on a lost connection reconnect and resend with the same ``cid``, and after an
        overloaded server's ``unavailable`` resend it after the ``retry_after_ms`` it asked for (SPEC.md §7.6),
        ``retries`` times at most.

        ``only`` makes it mention-only: the member id (as ``members`` shows it) who alone may see it.
        """
        request = Send(conv=conv, cid=cid or uuid.uuid4().hex, kind=kind, text=text, body=body, only=only)
        return await self._retrying(lambda: self.request(request), retries)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], retries: int) -> T:
        """Run ``attempt``, reconnecting and running it again after a lost connection or ``unavailable``;
        an attempt must be safe to repeat (a ``send`` with its ``cid``, a resumable upload).

        An ``unavailable`` with ``retry_after_ms`` comes from a server that shed the request (SPEC.md §7.6): the
        connection is fine, so the attempt is run again on it after that long.
        """
        for tries in itertools.count():
            try:
                if self._link is None or self._link.lost is not None:
                    await self.connect()
                return await attempt()
            except (ConnectionLost, OSError, trio.BrokenResourceError, trio.TooSlowError):
                if tries >= retries:
                    raise
                self._link = None  # reconnect on the next attempt
            except ClientError as exc:
                if exc.code != "unavailable" or tries >= retries:
                    raise
                if exc.retry_after_ms is not None:
                    await trio.sleep(exc.retry_after_ms / 1000)
                    continue
                self._link = None
            await trio.sleep(min(0.1 * 2**tries, 2))
        raise AssertionError("unreachable")

    async def upload(self, data: bytes, mime: str, name: str = "", *, retries: int = 5) -> Attachment:
        """Store a file on the server in parts (SPEC.md §5.18); returns the attachment to put in a message body.

        After a lost connection it begins the same file again, which tells how much the server already has,
        and goes on from there.

        Error handling: ClientError, e.g. ``file_too_large``, or ``bad_request`` naming ``mime`` for a type
        the server does not accept or content that is not of that type.
        """
        digest = hashlib.sha256(data).hexdigest()

        async def attempt() -> Attachment:
            begun = await self.request(UploadBegin(mime=mime, size=len(data), sha256=digest, name=name))
            part = self.welcome.limits.max_frame - PART_OVERHEAD
            received = begun.received
            while received < len(data):
                answer = await self.request(UploadPart(id=begun.id, offset=received,
                                                       data=data[received:received + part]))
                received = answer.received
            stored = await self.request(UploadEnd(id=begun.id))
            return Attachment(stored.id, stored.mime, stored.size, stored.name)
        return await self._retrying(attempt, retries)

    async def download(self, attachment_id: str, *, retries: int = 5) -> bytes:
        """A stored file, fetched a range at a time, going on where it stopped after a lost connection.

        Error handling: ClientError ``not_found`` for a file this user may not see (or that does not exist);
        ValueError if the bytes do not match the file's sha256.
        """
        chunks: list[bytes] = []
        received = 0

        async def attempt() -> bytes:
            nonlocal received
            while True:
                answer = await self.request(Fetch(id=attachment_id, offset=received))
                chunks.append(answer.data)
                received += len(answer.data)
                if received >= answer.size:
                    data = b"".join(chunks)
                    if hashlib.sha256(data).hexdigest() != answer.sha256:
                        raise ValueError(f"{attachment_id}: the bytes fetched do not match its sha256")
                    return data
        return await self._retrying(attempt, retries)

    async def whole(self, request: ListRequest[L]) -> L:
        """The answer to a request whose answer lists something, with the items of all its pages (SPEC.md §3.7):
        ``await client.whole(Members(conv="g:12"))`` has every member."""
        answer = await self.request(request)
        items = getattr(answer, answer.listed)
        while answer.cursor is not None:
            page = await self.request(msgspec.structs.replace(request, cursor=answer.cursor))
            items.extend(getattr(page, page.listed))
            answer.cursor = page.cursor
        return answer

    async def history(
        self, conv: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> tuple[list[Message], bool]:
        """A page of ``conv`` (SPEC.md §5.3): the messages among ``limit`` seqs, oldest first, and whether there
        is more. Where one answer could not hold the whole page (§3.7) the rest is asked for, on from the seqs
        the answer covered, until the page is whole."""
        found: list[Message] = []
        while True:
            answer = await self.request(History(conv=conv, before=before, after=after, limit=limit))
            seqs = [m.seq for m in answer.messages] + [s for r in answer.hidden for s in r]
            limit -= len(answer.messages) + sum(last - first + 1 for first, last in answer.hidden)
            if after is None:
                found[:0] = answer.messages
                before = min(seqs, default=0)
            else:
                found.extend(answer.messages)
                after = max(seqs, default=after)
            if not answer.more or limit <= 0 or not seqs:
                return found, answer.more

    async def sync(self, after: dict[str, int] | None = None, limit: int = 100) -> list[SyncEntry]:
        """Every conversation with all messages after ``after``: the pages of conversations (``cursor``), again
        and again while some have ``more`` messages than one answer held (SPEC.md §5.2)."""
        after = dict(after or {})
        merged: dict[str, SyncEntry] = {}
        cursor: str | None = None
        again = False
        while True:
            answer = await self.request(Sync(after=after, limit=limit, cursor=cursor))
            for conv in answer.convs:
                entry = merged.setdefault(conv.conv, msgspec.structs.replace(conv, messages=[], hidden=[]))
                entry.messages.extend(conv.messages)
                entry.hidden.extend(conv.hidden)
                entry.more = conv.more
                covered = _covered(conv.messages, conv.hidden)
                if covered is not None:
                    after[conv.conv] = covered
                again = again or conv.more
            cursor = answer.cursor
            if cursor is None:
                if not again:
                    return list(merged.values())
                again = False

    async def read(self, conv: str, seq: int) -> ReadAnswer:
        return await self.request(Read(conv=conv, seq=seq))

    # -- quick replies (SPEC.md §5.19) and facts (§5.20) -------------------------------------

    async def quick_replies(self, typed: str = "", *, limit: int = 10) -> list[QuickReply]:
        """What ``/typed`` offers, best first, each with the ``prompts`` to ask the sender for."""
        return (await self.request(QrSearch(q=typed, limit=limit))).replies

    async def save_quick_reply(
        self, shortcut: str, title: str, text: str | None = None, *, kind: str = "text",
        body: dict[str, Any] | None = None, scope: Scope = "personal", team: str | None = None, id: int | None = None,
    ) -> QrSaveAnswer:
        """Create a quick reply, or change the one ``id`` names; the saved entry."""
        return await self.request(QrSave(
            shortcut=shortcut, title=title, id=id, scope=scope, team=team, kind=kind, text=text, body=body,
        ))

    async def send_quick_replies(
        self, conv: str, ids: list[int], *, member: str | None = None, fill: dict[str, str] | None = None,
    ) -> list[SendAnswer]:
        """Fill quick replies in for ``conv`` and send the messages they make; the acks.

        ``member`` is the patient they are for (needed in a group when they name her or her facts).
        Error handling: ClientError ``bad_request`` with ``field`` ``fill`` names the prompts still to fill in.
        """
        ready = (await self.request(QrRender(conv=conv, ids=ids, member=member, fill=fill or {}))).messages
        return [await self.send(conv, m.text, kind=m.kind, body=m.body) for m in ready]

    async def set_fact(self, user: str, key: str, value: str | None) -> FactsSetAnswer:
        """Record a fact about a patient for templates (``{{fact.key}}``); None removes it."""
        return await self.request(FactsSet(user=user, key=key, value=value))

    async def events(self) -> AsyncIterator[Event]:
        """Every push as it arrives (``MsgPush``, ``ReadPush``, ``ConvPush``, ``Bye``...), errors the server
        could not pair with a request, and ``Lost`` when the link drops. Pushes of an ``op`` this client does
        not know are left out (SPEC.md §9).

        Error handling: ContractError for a push the contract does not describe (the link is closed).
        """
        async for event in self._events:
            if isinstance(event, ContractError):
                raise event
            yield event

    async def messages(self, *, resync: bool = True, new_from_end: bool = False) -> AsyncIterator[Message]:
        """Each message of the user's conversations once, in seq order per conversation.

        Starts from ``positions`` (catching up with ``sync``), follows live
        pushes, fills gaps, and reconnects and resyncs when the link drops.
        With ``new_from_end`` a conversation not in ``positions`` starts at its
        first live message instead of its history (a bot added to a group must
        not act on what was said there before it came).

        Error handling: ContractError, as :meth:`events`.
        """
        if resync:
            for message in await self._catch_up():
                yield message
        async for event in self.events():
            if isinstance(event, Lost):
                await trio.sleep(0.2)
                await self.connect()
                for message in await self._catch_up():
                    yield message
            elif isinstance(event, HiddenPush) and not event.retract:
                # Seqs this user may not see (SPEC.md §5.2): move past them, or fill the gap before them.
                conv, first, end = event.conv, event.ranges[0][0], event.ranges[-1][1]
                if first > self.positions.get(conv, 0) + 1:
                    for missed in await self._catch_up({conv: self.positions.get(conv, 0)}):
                        yield missed
                if first <= self.positions.get(conv, 0) + 1:
                    self.positions[conv] = max(self.positions.get(conv, 0), end)
            elif isinstance(event, MsgPush):
                message = event.msg
                if new_from_end and message.conv not in self.positions:
                    self.positions[message.conv] = message.seq - 1
                last = self.positions.get(message.conv, 0)
                if message.seq <= last:
                    continue
                if message.seq > last + 1:  # a gap: fetch what lies between
                    for missed in await self._catch_up({message.conv: last}):
                        yield missed
                    if message.seq <= self.positions.get(message.conv, 0):
                        continue
                self.positions[message.conv] = message.seq
                yield message

    async def _catch_up(self, only: dict[str, int] | None = None) -> list[Message]:
        after = only if only is not None else self.positions
        found: list[Message] = []
        for conv in await self.sync(after):
            if only is not None and conv.conv not in only:
                continue
            for message in conv.messages:
                if message.seq > self.positions.get(message.conv, 0):
                    self.positions[message.conv] = message.seq
                    found.append(message)
            covered = _covered(conv.messages, conv.hidden)
            if covered is not None and covered > self.positions.get(conv.conv, 0):
                self.positions[conv.conv] = covered
        return found


CONNECT_TIMEOUT = 10.0
MAX_MESSAGE = 4 << 20
PART_OVERHEAD = 256
"""Bytes of an ``upload_part`` frame besides its data: each part fills a frame (``limits.max_frame``) up to this."""
T = TypeVar("T")


def _lost(exc: ConnectionClosed) -> ConnectionLost:
    return ConnectionLost(exc.code, exc.reason)


def _answer(data: bytes, expected: type[A]) -> A:
    """The answer in ``data``. Error handling: ClientError for an error frame, ContractError for one the
    contract does not describe."""
    try:
        answer = decode_answer(data, expected)
    except ProtocolError as exc:
        raise ContractError(exc.detail) from None
    if isinstance(answer, ErrorFrame):
        raise ClientError(answer)
    return answer


def _covered(messages: list[Message], hidden: list[SeqRange]) -> int | None:
    """The highest seq a sync page accounts for, shown or hidden (the page covers its seqs without gaps)."""
    tops = [m.seq for m in messages] + [r[1] for r in hidden]
    return max(tops) if tops else None


@asynccontextmanager
async def open_client(
    url: str, *, username: str | None = None, password: str | None = None, token: str | None = None,
    device: str = "default", readonly: bool = False, ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[Client]:
    """Connect, log in, and close everything when the block ends.

    Error handling: ClientError (e.g. ``auth_failed``) if the server refuses the hello.
    """
    try:
        async with trio.open_nursery() as nursery:
            client = Client(
                nursery, url, username=username, password=password, token=token,
                device=device, readonly=readonly, ssl_context=ssl_context,
            )
            try:
                await client.connect()
                yield client
            finally:
                await client.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the nursery is ours: callers should see their own exception
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from group
        raise
