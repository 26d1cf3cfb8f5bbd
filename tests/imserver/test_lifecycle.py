"""The server's life around the messages: graceful shutdown, TLS, /healthz and /metrics, the operator CLI.

Real Postgres, real sockets, real processes for the CLI. The HTTP and process
helpers come from test_crash.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import trio
import trio_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trio_websocket import ConnectionClosed, HandshakeError

from clients.python import Client, ClientError, ConnectionLost, open_client
from imserver.actions.base import Actor, Context
from imserver.actions.conversations import do_add_member, do_create_group
from imserver.config import Settings
from imserver.model import MemberRole, Role
from imserver.server import Addresses, ChatServer, open_keys
from pgtrio.bridge import Store, open_store
from protocol.frames import ConvPush, SendAnswer
from tests.conftest import PASSWORD
from tests.conftest import test_settings as settings_for
from tests.helpers import as_frame
from tests.imserver.test_crash import IMSERVER, cli_env, client_session, http_get, make_user

# -- an in-process server we can shut down in the middle of a test ------------------------


@dataclass
class Live:
    server: ChatServer
    store: Store
    addresses: Addresses
    stopped: trio.Event

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.addresses.ws_port}/"

    async def shutdown(self) -> None:
        """Begin a graceful shutdown and wait until ``serve`` has returned."""
        self.server.shutdown()
        with trio.fail_after(10):
            await self.stopped.wait()


@asynccontextmanager
async def serve_in_process(db: str, settings: Settings) -> AsyncIterator[Live]:
    async with open_store(db, max_size=4) as store:
        chat = ChatServer(settings, store, await open_keys(store))
        stopped = trio.Event()

        async def serve(*, task_status: trio.TaskStatus[Addresses]) -> None:
            try:
                await chat.serve(task_status=task_status)
            finally:
                stopped.set()

        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(serve)
            try:
                yield Live(chat, store, addresses, stopped)
            finally:
                chat.shutdown()


FAST = settings_for(rate=100_000.0, burst=100_000)
"""No rate limit in the way of a burst."""


async def fetch(store: Store, sql: str, *args: Any) -> list[Any]:
    async def txn(conn: Any) -> list[Any]:
        return list(await conn.fetch(sql, *args))
    return await store.run("test", txn, transaction=False)


async def stored(db: str) -> dict[str, Any]:
    """cid -> stored row, read with a store of its own (the server's is closed by now)."""
    async with open_store(db, min_size=1, max_size=1) as store:
        return {r["client_id"]: r for r in await fetch(store, "select client_id, conv_id, seq, id from messages")}


async def watch(client: Client, seen: list[dict[str, Any]], done: trio.Event | None = None) -> None:
    """Record every push until the connection is lost (the SDK's ``_lost`` is the last)."""
    async for event in client.events():
        seen.append(frame := as_frame(event))
        if frame["op"] == "_lost":
            break
    if done is not None:
        done.set()


def said_bye_and_closed_1001(seen: list[dict[str, Any]]) -> bool:
    """The last two things seen: a ``bye`` ``shutdown``, then the close with 1001 ``shutdown``."""
    ops = [(f["op"], f.get("code")) for f in seen if f["op"] != "msg"]
    return ops[-2:] == [("bye", "shutdown"), ("_lost", 1001)] and seen[-1]["reason"] == "shutdown"


@asynccontextmanager
async def held_conversation(db: str, conv_id: int) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold the conversation's row lock in a transaction of our own: the batch writer waits on it.

    Yields ``release`` (roll back, letting the writer through); released at the end anyway.
    Runs on the asyncio loop of the enclosing ``open_store``.
    """
    conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(db)
    transaction = conn.transaction()
    await trio_asyncio.aio_as_trio(transaction.start)()
    await trio_asyncio.aio_as_trio(conn.execute)("select 1 from conversations where id = $1 for update", conv_id)
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            await trio_asyncio.aio_as_trio(transaction.rollback)()

    try:
        yield release
    finally:
        with trio.CancelScope(shield=True):
            await release()
            await trio_asyncio.aio_as_trio(conn.close)()


async def send_once(client: Client, conv: str, text: str) -> None:
    await client.send(conv, text, retries=0)


async def wait_for_lock_waiter(store: Store) -> None:
    """Until some session of this database waits for a lock (the writer is blocked on ours)."""
    while True:
        rows = await fetch(store, "select count(*) from pg_stat_activity"
                                  " where datname = current_database() and wait_event_type = 'Lock'")
        if rows[0][0]:
            return
        await trio.sleep(0.01)


async def wait_unhealthy(port: int) -> Any:
    while True:
        answer = await http_get(port, "/healthz")
        if answer.status != 200:
            return answer
        await trio.sleep(0.01)


# -- graceful shutdown -----------------------------------------------------------------------


async def test_graceful_shutdown_under_load_acks_only_stored_messages_and_says_bye(db: str) -> None:
    names = [f"nurse{i}" for i in range(4)]
    outcomes: dict[str, SendAnswer | str] = {}
    """cid -> the ack, or 'unavailable', or 'lost' (the connection closed before an answer)."""
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    closed = {name: trio.Event() for name in names}
    acks = 0
    enough = trio.Event()

    async def sender(client: Client, name: str, conv: str) -> None:
        nonlocal acks
        for i in range(2000):
            cid = f"{name}-{i}"
            try:
                outcomes[cid] = await client.send(conv, f"{name} {i}", cid=cid, retries=0)
            except ClientError as exc:
                assert exc.code == "unavailable", exc
                outcomes[cid] = "unavailable"
                continue
            except ConnectionLost:
                outcomes[cid] = "lost"
                return
            acks += 1
            if acks >= 200:
                enough.set()

    async with serve_in_process(db, FAST) as live:
        ids = [await make_user(live.store, name, Role.STAFF) for name in names]
        group = f"g:{await do_create_group(Context(live.store), Actor.operator(), 'ward', ids[0], ids[1:])}"
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for name in names:
                    client = await nursery.start(client_session, live.url, name)
                    nursery.start_soon(watch, client, seen[name], closed[name])
                    nursery.start_soon(sender, client, name, group)
                await enough.wait()
                await live.shutdown()
                for event in closed.values():
                    await event.wait()
                nursery.cancel_scope.cancel()

    rows = await stored(db)
    for cid, outcome in outcomes.items():
        if isinstance(outcome, SendAnswer):
            assert cid in rows, f"{cid} was acked but is not stored"
            assert (rows[cid]["seq"], rows[cid]["id"]) == (outcome.seq, outcome.id)
        elif outcome == "unavailable":
            assert cid not in rows, f"{cid} was refused as unavailable but is stored"
    assert sorted(r["seq"] for r in rows.values()) == list(range(1, len(rows) + 1))
    assert set(rows) <= set(outcomes)
    for name in names:
        assert said_bye_and_closed_1001(seen[name]), (name, seen[name][-3:])
    print({k: sum(1 for o in outcomes.values() if (o if isinstance(o, str) else "ack") == k)
           for k in ("ack", "unavailable", "lost")})


async def test_shutdown_commits_and_acks_the_batch_it_holds_then_closes(db: str) -> None:
    async with serve_in_process(db, FAST) as live:
        dr = await make_user(live.store, "dr", Role.STAFF)
        pat = await make_user(live.store, "pat")
        conv_id = await do_create_group(Context(live.store), Actor.operator(), "ward", dr, [pat])
        group = f"g:{conv_id}"
        seen: dict[str, list[dict[str, Any]]] = {"dr": [], "pat": []}
        held: dict[str, Any] = {}
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                doctor = await nursery.start(client_session, live.url, "dr")
                patient = await nursery.start(client_session, live.url, "pat")
                await doctor.send(group, "before", cid="c-before")
                nursery.start_soon(watch, doctor, seen["dr"])
                nursery.start_soon(watch, patient, seen["pat"])
                async with held_conversation(db, conv_id) as release:

                    async def send_held() -> None:
                        held["ack"] = await doctor.send(group, "held", cid="c-held", retries=0)
                    nursery.start_soon(send_held)
                    await wait_for_lock_waiter(live.store)
                    live.server.shutdown()

                    # while draining: unhealthy, and new sends are refused
                    health = await wait_unhealthy(live.addresses.http_port)
                    assert health.status == 503 and health.json()["status"] == "unavailable"
                    with pytest.raises(ClientError) as refused:
                        await patient.send(group, "too late", cid="c-late", retries=0)
                    assert refused.value.code == "unavailable"
                    assert "ack" not in held
                    await release()
                with trio.fail_after(5):
                    await live.stopped.wait()
                nursery.cancel_scope.cancel()

    # the held message was committed, then acked, then pushed to the member, before the bye
    assert held["ack"].seq == 2 and held["ack"].dup is False
    pushed = [(f["msg"]["seq"], f["msg"]["text"]) for f in seen["pat"] if f["op"] == "msg"]
    assert pushed == [(1, "before"), (2, "held")]
    for name in ("dr", "pat"):
        assert said_bye_and_closed_1001(seen[name]), (name, seen[name])
    rows = await stored(db)
    assert {cid: r["seq"] for cid, r in rows.items()} == {"c-before": 1, "c-held": 2}


async def test_shutdown_stops_accepting_connections(db: str) -> None:
    async with serve_in_process(db, FAST) as live:
        dr = await make_user(live.store, "dr", Role.STAFF)
        conv_id = await do_create_group(Context(live.store), Actor.operator(), "ward", dr, [])
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                doctor = await nursery.start(client_session, live.url, "dr")
                async with held_conversation(db, conv_id):  # keeps the shutdown draining
                    nursery.start_soon(send_once, doctor, f"g:{conv_id}", "held")
                    await wait_for_lock_waiter(live.store)
                    live.server.shutdown()
                    await wait_unhealthy(live.addresses.http_port)
                    with pytest.raises(OSError):
                        stream = await trio.open_tcp_stream("127.0.0.1", live.addresses.ws_port)
                        await stream.aclose()
                nursery.cancel_scope.cancel()


# -- TLS ---------------------------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)  # the real time, not a test clock: TLS checks certificates against it
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return cert_path, key_path


@asynccontextmanager
async def tls_server(db: str, folder: Path, **overrides: Any) -> AsyncIterator[tuple[Live, ssl.SSLContext]]:
    """A server on wss:// with a fresh self-signed certificate, and a client context that trusts it."""
    cert, key = self_signed(folder)
    async with serve_in_process(db, settings_for(tls_cert=str(cert), tls_key=str(key), **overrides)) as live:
        yield live, ssl.create_default_context(cafile=str(cert))


async def test_tls_wss_works_and_plain_ws_gets_no_session(db: str, tmp_path: Path) -> None:
    async with tls_server(db, tmp_path) as (live, trusting):
        await make_user(live.store, "dr", Role.STAFF)
        await make_user(live.store, "pat")
        port = live.addresses.ws_port
        with trio.fail_after(10):
            # plain ws:// on the TLS port: no session (it fails, or hangs until we give up)
            with trio.move_on_after(1):
                with pytest.raises((HandshakeError, ConnectionClosed, ConnectionLost, OSError)):
                    async with open_client(f"ws://127.0.0.1:{port}/", username="dr", password=PASSWORD):
                        pass
            # a client that does not trust the certificate gets no session either
            with trio.move_on_after(1):
                with pytest.raises((OSError, trio.BrokenResourceError, HandshakeError, ConnectionLost)):
                    async with open_client(f"wss://127.0.0.1:{port}/", username="dr", password=PASSWORD,
                                           ssl_context=ssl.create_default_context()):
                        pass
            # and after both, TLS still serves, by IP address and by name
            for host in ("127.0.0.1", "localhost"):
                async with open_client(f"wss://{host}:{port}/", username="dr", password=PASSWORD,
                                       ssl_context=trusting) as doctor:
                    ack = await doctor.send("u:pat", f"over TLS to {host}")
                    page, _ = await doctor.history(ack.conv)
                    assert page[-1].text == f"over TLS to {host}"


async def test_plain_ws_on_the_tls_port_is_closed_within_the_hello_deadline(db: str, tmp_path: Path) -> None:
    """A failed TLS handshake holds the socket at most ``hello_timeout`` (trio-websocket's connect timeout)."""
    async with tls_server(db, tmp_path, hello_timeout=0.5) as (live, _):
        with trio.fail_after(3):
            stream = await trio.open_tcp_stream("127.0.0.1", live.addresses.ws_port)
            async with stream:
                await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                      b"Sec-WebSocket-Version: 13\r\n\r\n")
                while True:  # whatever the server answers (a TLS alert, or nothing), it must then close
                    try:
                        if not await stream.receive_some(4096):
                            break
                    except trio.BrokenResourceError:  # reset by the server: closed too
                        break


