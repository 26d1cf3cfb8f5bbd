"""A trio client for protocol v1 (protocol/SPEC.md).

``open_client`` logs in and keeps one connection; ``send`` retries over a new
connection with the same client message id when an ack is lost, so a retry
never makes a duplicate (SPEC.md §5.1). ``messages`` yields each message of
the user's conversations exactly once and in order, live or after a
reconnect, by tracking the last seq per conversation and filling gaps with
``sync`` (SPEC.md §5.2).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import msgspec
import trio

from clients.python import websocket
from clients.python.websocket import ClientWebSocket, ConnectionClosed
from protocol import Message, ProtocolError, decode_frame, encode
from protocol.frames import PROTOCOL_VERSIONS


class ClientError(Exception):
    """The server answered with an error frame (SPEC.md §7)."""

    def __init__(self, frame: dict[str, Any]) -> None:
        self.code: str = frame.get("code", "")
        self.message: str = frame.get("message", "")
        self.detail: str | None = frame.get("detail")
        self.field: str | None = frame.get("field")
        self.frame = frame
        super().__init__(f"{self.code}: {self.detail or self.message}")


class ConnectionLost(Exception):
    """The connection closed before the answer came; ``reason`` is the close reason, if any."""

    def __init__(self, code: int | None = None, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed ({code} {reason})")


class _Slot:
    def __init__(self) -> None:
        self.event = trio.Event()
        self.frame: dict[str, Any] | None = None
        self.lost: ConnectionLost | None = None


class _Link:
    """One WebSocket: request/answer pairing and the pushes it received."""

    def __init__(self, ws: ClientWebSocket, pushes: trio.MemorySendChannel[dict[str, Any]]) -> None:
        self.ws = ws
        self._pushes = pushes
        self._rids = itertools.count(1)
        self._slots: dict[int, _Slot] = {}
        self.lost: ConnectionLost | None = None

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        if self.lost is not None:
            raise self.lost
        rid = next(self._rids)
        slot = self._slots[rid] = _Slot()
        try:
            await self.ws.send_message(encode({"op": op, "rid": rid, **fields}))
        except ConnectionClosed as exc:
            raise _lost(exc) from None
        await slot.event.wait()
        if slot.lost is not None:
            raise slot.lost
        assert slot.frame is not None
        if slot.frame.get("op") == "error":
            raise ClientError(slot.frame)
        return slot.frame

    async def read_forever(self) -> None:
        try:
            while True:
                frame = decode_frame(await self.ws.receive_message())
                rid = frame.get("rid")
                if frame.get("op") in ("ok", "error") and rid in self._slots:
                    slot = self._slots.pop(rid)
                    slot.frame = frame
                    slot.event.set()
                else:
                    self._pushes.send_nowait(frame)
        except ConnectionClosed as exc:
            self.lost = _lost(exc)
        except ProtocolError:
            self.lost = ConnectionLost(None, "bad frame from server")
            await self.ws.aclose()
        for slot in self._slots.values():
            slot.lost = self.lost
            slot.event.set()
        self._slots.clear()
        self._pushes.send_nowait({"op": "_lost", "code": self.lost.code, "reason": self.lost.reason})


class Client:
    """A logged-in user. Create it with :func:`open_client`."""

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
        self._pushes_send, self._pushes = trio.open_memory_channel[dict[str, Any]](math.inf)
        self._link: _Link | None = None
        self._link_scope: trio.CancelScope | None = None
        self.welcome: dict[str, Any] = {}
        self.positions: dict[str, int] = {}
        """The highest seq delivered by :meth:`messages`, per conversation."""

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        """(Re)connect and log in; returns the welcome (SPEC.md §4)."""
        await self.close()
        with trio.fail_after(CONNECT_TIMEOUT):
            ws = await websocket.connect(self.url, ssl_context=self._ssl, max_message=MAX_MESSAGE)
        link = _Link(ws, self._pushes_send)
        scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                await link.read_forever()
        self._nursery.start_soon(run)
        self._link, self._link_scope = link, scope
        hello: dict[str, Any] = {"versions": list(PROTOCOL_VERSIONS), "device": self.device, "readonly": self.readonly}
        if self.token:
            hello["token"] = self.token
        else:
            hello |= {"username": self.username, "password": self._password}
        self.welcome = await link.request("hello", **hello)
        self.token = self.welcome.get("token", self.token)
        return self.welcome

    async def close(self) -> None:
        if self._link is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self._link.ws.aclose()
            assert self._link_scope is not None
            self._link_scope.cancel()
            self._link = None

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its answer.

        Error handling: ClientError for an error frame, ConnectionLost if the
        connection closed first (the request may or may not have taken effect).
        """
        if self._link is None:
            await self.connect()
        assert self._link is not None
        return await self._link.request(op, **fields)

    # -- operations -------------------------------------------------------------------------

    async def send(
        self, conv: str, text: str | None = None, *, kind: str = "text", body: dict[str, Any] | None = None,
        cid: str | None = None, only: str | None = None, retries: int = 5,
    ) -> dict[str, Any]:
        """Send a message; on a lost connection reconnect and resend with the same ``cid``.

        ``only`` makes it mention-only: the member id (as ``members`` shows it) who alone may see it.
        """
        cid = cid or uuid.uuid4().hex
        fields: dict[str, Any] = {"conv": conv, "cid": cid, "kind": kind}
        if only is not None:
            fields["only"] = only
        if text is not None:
            fields["text"] = text
        if body is not None:
            fields["body"] = body
        return await self._retrying(lambda: self.request("send", **fields), retries)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], retries: int) -> T:
        """Run ``attempt``, reconnecting and running it again after a lost connection or ``unavailable``;
        an attempt must be safe to repeat (a ``send`` with its ``cid``, a resumable upload)."""
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
                self._link = None
            await trio.sleep(min(0.1 * 2**tries, 2))
        raise AssertionError("unreachable")

    async def upload(self, data: bytes, mime: str, name: str = "", *, retries: int = 5) -> dict[str, Any]:
        """Store a file on the server in parts (SPEC.md §5.18); returns the attachment to put in a message body.

        After a lost connection it begins the same file again, which tells how much the server already has,
        and goes on from there.

        Error handling: ClientError, e.g. ``file_too_large``, or ``bad_request`` naming ``mime`` for a type
        the server does not accept or content that is not of that type.
        """
        digest = hashlib.sha256(data).hexdigest()

        async def attempt() -> dict[str, Any]:
            begun = await self.request("upload_begin", mime=mime, size=len(data), sha256=digest, name=name)
            part = self.welcome["limits"]["max_frame"] - PART_OVERHEAD
            received = begun["received"]
            while received < len(data):
                answer = await self.request(
                    "upload_part", id=begun["id"], offset=received, data=data[received:received + part]
                )
                received = answer["received"]
            stored = await self.request("upload_end", id=begun["id"])
            return {k: v for k, v in stored.items() if k not in ("op", "rid")}
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
                answer = await self.request("fetch", id=attachment_id, offset=received)
                chunks.append(answer["data"])
                received += len(answer["data"])
                if received >= answer["size"]:
                    data = b"".join(chunks)
                    if hashlib.sha256(data).hexdigest() != answer["sha256"]:
                        raise ValueError(f"{attachment_id}: the bytes fetched do not match its sha256")
                    return data
        return await self._retrying(attempt, retries)

    async def history(
        self, conv: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> tuple[list[Message], bool]:
        fields: dict[str, Any] = {"conv": conv, "limit": limit}
        if before is not None:
            fields["before"] = before
        if after is not None:
            fields["after"] = after
        answer = await self.request("history", **fields)
        return [_message(m) for m in answer["messages"]], answer["more"]

    async def sync(self, after: dict[str, int] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Every conversation with all messages after ``after``, following ``more`` to the end."""
        after = dict(after or {})
        merged: dict[str, dict[str, Any]] = {}
        while True:
            answer = await self.request("sync", after=after, limit=limit)
            again = False
            for conv in answer["convs"]:
                got = [_message(m) for m in conv.get("messages", [])]
                hidden = conv.get("hidden", [])
                entry = merged.setdefault(conv["conv"], conv | {"messages": [], "hidden": []})
                entry["messages"].extend(got)
                entry["hidden"].extend(hidden)
                covered = _covered(got, hidden)
                if covered is not None:
                    after[conv["conv"]] = covered
                again = again or conv.get("more", False)
            if not again:
                return list(merged.values())

    async def read(self, conv: str, seq: int) -> dict[str, Any]:
        return await self.request("read", conv=conv, seq=seq)

    # -- quick replies (SPEC.md §5.19) and facts (§5.20) -------------------------------------

    async def quick_replies(self, typed: str = "", *, limit: int = 10) -> list[dict[str, Any]]:
        """What ``/typed`` offers, best first, each with the ``prompts`` to ask the sender for."""
        return list((await self.request("qr_search", q=typed, limit=limit))["replies"])

    async def save_quick_reply(
        self, shortcut: str, title: str, text: str | None = None, *, kind: str = "text",
        body: dict[str, Any] | None = None, scope: str = "personal", team: str | None = None, id: int | None = None,
    ) -> dict[str, Any]:
        """Create a quick reply, or change the one ``id`` names; the saved entry."""
        fields = {"id": id, "scope": scope, "team": team, "kind": kind, "text": text, "body": body}
        return await self.request(
            "qr_save", shortcut=shortcut, title=title, **{k: v for k, v in fields.items() if v is not None}
        )

    async def send_quick_replies(
        self, conv: str, ids: list[int], *, member: str | None = None, fill: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Fill quick replies in for ``conv`` and send the messages they make; the acks.

        ``member`` is the patient they are for (needed in a group when they name her or her facts).
        Error handling: ClientError ``bad_request`` with ``field`` ``fill`` names the prompts still to fill in.
        """
        fields: dict[str, Any] = {"conv": conv, "ids": ids, "fill": fill or {}}
        if member is not None:
            fields["member"] = member
        ready = (await self.request("qr_render", **fields))["messages"]
        return [await self.send(conv, m.get("text"), kind=m["kind"], body=m.get("body")) for m in ready]

    async def set_fact(self, user: str, key: str, value: str | None) -> dict[str, Any]:
        """Record a fact about a patient for templates (``{{fact.key}}``); None removes it."""
        return await self.request("facts_set", user=user, key=key, value=value)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every push frame as it arrives (``msg``, ``read``, ``conv``, ``bye``; ``_lost`` when the link drops)."""
        async for frame in self._pushes:
            yield frame

    async def messages(self, *, resync: bool = True, new_from_end: bool = False) -> AsyncIterator[Message]:
        """Each message of the user's conversations once, in seq order per conversation.

        Starts from ``positions`` (catching up with ``sync``), follows live
        pushes, fills gaps, and reconnects and resyncs when the link drops.
        With ``new_from_end`` a conversation not in ``positions`` starts at its
        first live message instead of its history (a bot added to a group must
        not act on what was said there before it came).
        """
        if resync:
            for message in await self._catch_up():
                yield message
        async for frame in self._pushes:
            if frame.get("op") == "_lost":
                await trio.sleep(0.2)
                await self.connect()
                for message in await self._catch_up():
                    yield message
            elif frame.get("op") == "hidden" and not frame.get("retract"):
                # Seqs this user may not see (SPEC.md §5.2): move past them, or fill the gap before them.
                conv, first, end = frame["conv"], frame["ranges"][0][0], frame["ranges"][-1][1]
                if first > self.positions.get(conv, 0) + 1:
                    for missed in await self._catch_up({conv: self.positions.get(conv, 0)}):
                        yield missed
                if first <= self.positions.get(conv, 0) + 1:
                    self.positions[conv] = max(self.positions.get(conv, 0), end)
            elif frame.get("op") == "msg":
                message = _message(frame["msg"])
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
            if only is not None and conv["conv"] not in only:
                continue
            for message in conv["messages"]:
                if message.seq > self.positions.get(message.conv, 0):
                    self.positions[message.conv] = message.seq
                    found.append(message)
            covered = _covered(conv["messages"], conv["hidden"])
            if covered is not None and covered > self.positions.get(conv["conv"], 0):
                self.positions[conv["conv"]] = covered
        return found


CONNECT_TIMEOUT = 10.0
MAX_MESSAGE = 4 << 20
PART_OVERHEAD = 256
"""Bytes of an ``upload_part`` frame besides its data: each part fills a frame (``limits.max_frame``) up to this."""
T = TypeVar("T")


def _lost(exc: ConnectionClosed) -> ConnectionLost:
    return ConnectionLost(exc.code, exc.reason)


def _covered(messages: list[Message], hidden: list[list[int]]) -> int | None:
    """The highest seq a sync page accounts for, shown or hidden (the page covers its seqs without gaps)."""
    tops = [m.seq for m in messages] + [r[1] for r in hidden]
    return max(tops) if tops else None


def _message(value: dict[str, Any]) -> Message:
    return msgspec.convert(value, Message)


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
