"""The acceptance crash test (DESIGN rules 1–3): SIGKILL the server in the middle of a burst.

A real ``imserver run`` process on a fresh database takes a burst from several
senders at once. When a few hundred acks have come back it is killed with
SIGKILL, then started again on the same database and ports. Every send whose
ack did not arrive is resent with the same cid (through the SDK, which
reconnects). Then nothing acknowledged may be missing, nothing may be stored
twice, seqs must be gapless, and a resend of something that had in fact been
committed must answer ``dup`` with the original seq and id.

The helpers for running the server as a process and for plain HTTP are also
used by test_lifecycle.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import open_websocket_url

from clients.python import Client, ConnectionLost, open_client
from imserver.actions.base import Actor, Context
from imserver.actions.conversations import do_create_group
from imserver.model import Role
from imserver.store import accounts
from imserver.store.messages import millis
from pgtrio.bridge import Store, open_store
from protocol import decode_frame, encode
from protocol.frames import SendAnswer
from tests.conftest import PASSWORD, PASSWORD_HASH
from tests.helpers import script

IMSERVER = script("imserver")
APPLICATION = "imserver-under-test"
"""The server process's ``application_name`` in Postgres, which finds its sessions (``wait_sessions_gone``)."""

# -- helpers: free ports, plain HTTP, the server as a process -----------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now (bind to port 0, read it, let it go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def http_get(port: int, path: str) -> HttpAnswer:
    """GET ``path`` from 127.0.0.1:``port`` over a raw TCP stream (no HTTP library is installed).

    Error handling: OSError if nothing listens; trio.TooSlowError after 5 s.
    """
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while data := await stream.receive_some(65536):
                chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return HttpAnswer(int(status_line.split(" ", 2)[1]), headers, body)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, data = out + data[:size], data[size + 2:]


def named(db: str) -> str:
    """The DSN ``db`` with the server process's ``application_name`` (asyncpg sends query parameters as settings)."""
    return f"{db}{'&' if '?' in db else '?'}application_name={APPLICATION}"


def cli_env(db: str, **settings: str) -> dict[str, str]:
    """The environment for an ``imserver`` subprocess on database ``db`` with IMSERVER_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSERVER_")}
    env["DATABASE_URL"] = db
    env |= {f"IMSERVER_{name.upper()}": value for name, value in settings.items()}
    return env


@dataclass
class ServerProcess:
    """``imserver run`` as a child process, on fixed ports so clients can come back after a restart."""

    db: str
    log_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    ws_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: trio.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    @property
    def log(self) -> Path:
        return self.log_dir / f"imserver-{self.starts}.log"

    async def start(self) -> None:
        """Start the process and wait until /healthz answers 200."""
        assert self.process is None, "already running"
        self.starts += 1
        with self.log.open("wb") as log:
            self.process = await trio.lowlevel.open_process(
                [IMSERVER, "run", "--listen", f"127.0.0.1:{self.ws_port}",
                 "--http-listen", f"127.0.0.1:{self.http_port}"],
                env=cli_env(named(self.db), **self.settings), stdin=None, stdout=log, stderr=log,
            )
        with trio.fail_after(15):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"imserver exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if (await http_get(self.http_port, "/healthz")).status == 200:
                        return
                except OSError:
                    pass
                await trio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or an OOM kill."""
        if self.process is not None:
            process, self.process = self.process, None
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            with trio.CancelScope(shield=True), trio.fail_after(10):
                await process.wait()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@asynccontextmanager
async def open_server_process(db: str, log_dir: Path, **settings: str) -> AsyncIterator[ServerProcess]:
    """A started server process that is killed when the block ends, however it ends."""
    server = ServerProcess(db, log_dir, settings)
    try:
        await server.start()
        yield server
    finally:
        await server.kill()


async def client_session(url: str, username: str, *, task_status: trio.TaskStatus[Client]) -> None:
    """``client = await nursery.start(client_session, url, name)``: a logged-in client living as long as the nursery."""
    async with open_client(url, username=username, password=PASSWORD) as client:
        task_status.started(client)
        await trio.sleep_forever()


async def make_user(store: Store, username: str, role: Role = Role.PATIENT) -> int:
    user = await accounts.create_user(store, username, username, role, PASSWORD_HASH)
    return user.id


# -- the test ----------------------------------------------------------------------------------

SENDERS = 4
WINDOW = 4
"""Sends each sender keeps in flight at once."""
PER_SENDER = 300
KILL_AT = 300
"""Total acks after which the server is killed (a count, not a time)."""
BLIND = 20
"""Messages the blind sender commits but never reads the acks of (lost acks, certainly)."""


