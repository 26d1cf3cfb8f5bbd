"""Slow or hostile clients cannot hurt others (DESIGN rule 6; SPEC.md §2.4, §4.5, §7.4, §7.5, §8).

Each test runs a server with short limits (``with_settings``) so that what
takes a minute in production takes a fraction of a second here. Clients that
misbehave at the WebSocket level (never answer a ping, never answer a close)
are built from a TCP stream and wsproto, which leaves every frame to the test.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import msgspec
import pytest
import trio
import trio_asyncio
from prometheus_client import REGISTRY
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Event, Ping, Request

from clients.python import open_client
from imserver import auth
from imserver.model import Role
from tests.conftest import PASSWORD, Running
from tests.conftest import test_settings as make_settings
from tests.helpers import take
from tests.imserver.test_bad_input import TIMEOUT, connect, hello, logged_in


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    """Run the test against a server with these settings (overrides the ``settings`` fixture)."""
    return pytest.mark.parametrize("settings", [make_settings(**overrides)], ids=["settings"])


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- a WebSocket client that does only what the test says -------------------------------------


class Wire:
    """A client WebSocket over TCP with wsproto: it answers nothing (no pong, no close) by itself."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.eof = False

    @classmethod
    @asynccontextmanager
    async def open(cls, server: Running) -> AsyncIterator[Wire]:
        stream = await trio.open_tcp_stream("127.0.0.1", server.addresses.ws_port)
        async with stream:
            wire = cls(stream)
            await wire.put(Request(host="127.0.0.1", target="/"))
            with trio.fail_after(TIMEOUT):
                assert isinstance(await wire.next(), AcceptConnection)
            yield wire

    async def put(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.put(BytesMessage(data=msgspec.msgpack.encode(frame)))

    async def next(self) -> Event | None:
        """The next WebSocket event, or None once the server closed TCP."""
        while True:
            for event in self.ws.events():
                return event
            if self.eof:
                return None
            data = await self.stream.receive_some(65536)
            if not data:
                self.eof = True
            self.ws.receive_data(data or None)

    async def frame(self) -> dict[str, Any]:
        (frame,), end = await self.frames(1)
        assert end is None, f"expected a frame, got {end}"
        return frame

    async def frames(self, count: int) -> tuple[list[dict[str, Any]], CloseConnection | None]:
        """The next ``count`` frames, fewer if the server closes first (then with its close frame).

        wsproto hands out a large frame in parts as they arrive; a frame is decoded once it is whole."""
        frames: list[dict[str, Any]] = []
        parts: list[bytes] = []
        while len(frames) < count:
            event = await self.next()
            if isinstance(event, BytesMessage):
                parts.append(event.data)
                if event.message_finished:
                    frames.append(msgspec.msgpack.decode(b"".join(parts)))
                    parts.clear()
            elif event is None or isinstance(event, CloseConnection):
                return frames, event
        return frames, None

    async def login(self, username: str) -> None:
        await self.send(hello(username))
        with trio.fail_after(TIMEOUT):
            assert (await self.frame())["op"] == "ok"


# -- rate limit (SPEC.md §7.5) ----------------------------------------------------------------


@with_settings(rate=5.0, burst=5)
async def test_rate_limit_refuses_bursts_with_retry_after_and_changes_nothing(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    await server.user("alice")
    async with open_client(server.url, username="dr", password=PASSWORD) as setup:
        group = (await setup.request("group_create", name="g", members=["alice"]))["conv"]
    async with logged_in(server, "dr") as dr, logged_in(server, "alice") as alice:
        # hello was not counted: the whole burst is left. 20 pings at once: 5 pass, the rest must wait.
        for rid in range(1, 21):
            await dr.send({"op": "ping", "rid": rid})
        answers = [await dr.reply() for _ in range(20)]
        assert sorted(a["rid"] for a in answers) == list(range(1, 21))
        passed = [a for a in answers if a["op"] == "ok"]
        limited = [a for a in answers if a["op"] == "error"]
        assert 5 <= len(passed) <= 6, answers  # the burst, plus at most one token refilled meanwhile
        for error in limited:
            assert error["code"] == "rate_limited", error
            assert 0 < error["retry_after_ms"] <= 1000 / 5 + 1, error
            assert error["message"]
        # Another connection has its own bucket.
        await alice.alive()
        # Waiting as told is enough.
        await trio.sleep(limited[-1]["retry_after_ms"] / 1000)
        await dr.alive()
    # A refused send stores nothing: 8 sends at once on a new connection (a full bucket of 5).
    async with logged_in(server, "dr") as dr:
        for i in range(8):
            await dr.send({"op": "send", "rid": 100 + i, "conv": group, "cid": f"m{i}", "text": f"第{i}条"})
        acks = {a["rid"]: a for a in [await dr.reply() for _ in range(8)]}
        stored = [i for i in range(8) if acks[100 + i]["op"] == "ok"]
        assert 5 <= len(stored) <= 6, acks
        assert all(acks[100 + i]["code"] == "rate_limited" for i in range(8) if i not in stored), acks
    async with logged_in(server, "alice") as alice:
        page = (await alice.ok("history", conv=group))["messages"]
        assert [m["text"] for m in page] == [f"第{i}条" for i in stored]
        assert [m["seq"] for m in page] == list(range(1, len(stored) + 1))


# -- slow consumers (SPEC.md §7.4: bye slow_consumer, close 4000) -----------------------------


@with_settings(outbound_queue=8)
async def test_slow_consumer_is_dropped_and_others_get_everything(server: Running) -> None:
    await server.user("bot", Role.BOT)  # bots' rate limit (500/s) lets it send 200 at once
    slow = await server.user("slow")
    fast = await server.user("fast")
    count, text = 200, "长" * 2000  # 6 kB each: far more than the kernel buffers and the queue of 8 can hold
    dropped_before = sample("imserver_disconnects_total", reason="slow_consumer")
    async with (
        open_client(server.url, username="bot", password=PASSWORD) as bot,
        open_client(server.url, username="fast", password=PASSWORD) as fast_client,
        logged_in(server, "slow") as slow_raw,  # logs in, then reads nothing until the sends are done
    ):
        group = (await bot.request("group_create", name="g", members=["slow", "fast"]))["conv"]
        fast_conns = set(server.server.hub.of_user(fast.id))
        assert len(fast_conns) == 1 and server.server.hub.of_user(slow.id)
        for i in range(count):
            assert (await bot.send(group, f"{i}:{text}")).seq == i + 1
        # The fast member got every message, in order, on its original connection.
        got = await take(fast_client, count)
        assert [m.seq for m in got] == list(range(1, count + 1))
        assert set(server.server.hub.of_user(fast.id)) == fast_conns
        # The slow one was dropped, and only it.
        with trio.fail_after(TIMEOUT):
            while server.server.hub.of_user(slow.id):  # noqa: ASYNC110 (the hub has no event for this)
                await trio.sleep(0.01)
        assert sample("imserver_disconnects_total", reason="slow_consumer") == dropped_before + 1
        # What the slow client sees: what fitted in the buffers, then the end. The bye and the close
        # frame (4000 slow_consumer) come "when it can" (§7.4); a client that reads nothing gets 1006.
        reason, frames = await slow_raw.closed()
        pushed = [f for f in frames if f["op"] == "msg"]
        assert 0 < len(pushed) < count
        assert [f["msg"]["seq"] for f in pushed] == list(range(1, len(pushed) + 1))
        assert reason is not None and reason.code in (4000, 1006), reason
        if reason.code == 4000:
            assert reason.reason == "slow_consumer" and (frames[-1]["op"], frames[-1]["code"]) == (
                "bye", "slow_consumer"
            )
        await bot.request("ping")  # the sender was not held up either
    # Reconnecting and syncing gives the slow user everything it missed.
    async with open_client(server.url, username="slow", password=PASSWORD) as again:
        convs = await again.sync()
        assert [c.conv for c in convs] == [group]
        assert [m.seq for m in convs[0].messages] == list(range(1, count + 1))
        assert convs[0].messages[-1].text == f"{count - 1}:{text}"


async def test_the_outbound_queue_gauge_counts_what_waits_and_returns_to_zero(server: Running) -> None:
    """NFR-2: ``imserver_outbound_queue_depth`` shows frames waiting for a reader that is behind, and nothing once
    it caught up; the gauge looks only at connections that are behind, so 10,000 idle phones cost a scrape nothing
    (issue 14 item 1)."""
    await server.user("bot", Role.BOT)
    await server.user("slow")
    count, text = 60, "长" * 2000  # 6 kB each: more than the kernel buffers hold, less than the queue (1,024)
    async with open_client(server.url, username="bot", password=PASSWORD) as bot, Wire.open(server) as slow:
        await slow.login("slow")
        group = (await bot.request("group_create", name="g", members=["slow"]))["conv"]
        await slow.frame()  # the conv push
        assert sample("imserver_outbound_queue_depth") == 0
        for i in range(count):
            await bot.send(group, f"{i}:{text}")
        assert sample("imserver_outbound_queue_depth") > 0
        frames, _ = await slow.frames(count)
        assert [f["msg"]["seq"] for f in frames] == list(range(1, count + 1))
        with trio.fail_after(TIMEOUT):
            while sample("imserver_outbound_queue_depth"):  # noqa: ASYNC110 (a gauge has no event)
                await trio.sleep(0.01)


# -- password checks (SPEC.md §4.5) -------------------------------------------------------------


@with_settings(password_checks=2)
async def test_password_checks_beyond_the_bound_are_shed_with_retry_after(server: Running) -> None:
    """Issue 14 item 5: 40 wrong passwords at once ran 40 argon2 checks at 64 MiB each (2.4 GB). Beyond
    ``password_checks`` at once a login is refused at once with ``rate_limited`` and ``retry_after_ms`` and
    closed (it is a hello, so fatal), instead of queued; the checks under way finish, and later logins work."""
    await server.user("alice")
    held = trio.Event()
    checking = 0
    original = auth.verify_password

    async def slow_verify(password_hash: str | None, password: str) -> bool:
        nonlocal checking
        checking += 1
        await held.wait()  # a check that lasts until the test lets it end
        return await original(password_hash, password)

    send, receive = trio.open_memory_channel[tuple[dict[str, Any], Any]](10)

    async def log_in_wrong() -> None:
        async with connect(server) as raw:
            error = await raw.answer(hello("alice", password="wrong"))
            reason, after = await raw.closed()
            assert after == []
            await send.send((error, reason))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "verify_password", slow_verify)
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(log_in_wrong)
            with trio.fail_after(TIMEOUT):
                shed = [await receive.receive() for _ in range(4)]
            assert checking == 2
            held.set()
            with trio.fail_after(TIMEOUT):
                checked = [await receive.receive() for _ in range(2)]
    for error, reason in shed:
        assert (error["code"], error["retry_after_ms"], error["rid"]) == ("rate_limited", 1000, 1), error
        assert (reason.code, reason.reason) == (1008, "rate_limited")
    assert [(error["code"], reason.reason) for error, reason in checked] == [("auth_failed", "auth_failed")] * 2
    async with logged_in(server, "alice") as alice:
        await alice.alive()


# -- liveness: idle timeout and hello deadline (SPEC.md §2.4, §4.5) ---------------------------


@with_settings(idle_timeout=0.3, pong_timeout=0.3)
async def test_idle_client_that_answers_pings_stays_connected(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    await server.user("alice")
    caplog.set_level(logging.DEBUG, logger="trio-websocket")
    async with logged_in(server, "alice") as raw:
        await trio.sleep(1.5)  # five idle timeouts
        await raw.alive()
        pings = [r for r in caplog.records if r.msg == "%s ping %r" and r.args and r.args[0] is raw.ws]
        assert len(pings) >= 2, "the server should have pinged the idle client"
        assert len(server.server.hub.connections()) == 1


@with_settings(idle_timeout=0.2, pong_timeout=1.0)
async def test_a_silent_client_that_answers_pings_gets_one_ping_per_idle_timeout(server: Running) -> None:
    """Issue 14 item 1 (SPEC.md §2.4): a pong counts as hearing from the client. When it did not, the server pinged
    again right after every pong, thousands of times a second per silent phone, and silent phones took a core."""
    await server.user("alice")
    async with Wire.open(server) as wire:
        await wire.login("alice")
        with trio.fail_after(TIMEOUT):
            first = await wire.next()
        assert isinstance(first, Ping), first
        await wire.put(first.response())
        pings = 0
        with trio.move_on_after(5 * 0.2):  # five idle timeouts
            while pings < 100:
                event = await wire.next()
                assert isinstance(event, Ping), event
                pings += 1
                await wire.put(event.response())
        assert pings <= 5 + 1, f"{pings} pings in five idle timeouts"
        await wire.send({"op": "ping", "rid": 2})
        with trio.fail_after(TIMEOUT):
            while not isinstance(event := await wire.next(), BytesMessage):
                assert isinstance(event, Ping), event
                await wire.put(event.response())
        assert msgspec.msgpack.decode(event.data)["rid"] == 2, "the client is still served"


@with_settings(idle_timeout=0.3, pong_timeout=0.3)
async def test_idle_client_that_never_answers_gets_bye_and_close_4001(server: Running) -> None:
    await server.user("alice")
    async with Wire.open(server) as wire:
        await wire.login("alice")
        with trio.fail_after(TIMEOUT):  # long before the default idle timeout: these settings act
            assert isinstance(await wire.next(), Ping)  # not answered
            assert (await wire.frame())["code"] == "idle_timeout"
            close = await wire.next()
        assert isinstance(close, CloseConnection) and (close.code, close.reason) == (4001, "idle_timeout"), close


@with_settings(hello_timeout=0.3)
async def test_connection_without_hello_is_closed_after_the_deadline(server: Running) -> None:
    await server.user("alice")
    async with connect(server) as raw:
        reason, frames = await raw.closed()  # within TIMEOUT, long before the default deadline: this setting acts
        assert [(f["op"], f["code"]) for f in frames] == [("bye", "auth_required")]
        assert reason is not None and (reason.code, reason.reason) == (1008, "auth_required")
    async with logged_in(server, "alice") as raw:  # a client that says hello in time is served
        await trio.sleep(0.5)
        await raw.alive()


@with_settings(idle_timeout=0.3, pong_timeout=0.3, hello_timeout=0.3)
async def test_peer_that_ignores_the_close_is_cut_off(server: Running) -> None:
    await server.user("alice")
    async with Wire.open(server) as idle, Wire.open(server) as mute:
        await idle.login("alice")  # then never answers the ping nor the close
        # mute never says hello (the deadline); idle never pongs (the idle timeout)
        for wire in (idle, mute):
            with trio.fail_after(TIMEOUT):
                while not isinstance(await wire.next(), CloseConnection):
                    pass
        # The server sent its close frame; it may wait a little for the answer, not for ever.
        with trio.move_on_after(1.5):
            for wire in (idle, mute):
                while await wire.next() is not None:
                    pass
        assert (idle.eof, mute.eof) == (True, True), "the server kept the TCP connections open"
        with trio.fail_after(TIMEOUT):
            await server.server.hub.wait_empty()


@with_settings(idle_timeout=0.3, pong_timeout=0.3)
async def test_requests_that_cross_the_servers_ping_do_not_make_it_time_out(server: Running) -> None:
    await server.user("alice")
    async with Wire.open(server) as wire:
        await wire.login("alice")
        with trio.fail_after(TIMEOUT):
            ping = await wire.next()
        assert isinstance(ping, Ping)
        # The client had two requests on the way when the ping came; its pong follows them.
        await wire.send({"op": "ping", "rid": 2})
        await wire.send({"op": "ping", "rid": 3})
        await wire.put(ping.response())
        await wire.send({"op": "ping", "rid": 4})
        with trio.fail_after(TIMEOUT):
            frames, close = await wire.frames(3)
        assert [(f["op"], f.get("rid")) for f in frames] == [("ok", 2), ("ok", 3), ("ok", 4)], (frames, close)
        # And it stays: the pong arrived, so no idle_timeout follows.
        with trio.move_on_after(0.3 + 0.3 + 0.2):
            event = await wire.next()
            assert isinstance(event, Ping), event  # only the next idle ping may come


# -- a hostile message must not fail other people's messages (DESIGN rule 6) -------------------


async def test_a_message_the_database_refuses_fails_alone_and_its_batch_is_stored(server: Running) -> None:
    """Issue 14 item 2: a row Postgres refuses failed its whole batch, and its sender was told ``unavailable`` (retry
    for ever). Now it fails alone with ``bad_request`` and the messages batched with it are stored, in order.
    Validation refuses every known poison (test_bad_input.py); to reach the writer anyway, this database refuses
    texts holding POISON."""
    await server.user("dr", Role.STAFF)
    for name in ("alice", "mallory"):
        await server.user(name)

    async def poison_check(conn: Any) -> None:
        await conn.execute("alter table messages add constraint poison check (text not like '%POISON%') not valid")
    await server.store.run("test_poison_check", poison_check)
    async with (
        logged_in(server, "dr") as dr,
        logged_in(server, "alice") as alice,
        logged_in(server, "mallory") as mallory,
        trio.open_nursery() as nursery,
    ):
        group = (await dr.ok("group_create", name="g", members=["alice", "mallory"]))["conv"]
        # Hold the conversation's row lock so the writer's next batch waits, and the drafts after it
        # are committed together in the batch after that, deterministically.
        held, release = asyncio.Event(), asyncio.Event()

        async def hold(conn: Any) -> None:
            await conn.execute("select 1 from conversations where id = $1 for update", int(group[2:]))
            held.set()
            await release.wait()

        nursery.start_soon(partial(server.store.run, "test_hold_lock", hold))
        try:
            with trio.fail_after(TIMEOUT):
                await trio_asyncio.aio_as_trio(held.wait)()
            await dr.send({"op": "send", "rid": 1, "conv": group, "cid": "first", "text": "first"})
            await _until(server, "select count(*) from pg_stat_activity where wait_event_type = 'Lock'", 1)
            # The writer is stuck on "first"; what is sent now waits in its queue and forms the next batch.
            queued = _writer_queue()
            for rid, (sender, cid, text) in enumerate(
                [(alice, "a1", "你好"), (mallory, "poison", "POISON"), (alice, "a2", "在吗"), (alice, "a3", "谢谢")],
                start=2,
            ):
                await sender.send({"op": "send", "rid": rid, "conv": group, "cid": cid, "text": text})
                queued += 1
                with trio.fail_after(TIMEOUT):
                    while _writer_queue() < queued:  # noqa: ASYNC110 (a gauge: poll it)
                        await trio.sleep(0.005)
        finally:
            release.set()
        assert (await dr.reply())["op"] == "ok"
        poisoned = await mallory.reply()
        assert (poisoned["op"], poisoned["code"], poisoned["rid"]) == ("error", "bad_request", 3), poisoned
        acks = [await alice.reply() for _ in range(3)]
        assert [(a["op"], a["rid"]) for a in acks] == [("ok", 2), ("ok", 4), ("ok", 5)], acks
        page = (await dr.ok("history", conv=group))["messages"]
        assert [(m["seq"], m["text"]) for m in page] == [(1, "first"), (2, "你好"), (3, "在吗"), (4, "谢谢")]
        # Refused, not lost: sent again it is refused again, and nothing was stored under its cid.
        again = await mallory.request("send", conv=group, cid="poison", text="POISON")
        assert again["code"] == "bad_request", again
        await mallory.ok("send", conv=group, cid="poison", text="fixed")


def _writer_queue() -> int:
    return int(sample("imserver_writer_queue_depth"))


async def _until(server: Running, query: str, value: int) -> None:
    async def fetch(conn: Any) -> int:
        result: int = await conn.fetchval(query)
        return result
    with trio.fail_after(TIMEOUT):
        while await server.store.run("test_poll", fetch, transaction=False) < value:  # noqa: ASYNC110
            await trio.sleep(0.005)
