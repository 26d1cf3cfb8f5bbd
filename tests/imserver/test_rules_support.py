"""Shared set-up for the ``test_rules_*`` suites (IM-2..IM-18, SEC-1, SEC-2); it holds no tests.

``open_ward`` starts the scene every rule is tested in: a treatment group owned by a
doctor (``owner``), with a nurse who is a plain member (``staff``), patient A
(``patient``), patient B (``other``), A's husband F (``family``, linked by the doctor, so
he follows her in), a bot, and an admin account outside the group. Each person is
logged in with their own client.

``recording`` captures every frame each client receives, straight off the WebSocket,
so the privacy tests can search all of them, not just the ones a test asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio

from clients.python import Client, ClientError, open_client
from clients.python.websocket import ClientWebSocket
from imserver.model import Role, User
from imserver.server import ChatServer, open_keys
from imserver.store import accounts
from protocol import decode_frame
from protocol.frames import MsgPush
from tests.conftest import PASSWORD, PASSWORD_HASH, Running
from tests.helpers import as_frame, script


@dataclass(frozen=True)
class Person:
    username: str
    role: Role
    name: str
    title: str = ""


PEOPLE: dict[str, Person] = {
    "owner": Person("dr_wang", Role.STAFF, "王建华", "主任医师"),
    "staff": Person("nurse_li", Role.STAFF, "李秀英", "护士长"),
    "patient": Person("pt_alice", Role.PATIENT, "张丽华"),
    "other": Person("pt_bella", Role.PATIENT, "赵美玲"),
    "family": Person("fam_fred", Role.FAMILY, "陈建国"),
    "bot": Person("bot_ivf", Role.BOT, "小助手"),
    "admin": Person("sys_admin", Role.ADMIN, "孙管理"),
}
"""Who is who; usernames and names are distinctive so a leak can be found by searching for them."""

VIEWERS = ("other", "family", "staff", "owner")
"""The member kinds the acceptance asks about: a patient, family, staff and the group's owner."""


@dataclass
class Ward:
    server: Running
    users: dict[str, User]
    clients: dict[str, Client]
    group: str = ""

    def __getitem__(self, kind: str) -> Client:
        return self.clients[kind]

    def ref(self, kind: str) -> str:
        """The real-identity member id (``u<n>``) of a person."""
        return self.users[kind].ref


async def make_users(server: Running, kinds: Iterable[str] = PEOPLE, **phones: str) -> dict[str, User]:
    """The accounts of PEOPLE; ``phones`` by kind (SEC-2)."""
    cipher = None
    made = {}
    for kind in kinds:
        person = PEOPLE[kind]
        phone_enc = None
        if kind in phones:
            if cipher is None:
                cipher = (await open_keys(server.store)).cipher
            phone_enc = cipher.encrypt(phones[kind])
        made[kind] = await accounts.create_user(
            server.store, person.username, person.name, person.role, PASSWORD_HASH, title=person.title,
            phone_enc=phone_enc,
        )
    return made


@asynccontextmanager
async def login(
    server: Running, kind_or_username: str, *, password: str = PASSWORD, **options: Any
) -> AsyncIterator[Client]:
    username = PEOPLE[kind_or_username].username if kind_or_username in PEOPLE else kind_or_username
    async with open_client(server.url, username=username, password=password, **options) as client:
        yield client


@asynccontextmanager
async def open_ward(
    server: Running, *, online: Iterable[str] = ("owner", "staff", "patient", "other", "family", "admin"),
    members: Iterable[str] = ("staff", "patient", "other", "bot"), link_family: bool = True,
    phones: dict[str, str] | None = None,
) -> AsyncIterator[Ward]:
    """The scene above; F is linked as A's husband before the group exists, so he follows her in (IM-8)."""
    users = await make_users(server, **(phones or {}))
    async with AsyncExitStack() as stack:
        clients = {"owner": await stack.enter_async_context(login(server, "owner"))}
        ward = Ward(server, users, clients)
        if link_family:
            await clients["owner"].request(
                "family_link", patient=PEOPLE["patient"].username, family=PEOPLE["family"].username,
                relation="husband",
            )
        ward.group = (await clients["owner"].request(
            "group_create", name="移植一组", members=[PEOPLE[k].username for k in members],
        ))["conv"]
        for kind in online:
            if kind not in clients:
                clients[kind] = await stack.enter_async_context(login(server, kind))
        if link_family and "family" in clients:
            await family_link_in_effect(ward)
        yield ward


async def family_link_in_effect(ward: Ward, seconds: float = 5) -> None:
    """Wait until the server's cache knows the link (it learns of it from the event bus, see
    test_rules_family::test_link_takes_effect_before_the_answer)."""
    with trio.fail_after(seconds):
        while True:
            members = (await ward["family"].request("members", conv=ward.group))["members"]
            if any(m["id"] == ward.ref("patient") for m in members):
                return
            await trio.sleep(0.02)