@dataclass
class Outbox:
    """What one sender tried to send and what it was told."""

    username: str
    conv: str
    tried: dict[str, str] = field(default_factory=dict)
    """cid -> text, for every send that was started."""
    acked: dict[str, SendAnswer] = field(default_factory=dict)
    """cid -> the ack received before the kill."""
    resent: dict[str, SendAnswer] = field(default_factory=dict)
    """cid -> the ack of the resend after the restart."""

    def final(self, cid: str) -> SendAnswer:
        return self.acked.get(cid) or self.resent[cid]


@dataclass
class Progress:
    acks: int = 0
    reached: trio.Event = field(default_factory=trio.Event)

    def ack(self) -> None:
        self.acks += 1
        if self.acks >= KILL_AT:
            self.reached.set()


async def burst(client: Client, box: Outbox, progress: Progress) -> None:
    """Send PER_SENDER messages, WINDOW at a time, until done or the connection is lost."""
    counter = iter(range(PER_SENDER))
    lost = False

    async def lane() -> None:
        nonlocal lost
        for i in counter:
            if lost:
                return
            cid, text = f"{box.username}-{i}", f"{box.username} says {i}"
            box.tried[cid] = text
            try:
                ack = await client.send(box.conv, text, cid=cid, retries=0)
            except ConnectionLost:
                lost = True
                return
            box.acked[cid] = ack
            progress.ack()

    async with trio.open_nursery() as nursery:
        for _ in range(WINDOW):
            nursery.start_soon(lane)


async def blind_send(url: str, box: Outbox) -> None:
    """Log in and send BLIND messages without ever reading an answer (the acks get lost)."""
    async with open_websocket_url(url) as ws:
        await ws.send_message(encode({"op": "hello", "rid": 1, "versions": [1], "username": box.username,
                                      "password": PASSWORD, "device": "blind"}))
        welcome = decode_frame(await ws.get_message())  # type: ignore[arg-type]
        assert welcome["op"] == "ok", welcome
        for i in range(BLIND):
            cid, text = f"{box.username}-{i}", f"{box.username} whispers {i}"
            box.tried[cid] = text
            await ws.send_message(encode({"op": "send", "rid": 2 + i, "conv": box.conv, "cid": cid, "text": text}))
        await trio.sleep_forever()  # never read: the acks stay unread in the socket


async def resend_unacked(client: Client, box: Outbox) -> None:
    for cid, text in box.tried.items():
        if cid not in box.acked:
            box.resent[cid] = await client.send(box.conv, text, cid=cid)


async def wait_sessions_gone(store: Store) -> None:
    """Until no session of a killed server process is left in Postgres. A statement it sent before it died still
    runs, and commits, after the kill: only once its sessions are gone is what it stored known. (Read too early, a
    batch that committed a moment after the kill looked lost, and its resend's ``dup`` a lie.)"""
    query = ("select count(*) as n from pg_stat_activity"
             " where datname = current_database() and application_name = $1")
    while (await store.run("test", _fetch, query, APPLICATION, transaction=False))[0]["n"]:  # noqa: ASYNC110
        await trio.sleep(0.01)


async def committed(store: Store) -> dict[str, dict[str, Any]]:
    """cid -> the stored row, read straight from Postgres."""
    rows = await store.run(
        "test", _fetch, "select client_id, conv_id, seq, id, text, created_at from messages", transaction=False
    )
    return {r["client_id"]: dict(r) for r in rows}


async def _fetch(conn: Any, sql: str, *args: Any) -> list[Any]:
    return list(await conn.fetch(sql, *args))


async def whole_history(client: Client, conv: str) -> list[Any]:
    messages: list[Any] = []
    while True:
        page, more = await client.history(conv, after=messages[-1].seq if messages else 0, limit=200)
        messages += page
        if not more:
            return messages


