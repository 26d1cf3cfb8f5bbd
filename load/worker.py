"""A load-generating process: many simulated users, each a real protocol client (the Python SDK).

Started by the coordinator (``load.run``) as ``python -m load.worker``; it
reads one job line and then commands, one JSON object per line, on stdin, and
answers on stdout. Every receiver checks what it gets: each message of its
conversations once (a per-conversation bitmap of seqs), in seq order, and the
time from the send (stamped in the text) to its arrival.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import math
import random
import resource
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import trio

from clients.python.client import Client, ClientError, ConnectionLost, Lost, open_client
from load.stats import Histogram
from protocol import Message
from protocol.frames import MsgPush, Ping, Send

CONNECT_CONCURRENCY = 200
"""Connections a worker opens at once; more only lengthens the server's accept queue."""


class Track:
    """What one receiver got of one conversation since the run's start."""

    __slots__ = ("base", "count", "last", "seen")

    def __init__(self, base: int) -> None:
        self.base = base
        self.seen = bytearray()
        self.last = base
        self.count = 0

    def add(self, seq: int) -> str | None:
        """Record a delivery; 'duplicate' or 'out_of_order' if it is one."""
        i = seq - self.base - 1
        if i < 0:
            return None  # older than the run: not ours to count
        if i >= len(self.seen):
            self.seen.extend(bytes(i - len(self.seen) + 256))
        if self.seen[i]:
            return "duplicate"
        self.seen[i] = 1
        self.count += 1
        if seq < self.last:
            return "out_of_order"
        self.last = seq
        return None


class Tally:
    """A worker's counters and histograms for the current step."""

    def __init__(self) -> None:
        self.sent = 0
        self.accepted = 0
        self.errors: dict[str, int] = {}
        self.behind = 0
        self.delivered = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.reconnects = 0
        self.churned = 0
        self.acks = Histogram()
        self.deliver = Histogram()
        self.worst: dict[int, float] = {}
        """Per second of sending (unix time): the slowest delivery of a message sent then, in ms; shows stalls."""
        self.deliver_by_second: dict[int, Histogram] = {}
        self.ack_by_second: dict[int, Histogram] = {}
        """Per second of sending (unix time), for a flood's before, during and after (``Scenario.flood``)."""
        self.acked: dict[str, dict[str, int]] = {}
        """Acks received, light and flood: conversation -> sender id -> count (checked against the database)."""
        self.flood: dict[str, int] = {}
        """The flooders' sends: ``sent``, ``acked``, ``error:CODE``."""
        self.flood_done_s = 0.0
        """When the last flooder's last send was answered, in seconds after the traffic began."""

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def ack(self, conv: str, sender: int) -> None:
        senders = self.acked.setdefault(conv, {})
        senders[str(sender)] = senders.get(str(sender), 0) + 1

    def count_flood(self, what: str) -> None:
        self.flood[what] = self.flood.get(what, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent, "accepted": self.accepted, "errors": self.errors, "behind": self.behind,
            "delivered": self.delivered, "duplicates": self.duplicates, "out_of_order": self.out_of_order,
            "reconnects": self.reconnects, "churned": self.churned,
            "ack": self.acks.to_json(), "deliver": self.deliver.to_json(), "worst": self.worst,
            "deliver_by_second": {s: h.to_json() for s, h in self.deliver_by_second.items()},
            "ack_by_second": {s: h.to_json() for s, h in self.ack_by_second.items()},
            "acked": self.acked, "flood": self.flood, "flood_done_s": self.flood_done_s,
        }