async def test_sdk_rejects_an_untrusted_certificate_promptly(db: str, tmp_path: Path) -> None:
    async with tls_server(db, tmp_path) as (live, _):
        await make_user(live.store, "dr", Role.STAFF)
        with trio.fail_after(2), pytest.raises((OSError, trio.BrokenResourceError, HandshakeError, ConnectionLost)):
            async with open_client(f"wss://127.0.0.1:{live.addresses.ws_port}/", username="dr", password=PASSWORD,
                                   ssl_context=ssl.create_default_context()):
                pass


# -- /healthz and /metrics ------------------------------------------------------------------

METRICS = ("imserver_connections", "imserver_messages_in_total", "imserver_batch_size",
           "imserver_commit_seconds", "imserver_writer_queue_depth")


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"no {name} in /metrics"
    return float(found.group(1))


async def test_healthz_and_metrics(db: str) -> None:
    async with serve_in_process(db, FAST) as live:
        await make_user(live.store, "dr", Role.STAFF)
        await make_user(live.store, "pat")
        port = live.addresses.http_port
        with trio.fail_after(10):
            health = await http_get(port, "/healthz")
            assert health.status == 200
            assert health.json() == {"status": "ok", "connections": 0}

            before = await http_get(port, "/metrics")
            assert before.status == 200 and before.headers["content-type"].startswith("text/plain")
            text = before.body.decode()
            for name in METRICS:
                assert re.search(rf"^{name}", text, re.MULTILINE), f"no {name} in /metrics"
            async with open_client(live.url, username="dr", password=PASSWORD) as doctor:
                assert (await http_get(port, "/healthz")).json()["connections"] == 1
                for i in range(7):
                    await doctor.send("u:pat", f"m{i}")
                await doctor.send("u:pat", "m0 again", cid="same")
                await doctor.send("u:pat", "m0 again", cid="same")  # a dup is not a new message
                after = (await http_get(port, "/metrics")).body.decode()
                assert metric(after, "imserver_messages_in_total") - metric(text, "imserver_messages_in_total") == 8
                assert metric(after, "imserver_batch_size_count") > metric(text, "imserver_batch_size_count")
                assert metric(after, "imserver_commit_seconds_count") > metric(text, "imserver_commit_seconds_count")
                assert metric(after, "imserver_connections") == metric(text, "imserver_connections") + 1
                assert metric(after, "imserver_writer_queue_depth") == 0