async def refused(call: Awaitable[Any], code: str) -> ClientError:
    """Await a request that must fail with ``code``."""
    with pytest.raises(ClientError) as info:
        await call
    assert info.value.code == code, f"expected {code}, got {info.value.error}"
    return info.value


async def pushes(client: Client, op: str, count: int = 1, seconds: float = 5) -> list[dict[str, Any]]:
    """The next ``count`` push frames with this ``op`` (others are dropped)."""
    found: list[dict[str, Any]] = []
    with trio.fail_after(seconds):
        async for event in client.events():
            if (frame := as_frame(event))["op"] == op:
                found.append(frame)
                if len(found) == count:
                    return found
    raise AssertionError("the client's events ended")


async def pushed_msg(client: Client, conv: str, seconds: float = 5) -> dict[str, Any]:
    """The next message pushed to ``client`` in ``conv`` (other pushes are dropped)."""
    with trio.fail_after(seconds):
        async for event in client.events():
            if isinstance(event, MsgPush) and event.msg.conv == conv:
                return dict(as_frame(event)["msg"])
    raise AssertionError("the client's events ended")


async def none_of(client: Client, *ops: str, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Assert no push with one of ``ops`` arrives within ``seconds``; return the other pushes seen."""
    others: list[dict[str, Any]] = []
    with trio.move_on_after(seconds):
        async for event in client.events():
            frame = as_frame(event)
            assert frame["op"] not in ops, f"unexpected push {frame}"
            others.append(frame)
    return others


async def drain(client: Client, seconds: float = 0.1) -> list[dict[str, Any]]:
    """Every push that arrives within ``seconds``."""
    return await none_of(client, seconds=seconds)


# -- wire recording ------------------------------------------------------------------------


@dataclass
class Wire:
    """Every frame each client WebSocket received, decoded."""

    by_socket: dict[ClientWebSocket, list[dict[str, Any]]] = field(default_factory=dict)

    def frames(self, client: Client) -> list[dict[str, Any]]:
        """What ``client`` received on every connection of its session. A push may come before the welcome: the
        server attaches a connection to its user before it writes the welcome."""
        session = client.welcome.session
        return [f for frames in self.by_socket.values() if any(f.get("session") == session for f in frames)
                for f in frames]


@contextmanager
def recording() -> Iterator[Wire]:
    """Record every frame as the SDK reads it."""
    wire = Wire()
    original = ClientWebSocket.receive_message

    async def receive_message(self: ClientWebSocket) -> bytes:
        data = await original(self)
        wire.by_socket.setdefault(self, []).append(decode_frame(data))
        return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClientWebSocket, "receive_message", receive_message)
        yield wire


def leaks(value: Any, texts: Iterable[str], values: Iterable[str] = (), path: str = "$") -> list[str]:
    """Where in ``value`` (a frame, recursively, keys included) a forbidden text occurs, or a forbidden exact value."""
    texts, values = tuple(texts), frozenset(values)
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += leaks(key, texts, values, f"{path}.<key>")
            found += leaks(item, texts, values, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += leaks(item, texts, values, f"{path}[{index}]")
    elif isinstance(value, str | bytes):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        found += [f"{path} = {text!r} (contains {t!r})" for t in texts if t in text]
        if text in values:
            found.append(f"{path} = {text!r}")
    return found


@contextmanager
def slow_bus(*kinds: type, seconds: float = 0.3) -> Iterator[None]:
    """Delay this process's handling of these bus events, as a busy or lagging listener would: what must hold as
    soon as a request is answered then cannot depend on winning the race with the server's own event."""
    original = ChatServer._apply_event

    async def delayed(self: ChatServer, event: Any) -> None:
        if isinstance(event, kinds):
            await trio.sleep(seconds)
        await original(self, event)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ChatServer, "_apply_event", delayed)
        yield


# -- the operator command line -------------------------------------------------------------


async def imserver(db: str, *args: str, stdin: bytes = b"") -> trio.CompletedProcess[bytes]:
    """Run ``imserver ARGS`` against database ``db``, as an operator would."""
    env = {**os.environ, "DATABASE_URL": db}
    with trio.fail_after(30):
        return await trio.run_process(
            [script("imserver"), *args], env=env, stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
        )


async def imserver_ok(db: str, *args: str, stdin: bytes = b"") -> list[dict[str, Any]]:
    """Run a command that must succeed; its JSON lines."""
    done = await imserver(db, *args, stdin=stdin)
    assert done.returncode == 0, f"imserver {' '.join(args)}: {done.stderr.decode()}"
    return [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