class Agent:
    """One simulated user: its client, the conversations it receives and where it sends."""

    def __init__(self, spec: dict[str, Any], positions: dict[str, int], worker: Worker) -> None:
        self.id: int = spec["id"]
        self.token: str = spec["token"]
        self.sends: list[str] = spec["sends"]
        self.storm: bool = spec.get("storm", False)
        self.tracks = {conv: Track(positions[conv]) for conv in spec["convs"]}
        self.worker = worker
        self.client: Client | None = None
        self.in_flight = trio.Semaphore(worker.scenario["max_in_flight"])
        self.dropped = False
        self.stop = trio.Event()

    async def live(self, limiter: trio.CapacityLimiter, *, task_status: trio.TaskStatus[None]) -> None:
        """Connect (at most ``limiter`` at once), report started, then receive and heartbeat until stopped."""
        await limiter.acquire()
        started = False
        try:
            async with open_client(self.worker.url, token=self.token, device="imload") as client:
                limiter.release()
                started = True
                task_status.started()
                self.client = client
                self.worker.connected += 1
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._receive, client)
                    if self.worker.scenario["heartbeat_s"]:
                        nursery.start_soon(self._heartbeat, client)
                    await self.stop.wait()
                    nursery.cancel_scope.cancel()
        except Exception as exc:
            self.worker.failed(exc)
        finally:
            if not started:
                limiter.release()
                task_status.started()

    async def _receive(self, client: Client) -> None:
        tally = self.worker
        async for event in client.events():
            if isinstance(event, MsgPush):
                self.record(event.msg, live=True)
            elif isinstance(event, Lost) and not self.dropped:
                tally.tally.reconnects += 1
                await trio.sleep(0.2)
                try:
                    await client.connect()
                    await self.catch_up(client)
                except (ClientError, ConnectionLost, OSError, trio.TooSlowError) as exc:
                    tally.tally.error(f"reconnect: {type(exc).__name__}")

    def record(self, msg: Message, *, live: bool) -> None:
        track = self.tracks.get(msg.conv)
        if track is None:
            return
        verdict = track.add(msg.seq)
        tally = self.worker.tally
        if verdict == "duplicate":
            tally.duplicates += 1
            return
        if verdict == "out_of_order":
            tally.out_of_order += 1
        tally.delivered += 1
        if live:
            stamp, _, _ = msg.text.partition(" ")
            try:
                sent_ns = int(stamp, 16)
            except ValueError:
                return
            us = max(time.time_ns() - sent_ns, 0) / 1000
            tally.deliver.record(us)
            second = sent_ns // 1_000_000_000
            tally.deliver_by_second.setdefault(second, Histogram()).record(us)
            if us / 1000 > tally.worst.get(second, 0.0):
                tally.worst[second] = us / 1000

    async def catch_up(self, client: Client) -> None:
        """Fetch what was missed while offline (the app's resync)."""
        after = {conv: track.last for conv, track in self.tracks.items()}
        for conv in await client.sync(after):
            for message in conv.messages:
                self.record(message, live=False)

    async def _heartbeat(self, client: Client) -> None:
        period = self.worker.scenario["heartbeat_s"]
        await trio.sleep(random.uniform(0, period))
        while True:
            if not self.dropped:
                with contextlib.suppress(ClientError, ConnectionLost, OSError):
                    await client.request(Ping())
            await trio.sleep(period)

    async def send(self, conv: str) -> None:
        tally = self.worker.tally
        client = self.client
        if client is None:
            return
        if self.in_flight.value == 0:
            tally.behind += 1
        async with self.in_flight:
            tally.sent += 1
            sent_ns = time.time_ns()
            text = f"{sent_ns:x} {self.worker.filler}"
            started = time.perf_counter()
            try:
                await client.request(Send(conv=conv, cid=uuid.uuid4().hex, text=text))
            except ClientError as exc:
                tally.error(exc.code)
                return
            except (ConnectionLost, OSError, trio.BrokenResourceError) as exc:
                tally.error(type(exc).__name__)
                return
            tally.accepted += 1
            tally.ack(conv, self.id)
            us = (time.perf_counter() - started) * 1e6
            tally.acks.record(us)
            tally.ack_by_second.setdefault(sent_ns // 1_000_000_000, Histogram()).record(us)


    async def flood(self, conv: str, lanes: int, until: float, retries: int) -> None:
        """Keep ``lanes`` sends into ``conv`` unanswered until ``until`` (trio time), each through the SDK's ``send``,
        which resends a shed message after its ``retry_after_ms`` (``Scenario.flood``)."""
        tally = self.worker.tally

        async def lane() -> None:
            while trio.current_time() < until and self.client is not None:
                tally.count_flood("sent")
                try:
                    await self.client.send(conv, f"{time.time_ns():x} {self.worker.filler}", retries=retries)
                except ClientError as exc:
                    tally.count_flood(f"error:{exc.code}")
                    continue
                except (ConnectionLost, OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
                    tally.count_flood(f"error:{type(exc).__name__}")
                    continue
                tally.count_flood("acked")
                tally.ack(conv, self.id)
        async with trio.open_nursery() as nursery:
            for _ in range(lanes):
                nursery.start_soon(lane)


class Worker:
    def __init__(self, job: dict[str, Any]) -> None:
        self.url: str = job["url"]
        self.scenario: dict[str, Any] = job["scenario"]
        filler = job["filler"]
        self.filler: str = filler
        self.flooders = [(Agent(spec | {"convs": [], "sends": []}, {}, self), spec["conv"]) for spec in job["flooders"]]
        self.agents = [Agent(spec, job["positions"], self) for spec in job["agents"]] + [a for a, _ in self.flooders]
        self.churners: list[dict[str, Any]] = job["churners"]
        self.tally = Tally()
        self.connected = 0
        self.failures: dict[str, int] = {}
        self._out = trio.lowlevel.FdStream(sys.stdout.fileno())

    def failed(self, exc: Exception) -> None:
        key = f"{type(exc).__name__}: {exc}"[:120]
        self.failures[key] = self.failures.get(key, 0) + 1

    async def say(self, **fields: Any) -> None:
        await self._out.send_all((json.dumps(fields, ensure_ascii=False) + "\n").encode())

    async def run(self, commands: trio.MemoryReceiveChannel[dict[str, Any]]) -> None:
        async with trio.open_nursery() as nursery:
            limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
            started = time.perf_counter()
            async with trio.open_nursery() as connecting:
                for agent in self.agents:
                    connecting.start_soon(nursery.start, agent.live, limiter)
            gc.freeze()  # the clients live for the whole run: keep them out of full collections (pauses of ~25 ms)
            await self.say(
                event="ready", connected=self.connected, failed=self.failures,
                seconds=round(time.perf_counter() - started, 2),
            )
            async for command in commands:
                handler = getattr(self, f"_cmd_{command['cmd']}")
                if await handler(nursery, command):
                    break
            for agent in self.agents:
                agent.stop.set()

    async def _cmd_traffic(self, nursery: trio.Nursery, command: dict[str, Any]) -> bool:
        """Send at ``rate`` for ``duration`` seconds, round robin over this worker's send slots."""
        self.tally = Tally()
        slots = [(agent, conv) for agent in self.agents if agent.client for conv in agent.sends]
        rate, duration = command["rate"], command["duration"]
        started = time.perf_counter()
        async with trio.open_nursery() as sending:
            if command.get("churn_per_s"):
                sending.start_soon(self._churn, command["churn_per_s"], duration)
            flood = self.scenario["flood"]
            if flood:
                for agent, conv in self.flooders:
                    sending.start_soon(self._flood_from, trio.current_time(), agent, conv, flood)
            if slots and rate > 0:
                def send(k: int) -> None:
                    agent, conv = slots[k % len(slots)]
                    sending.start_soon(agent.send, conv)
                await _paced(rate, duration, send)
            else:
                await trio.sleep(duration)
        await self.say(event="sent", seconds=round(time.perf_counter() - started, 3), tally=self.tally.to_json())
        return False

    async def _flood_from(self, started: float, agent: Agent, conv: str, flood: dict[str, Any]) -> None:
        begins = started + flood["start_s"]
        await trio.sleep_until(begins)
        await agent.flood(conv, flood["in_flight"], begins + flood["duration_s"], flood["retries"])
        self.tally.flood_done_s = max(self.tally.flood_done_s, trio.current_time() - started)

    async def _churn(self, rate: float, duration: float) -> None:
        """Users who open the app, look at their conversation list and leave."""
        if not self.churners:
            return
        turn = itertools.cycle(self.churners)
        async with trio.open_nursery() as nursery:
            await _paced(rate, duration, lambda _: nursery.start_soon(self._churn_once, next(turn)))

    async def _churn_once(self, spec: dict[str, Any]) -> None:
        try:
            async with open_client(self.url, token=spec["token"], device="imload-churn") as client:
                await client.request("convs")
            self.tally.churned += 1
        except Exception as exc:
            self.tally.error(f"churn: {type(exc).__name__}")

    async def _cmd_burst(self, nursery: trio.Nursery, command: dict[str, Any]) -> bool:
        """Send ``count`` messages into each named conversation, one after another (a storm's missed messages)."""
        self.tally = Tally()
        wanted = set(command["convs"])
        async with trio.open_nursery() as sending:
            for agent in self.agents:
                for conv in agent.sends:
                    if conv in wanted:
                        wanted.discard(conv)
                        sending.start_soon(self._burst_one, agent, conv, command["count"])
        await self.say(event="burst", tally=self.tally.to_json())
        return False

    @staticmethod
    async def _burst_one(agent: Agent, conv: str, count: int) -> None:
        for _ in range(count):
            await agent.send(conv)

    async def _cmd_drop(self, nursery: trio.Nursery, command: dict[str, Any]) -> bool:
        """The storm's first half: every storm agent's connection goes at once."""
        storm = [a for a in self.agents if a.storm and a.client]
        for agent in storm:
            agent.dropped = True
        async with trio.open_nursery() as closing:
            for agent in storm:
                assert agent.client is not None
                closing.start_soon(agent.client.close)
        await self.say(event="dropped", count=len(storm))
        return False

    async def _cmd_reconnect(self, nursery: trio.Nursery, command: dict[str, Any]) -> bool:
        """The storm's second half: all reconnect at once and sync; report when the last has caught up."""
        storm = [a for a in self.agents if a.storm and a.client]
        started = time.perf_counter()
        synced = Histogram()
        failed: dict[str, int] = {}

        async def back(agent: Agent) -> None:
            assert agent.client is not None
            for attempt in range(5):
                try:
                    await agent.client.connect()
                    await agent.catch_up(agent.client)
                    agent.dropped = False
                    synced.record((time.perf_counter() - started) * 1e6)
                    return
                except (ClientError, ConnectionLost, OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
                    if attempt == 4:
                        key = type(exc).__name__
                        failed[key] = failed.get(key, 0) + 1
                    await trio.sleep(0.5 * (attempt + 1))
        async with trio.open_nursery() as reconnecting:
            for agent in storm:
                reconnecting.start_soon(back, agent)
        await self.say(
            event="reconnected", count=synced.count, failed=failed, synced=synced.to_json(),
            seconds=round(time.perf_counter() - started, 3),
        )
        return False

    async def _cmd_check(self, nursery: trio.Nursery, command: dict[str, Any]) -> bool:
        """Compare what each receiver got with what the database holds (``stored``: conv -> sender -> count)."""
        stored: dict[str, dict[str, int]] = command["stored"]
        expected = delivered = missing = extra = 0
        for agent in self.agents:
            if agent.client is None:
                continue
            for conv, track in agent.tracks.items():
                by_sender = stored.get(conv, {})
                want = sum(by_sender.values()) - by_sender.get(str(agent.id), 0)
                expected += want
                delivered += track.count
                missing += max(want - track.count, 0)
                extra += max(track.count - want, 0)
        await self.say(
            event="checked", expected=expected, delivered=delivered, missing=missing, extra=extra,
            tally=self.tally.to_json(), cpu_s=_cpu_seconds(), rss_mb=_rss_mb(),
        )
        return False

    async def _cmd_quit(self, nursery: trio.Nursery, command: dict[str, Any]) -> bool:
        return True


async def _paced(rate: float, duration: float, each: Callable[[int], object]) -> None:
    """Call ``each(k)`` for k = 0, 1, 2, … at evenly spaced times, ``rate`` a second, for ``duration`` seconds.

    The schedule is absolute, so a late call does not delay the ones after it (open-loop load).
    """
    start = trio.current_time()
    for k in itertools.count():
        at = start + k / rate
        if at - start >= duration:
            return
        await trio.sleep_until(at)
        each(k)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def _read_commands(send: trio.MemorySendChannel[dict[str, Any]]) -> None:
    stream = trio.lowlevel.FdStream(sys.stdin.fileno())
    buffer = b""
    async with send:
        while True:
            chunk = await stream.receive_some(1 << 16)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    await send.send(json.loads(line))


async def main() -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_read_commands, send)
        first = await receive.receive()
        worker = Worker(first)
        await worker.run(receive)
        await worker.say(event="bye", cpu_s=_cpu_seconds(), rss_mb=_rss_mb())
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