# -- the operator CLI ---------------------------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str
    args: list[str] = field(default_factory=list)

    def json(self) -> Any:
        assert self.code == 0, self
        return json.loads(self.out)


async def imserver(db: str, *args: str, stdin: bytes = b"") -> Ran:
    with trio.fail_after(20):
        done = await trio.run_process(
            [IMSERVER, *args], stdin=stdin, capture_stdout=True, capture_stderr=True, check=False, env=cli_env(db),
        )
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode(), list(args))


@pytest.mark.slow
async def test_cli_user_and_group_commands(db: str) -> None:
    short = await imserver(db, "user", "add", "dr", "--role", "staff", stdin=b"short\n")
    assert short.code != 0 and "at least 8 characters" in short.err and short.out == ""
    dr = (await imserver(db, "user", "add", "dr", "--role", "staff", stdin=b"long-enough\n")).json()
    pat = (await imserver(db, "user", "add", "pat", "--role", "patient", stdin=b"long-enough\n")).json()
    assert set(dr) == set(pat) == {"id"} and isinstance(dr["id"], int) and pat["id"] != dr["id"]
    again = await imserver(db, "user", "add", "dr", "--role", "staff", stdin=b"other-password\n")
    assert again.code != 0 and "dr already exists" in again.err and again.out == ""
    group = (await imserver(db, "group", "create", "移植群", "--owner", "dr")).json()
    assert set(group) == {"id"} and isinstance(group["id"], int)
    added = (await imserver(db, "group", "add", str(group["id"]), "pat")).json()
    assert added == {"conv": f"g:{group['id']}", "user": "pat", "role": "member"}

    async with serve_in_process(db, settings_for()) as live, open_client(
        live.url, username="pat", password="long-enough"
    ) as patient:
        ack = await patient.send(f"g:{group['id']}", "谢谢医生")
        assert (ack.conv, ack.seq) == (f"g:{group['id']}", 1)
        convs = (await patient.request("convs"))["convs"]
        assert [(c["conv"], c["name"]) for c in convs] == [(f"g:{group['id']}", "移植群")]