@pytest.mark.slow
async def test_sigkill_mid_burst_loses_nothing_acked_and_stores_nothing_twice(db: str, tmp_path: Path) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        names = [f"sender{i}" for i in range(SENDERS)]
        ids = [await make_user(store, name, Role.STAFF) for name in names]
        user_ids = dict(zip(names, ids, strict=True)) | {"blind": await make_user(store, "blind")}
        group_id = await do_create_group(Context(store), Actor.operator(), "crash", ids[0], ids[1:])
        group = f"g:{group_id}"
        boxes = [Outbox(name, group) for name in names]
        blind = Outbox("blind", "u:sender0")
        everyone = [*boxes, blind]

        # high limits: this test is about durability, not about rate limiting
        async with (
            open_server_process(db, tmp_path, rate="100000", burst="100000") as server,
            trio.open_nursery() as nursery,
        ):
            with trio.fail_after(20):
                clients = []
                for name in names:
                    clients.append(await nursery.start(client_session, server.url, name))

                # the blind sender's messages are all committed before the burst starts
                blind_scope = trio.CancelScope()

                async def run_blind() -> None:
                    with blind_scope:
                        await blind_send(server.url, blind)
                nursery.start_soon(run_blind)
                while sum(cid.startswith("blind-") for cid in await committed(store)) < BLIND:  # noqa: ASYNC110
                    await trio.sleep(0.02)  # Postgres has no event to wait for

                # -- the burst, and the kill in the middle of it
                progress = Progress()
                async with trio.open_nursery() as senders:
                    for client, box in zip(clients, boxes, strict=True):
                        senders.start_soon(burst, client, box, progress)
                    await progress.reached.wait()
                    await server.kill()
                blind_scope.cancel()
                await wait_sessions_gone(store)
                acks_before_kill = sum(len(b.acked) for b in everyone)
                assert acks_before_kill >= KILL_AT
                assert any(len(b.tried) > len(b.acked) for b in boxes), "the kill came after the burst"

                # -- durable before visible: everything acked is in Postgres, as acked
                at_kill = await committed(store)
                for box in boxes:
                    for cid, ack in box.acked.items():
                        assert cid in at_kill, f"{cid} was acked but is not in the database"
                        assert (at_kill[cid]["seq"], at_kill[cid]["id"]) == (ack.seq, ack.id)

                # -- restart on the same database; every client resends what it has no ack for, with
                # the same cid, all at once (the SDK's send reconnects: the old connection is gone)
                await server.start()
                blind_client = await nursery.start(client_session, server.url, "blind")
                async with trio.open_nursery() as resenders:
                    for client, box in [*zip(clients, boxes, strict=True), (blind_client, blind)]:
                        resenders.start_soon(resend_unacked, client, box)

                # resends of what had been committed are answered dup with the original result
                dups = 0
                for box in everyone:
                    for cid, ack in box.resent.items():
                        if cid in at_kill:
                            dups += 1
                            assert ack.dup is True, (cid, ack)
                            original = at_kill[cid]
                            assert (ack.seq, ack.id, ack.ts) == (original["seq"], original["id"],
                                                                          millis(original["created_at"])), cid
                        else:
                            assert ack.dup is False, f"{cid} was not stored at the kill, yet its resend says {ack}"
                assert dups >= BLIND

                # -- history: each message once, with its acked seq and id, seqs gapless from 1; only the
                # sender's own devices see a message's cid (SPEC.md §5.1), so each sender reads her own
                direct = blind.final("blind-0").conv
                for conv, senders_of in ((group, [*zip(clients, boxes, strict=True)]),
                                         (direct, [(blind_client, blind)])):
                    history = await whole_history(clients[0], conv)
                    tried = {cid: (box, text) for _, box in senders_of for cid, text in box.tried.items()}
                    own = {m.seq: m.cid for client, _ in senders_of for m in await whole_history(client, conv)
                           if m.cid is not None}
                    cids = [own.get(m.seq) for m in history]
                    assert len(cids) == len(set(cids)), "a cid is stored twice"
                    assert set(cids) == set(tried)
                    assert [m.seq for m in history] == list(range(1, len(tried) + 1))
                    for m in history:
                        box, text = tried[own[m.seq]]
                        assert m.text == text
                        assert (m.seq, m.id) == (box.final(own[m.seq]).seq, box.final(own[m.seq]).id)
                        assert m.sender.id == f"u{user_ids[box.username]}"

                    # -- and counted in Postgres itself
                    conv_id = int(conv[2:])
                    row = (await store.run("test", _fetch, (
                        "select count(*) as n, max(seq) as top, count(distinct (sender_id, client_id)) as cids,"
                        " (select last_seq from conversations where id = $1) as last_seq"
                        " from messages where conv_id = $1"), conv_id, transaction=False))[0]
                    n = len(tried)
                    assert (row["n"], row["top"], row["cids"], row["last_seq"]) == (n, n, n, n)
            nursery.cancel_scope.cancel()

    print(f"acks before the kill: {acks_before_kill}, resent: {sum(len(b.resent) for b in everyone)},"
          f" of which dup: {dups}")