@pytest.mark.slow
async def test_cli_errors_are_one_clear_line(db: str) -> None:
    await imserver(db, "user", "add", "dr", "--role", "staff", stdin=b"long-enough\n")
    for ran, message in [
        (await imserver(db, "user", "add", "pat", "--role", "patient", stdin=b"short\n"),
         "the password must have at least 8 characters"),
        (await imserver(db, "user", "add", "dr", "--role", "staff", stdin=b"long-enough\n"),
         "user dr already exists"),
        (await imserver(db, "group", "add", "99", "dr"), "no group 99"),
        (await imserver(db, "group", "create", "g", "--owner", "nobody"), "no user nobody"),
    ]:
        assert (ran.code, ran.out, ran.err) == (1, "", f"imserver: {message}\n"), ran


@pytest.mark.slow
async def test_running_server_picks_up_cli_group_add(db: str) -> None:
    async with serve_in_process(db, settings_for()) as live:
        await make_user(live.store, "dr", Role.STAFF)
        await make_user(live.store, "pat")
        await make_user(live.store, "pat2")
        group = (await imserver(db, "group", "create", "随访群", "--owner", "dr")).json()["id"]
        conv = f"g:{group}"
        with trio.fail_after(15):
            async with (
                open_client(live.url, username="dr", password=PASSWORD) as doctor,
                open_client(live.url, username="pat", password=PASSWORD) as patient,
            ):
                await doctor.send(conv, "the roster is now cached")
                with pytest.raises(ClientError) as outsider:
                    await patient.send(conv, "not yet a member")
                assert outsider.value.code == "forbidden"

                assert (await imserver(db, "group", "add", str(group), "pat")).json()["conv"] == conv
                async for event in patient.events():
                    if isinstance(event, ConvPush):
                        assert event == ConvPush(conv=conv, event="joined", name="随访群")
                        break
                assert (await patient.send(conv, "joined by the operator")).seq == 2

                # a member added while offline can send as soon as they log in
                await imserver(db, "group", "add", str(group), "pat2")
                async with open_client(live.url, username="pat2", password=PASSWORD) as second:
                    assert (await second.send(conv, "second patient here")).seq == 3
                page, _ = await doctor.history(conv)
                assert [m.text for m in page] == [
                    "the roster is now cached", "joined by the operator", "second patient here"
                ]


async def test_member_added_elsewhere_may_send_before_the_bus_event_arrives(db: str) -> None:
    async with serve_in_process(db, settings_for()) as live:
        dr = await make_user(live.store, "dr", Role.STAFF)
        pat = await make_user(live.store, "pat")
        conv_id = await do_create_group(Context(live.store), Actor.operator(), "ward", dr, [])
        conv = f"g:{conv_id}"
        apply_now = live.server._apply_event

        async def apply_late(event: Any) -> None:  # a slow bus (a busy node, or another machine)
            await trio.sleep(1)
            await apply_now(event)
        live.server._apply_event = apply_late  # type: ignore[method-assign]
        with trio.fail_after(10):
            async with (
                open_client(live.url, username="dr", password=PASSWORD) as doctor,
                open_client(live.url, username="pat", password=PASSWORD) as patient,
            ):
                await doctor.send(conv, "the roster is now cached")
                # what `imserver group add` does: commit the member, announce it on the bus
                await do_add_member(Context(live.store), Actor.operator(), conv_id, pat, MemberRole.MEMBER)
                ack = await patient.send(conv, "I was added a moment ago")
                assert ack.seq == 2

