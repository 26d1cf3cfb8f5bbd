"""Bad input gets a clear error and changes nothing (DESIGN rule 5; SPEC.md §2.2, §2.3, §3.3, §4.5, §7).

Every test talks raw WebSocket to a real server, so it can send bytes the SDK
never would: invalid msgpack, text messages, wrong types, values out of range.
After each refused frame the same connection must still answer a ``ping``,
unless SPEC.md §7.3 calls the error fatal (close code 1008, reason = the code).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection, open_websocket_url

from clients.python import open_client
from imserver.config import Settings
from imserver.model import Role
from imserver.store import accounts
from protocol.clock import HOSPITAL_ZONE
from tests.conftest import PASSWORD, Running
from tests.conftest import test_settings as make_settings
from tests.helpers import ManualClock

TIMEOUT = 5.0
"""Upper bound for any single wait on the server; everything here answers in milliseconds."""
HARD_CAP = 1024 * 1024
"""Settings.hard_max_frame: above this the WebSocket layer closes with 1009 (SPEC.md §2.3)."""
VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "v1.json"


@pytest.fixture
def settings() -> Settings:
    # The tables below send a few hundred requests on one connection: keep the rate limit out of the way.
    return make_settings(rate=10_000.0, burst=10_000)


# -- a raw protocol client -------------------------------------------------------------------


def encode(frame: Any) -> bytes:
    return msgspec.msgpack.encode(frame)


class Raw:
    """One WebSocket that sends whatever it is given and decodes what the server answers."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._rids = itertools.count(1_000_000)
        self.pushes: list[dict[str, Any]] = []

    async def send(self, frame: Mapping[str, Any] | bytes | str) -> None:
        """A map is encoded as msgpack; bytes go as a binary message, str as a text message."""
        await self.ws.send_message(encode(frame) if isinstance(frame, Mapping) else frame)

    async def recv(self) -> dict[str, Any]:
        with trio.fail_after(TIMEOUT):
            data = await self.ws.get_message()
        assert isinstance(data, bytes), f"the server sent a text message: {data!r}"
        frame = msgspec.msgpack.decode(data)
        assert isinstance(frame, dict), frame
        return frame

    async def reply(self) -> dict[str, Any]:
        """The next ``ok`` or ``error`` frame; pushes on the way are kept in ``pushes``."""
        while True:
            got = await self.recv()
            if got.get("op") in ("ok", "error"):
                return got
            self.pushes.append(got)

    async def answer(self, frame: Mapping[str, Any] | bytes | str) -> dict[str, Any]:
        """Send one frame and return the next ``ok``/``error``."""
        await self.send(frame)
        return await self.reply()

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        rid = next(self._rids)
        got = await self.answer({"op": op, "rid": rid, **fields})
        assert got.get("rid") == rid, got
        return got

    async def ok(self, op: str, **fields: Any) -> dict[str, Any]:
        got = await self.request(op, **fields)
        assert got["op"] == "ok", got
        return got

    async def alive(self) -> None:
        """The connection still serves requests."""
        await self.ok("ping")

    async def closed(self) -> tuple[CloseReason | None, list[dict[str, Any]]]:
        """Wait for the server to close; the close reason and the frames that came before it."""
        frames = []
        with trio.fail_after(TIMEOUT):
            try:
                while True:
                    data = await self.ws.get_message()
                    frames.append(msgspec.msgpack.decode(data))
            except ConnectionClosed as exc:
                return exc.reason, frames


@asynccontextmanager
async def connect(server: Running) -> AsyncIterator[Raw]:
    async with open_websocket_url(
        server.url, max_message_size=4 * HARD_CAP, connect_timeout=TIMEOUT, disconnect_timeout=TIMEOUT
    ) as ws:
        yield Raw(ws)


def hello(username: str | None = None, password: str | None = PASSWORD, **fields: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"op": "hello", "rid": 1, "versions": [1], **fields}
    if username is not None:
        frame |= {"username": username, "password": password}
    return frame


@asynccontextmanager
async def logged_in(server: Running, username: str, **fields: Any) -> AsyncIterator[Raw]:
    async with connect(server) as raw:
        welcome = await raw.answer(hello(username, **fields))
        assert welcome["op"] == "ok", welcome
        yield raw


async def assert_fatal(raw: Raw, frame: Mapping[str, Any], code: str) -> dict[str, Any]:
    """``frame`` is refused with ``code``, then the WebSocket closes with 1008 and reason ``code`` (§7.3)."""
    error = await raw.answer(frame)
    assert error["op"] == "error" and error["code"] == code, error
    assert error.get("rid") == frame.get("rid"), error
    reason, after = await raw.closed()
    assert after == [], f"nothing may follow a fatal error (no bye): {after}"
    assert reason is not None and (reason.code, reason.reason) == (1008, code)
    return error


# -- handshake (SPEC.md §4.5) -----------------------------------------------------------------


async def test_anything_before_hello_is_auth_required_and_closes(server: Running) -> None:
    for frame in (
        {"op": "ping", "rid": 7},
        {"op": "send", "rid": 8, "conv": "g:1", "cid": "c", "text": "hi"},
        {"op": "sync", "rid": 9},
        {"op": "logout", "rid": 10},
    ):
        async with connect(server) as raw:
            await assert_fatal(raw, frame, "auth_required")


async def test_wrong_password_and_unknown_user_look_the_same(server: Running) -> None:
    await server.user("alice")
    errors = []
    for username, password in (("alice", "wrong-password"), ("nobody", "wrong-password"), ("nobody", PASSWORD)):
        async with connect(server) as raw:
            errors.append(await assert_fatal(raw, hello(username, password), "auth_failed"))
    # No user enumeration: the frames are identical, detail and all.
    assert errors[0] == errors[1] == errors[2]


async def test_the_welcome_is_the_first_frame_even_if_a_message_comes_during_the_handshake(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC.md §4.2: a client reads the welcome before anything else. The server's last look at the account
    (a ban racing the login, IM-14) is held open here while a message for her is committed."""
    await server.user("dr", Role.STAFF)
    await server.user("alice")
    looking, release = trio.Event(), trio.Event()
    real = accounts.live_session

    async def held(*args: Any) -> Any:
        looking.set()
        await release.wait()
        return await real(*args)

    async with logged_in(server, "dr") as dr:
        group = (await dr.ok("group_create", name="g", members=["alice"]))["conv"]
        monkeypatch.setattr(accounts, "live_session", held)
        async with connect(server) as alice:
            await alice.send(hello("alice"))
            with trio.fail_after(TIMEOUT):
                await looking.wait()
            await dr.ok("send", conv=group, cid="c-1", text="你好")
            release.set()
            welcome = await alice.recv()
            assert (welcome["op"], welcome["rid"], welcome["user"]["username"]) == ("ok", 1, "alice"), welcome
            # The group's "joined" may come too: the bus can bring group_create's event after she attached.
            while (pushed := await alice.recv())["op"] == "conv":
                pass
            assert pushed["op"] == "msg", pushed


async def test_hello_without_credentials_is_a_fatal_bad_request(server: Running) -> None:
    await server.user("alice")
    for frame in (hello(), hello() | {"username": "alice"}, hello() | {"password": PASSWORD, "device": "pad"}):
        async with connect(server) as raw:
            await assert_fatal(raw, frame, "bad_request")


async def test_unsupported_version_is_fatal(server: Running) -> None:
    await server.user("alice")
    async with connect(server) as raw:
        error = await assert_fatal(raw, hello("alice", versions=[2, 3]), "unsupported_version")
        assert error["message"]


async def test_bad_tokens_are_token_invalid(server: Running) -> None:
    alice = await server.user("alice")
    async with connect(server) as raw:
        token = (await raw.answer(hello("alice")))["token"]
    payload, _, signature = token.partition(".")
    # Alter first characters: a last one also carries base64 padding bits, which decoding ignores.
    def altered(part: str) -> str:
        return ("A" if part[0] != "A" else "B") + part[1:]

    signer = server.server.services.signer  # to forge well-signed tokens the server must still refuse
    expired = signer.issue(uuid.uuid4(), 1_000_000_000)  # expired in 2001
    unknown_session = signer.issue(uuid.uuid4(), 4_000_000_000)  # no such session
    forged = [
        "garbage",
        "",
        ".",
        "a.b.c",
        "令牌.签名",  # not ASCII
        f"{payload}.{altered(signature)}",  # signature altered
        f"{altered(payload)}.{signature}",  # payload altered (another session, a later expiry...)
        f"{payload}.",  # signature removed
        expired,
        unknown_session,
    ]
    for bad in forged:
        async with connect(server) as raw:
            await assert_fatal(raw, hello(token=bad), "token_invalid")
    # The genuine token still works, as the same user.
    async with connect(server) as raw:
        welcome = await raw.answer(hello(token=token))
        assert welcome["op"] == "ok" and welcome["user"]["id"] == alice.ref and "token" not in welcome


@pytest.mark.parametrize("clock", [ManualClock(datetime(2027, 1, 31, 23, 59, tzinfo=HOSPITAL_ZONE))])
async def test_a_token_lasts_its_days_by_the_servers_clock(server: Running, clock: ManualClock) -> None:
    """SPEC.md §4.3, DESIGN rule 10: the server's clock, not the machine's or the database's, says when a session
    ends; the welcome's ``server_time`` is that clock too."""
    await server.user("alice")
    async with connect(server) as raw:
        welcome = await raw.answer(hello("alice"))
    assert welcome["server_time"] == int(clock.now.timestamp() * 1000)
    clock.advance(timedelta(days=server.settings.token_days) - timedelta(minutes=1))
    async with connect(server) as raw:
        assert (await raw.answer(hello(token=welcome["token"])))["op"] == "ok"
    clock.advance(timedelta(minutes=2))
    async with connect(server) as raw:
        await assert_fatal(raw, hello(token=welcome["token"]), "token_invalid")


async def test_malformed_hello_is_a_fatal_bad_request_naming_the_field(server: Running) -> None:
    await server.user("alice")
    for frame, field in (
        (hello("alice", versions=[]), "versions"),
        (hello("alice", versions=[0]), "versions[0]"),
        (hello("alice", versions="1"), "versions"),
        (hello("Alice"), "username"),
        (hello("alice\n"), "username"),
        (hello("alice", device=""), "device"),
        (hello("alice", readonly=1), "readonly"),
        (hello("alice", password="p" * 257), "password"),
        (hello(token="t" * 1025), "token"),
    ):
        async with connect(server) as raw:
            error = await assert_fatal(raw, frame, "bad_request")
            assert error.get("field") == field, (frame, error)
    async with logged_in(server, "alice") as raw:  # and a correct hello still works
        await raw.alive()


async def test_unreadable_frames_before_hello_are_fatal(server: Running) -> None:
    for data, code in (
        (b"\xc1", "bad_frame"),
        (encode([1]), "bad_frame"),
        ("hello", "bad_frame"),
        (encode({"op": "hello", "rid": 1, "versions": [1], "pad": b"x" * 70_000}), "frame_too_large"),
    ):
        async with connect(server) as raw:
            error = await raw.answer(data)
            assert (error["op"], error["code"]) == ("error", code), error
            reason, after = await raw.closed()
            assert after == [] and reason is not None and (reason.code, reason.reason) == (1008, code), (after, reason)
    async with connect(server) as raw:  # an op this server does not know is not a hello either
        await assert_fatal(raw, {"op": "teleport", "rid": 3}, "auth_required")


async def test_second_hello_is_refused_and_the_connection_stays(server: Running) -> None:
    await server.user("alice")
    await server.user("bob", Role.STAFF)
    async with logged_in(server, "alice") as raw:
        for frame in (hello("alice") | {"rid": 2}, hello("bob") | {"rid": 3}):
            error = await raw.answer(frame)
            assert (error["op"], error["code"], error["rid"]) == ("error", "bad_request", frame["rid"]), error
            await raw.alive()
        # Still alice: u:alice is herself (bad_request); had the hello made her bob, it would be a chat.
        assert (await raw.request("members", conv="u:alice"))["code"] == "bad_request"
        assert [m["username"] for m in (await raw.ok("members", conv="u:bob"))["members"]] != []


async def test_logout_revokes_the_token_and_ends_the_session_everywhere(server: Running) -> None:
    await server.user("alice")
    async with open_client(server.url, username="alice", password=PASSWORD, device="phone") as phone:
        token = phone.token
        assert token
        async with (
            connect(server) as same_session,  # a second connection of the same session (same token)
            logged_in(server, "alice", device="pad") as other_session,  # another login: must not be touched
        ):
            assert (await same_session.answer(hello(token=token)))["op"] == "ok"
            await phone.request("logout")
            # The other connection of the session gets bye session_ended, then close 4003 (§5.8, §7.4).
            reason, frames = await same_session.closed()
            assert [f["op"] for f in frames] == ["bye"] and frames[0]["code"] == "session_ended", frames
            assert reason is not None and (reason.code, reason.reason) == (4003, "session_ended")
            # Another session of the same user goes on.
            await other_session.alive()
    # The token is revoked: a hello with it is refused, and nothing else about alice changed.
    async with connect(server) as raw:
        await assert_fatal(raw, hello(token=token), "token_invalid")
    async with logged_in(server, "alice") as raw:
        await raw.alive()


async def test_logout_is_answered_then_closed_with_1000(server: Running) -> None:
    await server.user("alice")
    async with logged_in(server, "alice") as raw:
        await raw.send({"op": "logout", "rid": 41})
        reason, frames = await raw.closed()
        assert frames == [{"op": "ok", "rid": 41}], frames  # no bye after one's own logout
        assert reason is not None and (reason.code, reason.reason) == (1000, "session_ended"), reason


# -- malformed frames (SPEC.md §2.2, §3.4, §9) ------------------------------------------------

PING = encode({"op": "ping", "rid": 5})
MALFORMED: list[tuple[str, bytes | str]] = [
    ("invalid_byte_c1", b"\xc1"),
    ("truncated", PING[:-1]),
    ("truncated_header", b"\x85"),
    ("empty", b""),
    ("array", encode([{"op": "ping", "rid": 5}])),
    ("int", encode(5)),
    ("string", encode("ping")),
    ("nil", encode(None)),
    ("bin", encode(b"\x81\xa2op\xa4ping")),
    ("non_string_key", encode({1: "ping", "op": "ping", "rid": 5})),
    ("trailing_bytes", PING + b"\x00"),
    ("two_frames", PING + PING),
    ("invalid_utf8", b"\x82\xa2op\xa4pi\xff\xa3rid\x05"),
    ("text_message", "text"),
    ("text_message_with_json", '{"op": "ping", "rid": 5}'),
]


async def test_malformed_frames_get_bad_frame_and_the_connection_survives(server: Running) -> None:
    await server.user("alice")
    async with logged_in(server, "alice") as raw:
        for name, data in MALFORMED:
            error = await raw.answer(data)
            assert (error["op"], error["code"]) == ("error", "bad_frame"), (name, error)
            assert "rid" not in error, (name, error)
            assert error["message"], name
            await raw.alive()


async def test_deep_nesting_is_refused_or_accepted_but_never_breaks_the_connection(server: Running) -> None:
    await server.user("alice")
    async with logged_in(server, "alice") as raw:
        nested: Any = 1
        for _ in range(32):
            nested = [nested]
        shallow = await raw.answer({"op": "ping", "rid": 5, "extra": nested})
        assert shallow["op"] == "ok", shallow  # 32 levels are accepted (§2.2)
        deep = encode({"op": "ping", "rid": 6, "extra": 1})[:-1] + b"\x91" * 60_000 + b"\x01"
        error = await raw.answer(deep)
        assert error["op"] == "ok" or error["code"] == "bad_frame", error
        await raw.alive()


async def test_unknown_op_and_missing_rid(server: Running) -> None:
    await server.user("alice")
    async with logged_in(server, "alice") as raw:
        error = await raw.answer({"op": "teleport", "rid": 9})
        assert (error["code"], error["rid"], error.get("field")) == ("unknown_op", 9, "op"), error
        await raw.alive()
        error = await raw.answer({"op": "teleport"})
        assert error["code"] == "unknown_op" and "rid" not in error, error
        await raw.alive()
        for frame in ({"op": "ping"}, {"op": "sync", "limit": 5}, {"op": "send", "conv": "g:1", "cid": "c"}):
            error = await raw.answer(frame)
            assert error["code"] == "bad_request" and "rid" not in error, error
            assert error.get("field") in (None, "rid"), error
            await raw.alive()
        for frame in ({"rid": 10}, {"op": None, "rid": 11}, {"op": 5, "rid": 12}, {"op": ["ping"], "rid": 13}):
            error = await raw.answer(frame)
            assert (error["code"], error.get("field"), error.get("rid")) == ("bad_request", "op", frame["rid"]), error
            await raw.alive()


# -- every field of every op (SPEC.md §3.3, §5, §8) -------------------------------------------

MISSING = object()
"""In a case: leave the field out."""
BASE: dict[str, dict[str, Any]] = {
    "hello": {"versions": [1]},
    "ping": {},
    "logout": {},
    "convs": {},
    "send": {"conv": "g:1", "cid": "c-1", "text": "hi"},
    "sync": {},
    "history": {"conv": "g:1"},
    "read": {"conv": "g:1", "seq": 1},
    "group_create": {"name": "n"},
    "group_add": {"conv": "g:1", "user": "bob"},
    "group_remove": {"conv": "g:1", "user": "bob"},
    "members": {"conv": "g:1"},
}
BIG = 2**64 - 1
"""The largest integer msgpack can carry: over every limit of the protocol (2^53 − 1 for rid, 2^63 − 1 for seq)."""
BAD_CONVS = [5, "", "g:", "g:0", "g:01", "x:1", "g:-1", "g:1234567890123456789", "u:", "u:Bob", "u:" + "a" * 65,
             "g:1 ", "g:1\n", None, ["g:1"], b"g:1", 1.5]
BAD_USERNAMES = [5, "", "Bob", "bob smith", "-bob", "b" * 65, None, b"bob"]
BAD_SEQS = [-1, "1", BIG, 1.5, True, None]
# op -> field -> values that must each be refused with bad_request naming that field
BAD_VALUES: dict[str, dict[str, list[Any]]] = {
    "hello": {
        "versions": [[], [0], [256], [1] * 9, "1", 1, None, [1.0], MISSING],
        "token": ["t" * 1025, 5, b"token"],
        "username": BAD_USERNAMES[:-2],
        "password": ["p" * 257, 5],
        "device": ["", "d" * 65, 5, None],
        "readonly": [1, "true", None],
        "client": ["c" * 65, 5],
    },
    "send": {
        "conv": [*BAD_CONVS, MISSING],
        "cid": ["", "c" * 65, 5, None, b"c-1", MISSING],
        "kind": ["", "Text", "1text", "k" * 33, "text ", 5, None],
        "text": [5, ["hi"], b"hi", {"t": "hi"}],
        "body": ["x", [1], 5, b"{}"],
    },
    "sync": {
        "after": [[], "x", None, 5, {"g:1": -1}, {"g:1": BIG}, {"g:1": "1"}, {"g:1": None}, {"bad": 1},
                  {"g:0": 1}, {"u:Bob": 1}, {5: 1}],
        "limit": [0, 501, -1, "5", BIG, None, 1.5],
    },
    "history": {
        "conv": [*BAD_CONVS, MISSING],
        "before": [-1, "1", BIG, 1.5, [1]],
        "after": [-1, "1", BIG, 1.5, [1]],
        "limit": [0, 201, -1, "5", BIG, None, 1.5],
    },
    "read": {"conv": [5, "g:0", None, MISSING], "seq": [*BAD_SEQS, MISSING]},
    "group_create": {
        "name": ["", "n" * 65, 5, None, ["n"], MISSING],
        "members": ["alice", 5, None, {"alice": 1}, ["ok"] * 1001],
    },
    "group_add": {
        "conv": [5, "g:0", None, MISSING],
        "user": [*BAD_USERNAMES, MISSING],
        "role": ["king", "Owner", "", 5, None],
    },
    "group_remove": {"conv": [5, "g:0", None, MISSING], "user": [*BAD_USERNAMES, MISSING]},
    "members": {"conv": [*BAD_CONVS, MISSING]},
}
# Elements of arrays are named by index (§3.3.1).
BAD_ELEMENTS: list[tuple[str, str, list[Any], str]] = [
    ("group_create", "members", ["alice", 5], "members[1]"),
    ("group_create", "members", ["Alice"], "members[0]"),
    ("group_create", "members", ["ok", "ok", "a" * 65], "members[2]"),
    ("hello", "versions", [1, 0], "versions[1]"),
    ("hello", "versions", [1, "2"], "versions[1]"),
]
BAD_RIDS = [0, -1, 2**53, BIG, "7", 1.5, True, None, [7]]


def _cases() -> list[tuple[str, dict[str, Any], str | None, bool]]:
    """(name, frame, expected field, whether the error carries the frame's rid)."""
    cases = []
    rids = itertools.count(100)
    for op, fields in BAD_VALUES.items():
        for field, values in fields.items():
            for index, value in enumerate(values):
                frame = {"op": op, "rid": next(rids), **BASE[op]}
                if value is MISSING:
                    frame.pop(field, None)
                else:
                    frame[field] = value
                cases.append((f"{op}.{field}[{'missing' if value is MISSING else index}]", frame, field, True))
    for op, field, value, path in BAD_ELEMENTS:
        cases.append((f"{op}.{path}", {"op": op, "rid": next(rids), **BASE[op], field: value}, path, True))
    for op in BASE:
        for index, rid in enumerate(BAD_RIDS):
            cases.append((f"{op}.rid[{index}]", {"op": op, **BASE[op], "rid": rid}, "rid", False))
        cases.append((f"{op}.rid[missing]", {"op": op, **BASE[op]}, "rid", False))
    return cases


CASES = _cases()


def _first_component(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


async def test_every_invalid_field_of_every_op_is_bad_request_naming_it(server: Running) -> None:
    """One connection, a few hundred bad requests: each gets its own error, none changes anything."""
    await server.user("dr", Role.STAFF)
    await server.user("bob")
    async with logged_in(server, "dr") as raw:
        group = (await raw.ok("group_create", name="g", members=["bob"]))["conv"]
        assert group == "g:1"  # BASE frames name g:1: valid, so only the broken field can be at fault
        await raw.ok("send", conv=group, cid="before", text="before")
        wrong = []
        for name, frame, field, has_rid in CASES:
            error = await raw.answer(frame)
            got = (error["op"], error.get("code"), error.get("rid"))
            expected = ("error", "bad_request", frame["rid"] if has_rid else None)
            path = error.get("field")
            missing = field not in frame
            # A missing field may be named or not (§3.3.1); otherwise the path must name the field.
            field_ok = (path is None and missing) or (
                path is not None and (path == field or _first_component(path) == field)
            )
            if got != expected or not field_ok:
                wrong.append(f"{name}: sent {frame!r:.120}, got {error}")
            await raw.alive()
        assert not wrong, "\n".join(wrong)
        # Nothing happened: still logged in, the group has one message and the same members, no new group.
        await raw.ok("send", conv=group, cid="after", text="after")
        page = (await raw.ok("history", conv=group))["messages"]
        assert [(m["seq"], m["text"]) for m in page] == [(1, "before"), (2, "after")]
        convs = (await raw.ok("convs"))["convs"]
        assert [c["conv"] for c in convs] == [group]
        members = (await raw.ok("members", conv=group))["members"]
        assert sorted(m["username"] for m in members) == ["bob", "dr"]


def _client_error_vectors() -> list[dict[str, Any]]:
    if not VECTORS.exists():
        return []
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
    return [v for v in vectors if v["direction"] == "client" and v["expect"] != "ok"]


@pytest.mark.skipif(not VECTORS.exists(), reason="protocol/vectors/v1.json not written yet")
async def test_client_error_vectors_get_their_error_from_the_live_server(server: Running) -> None:
    """The codec is checked against the vectors in tests/protocol; this checks the server says the same on the wire."""
    await server.user("alice")
    vectors = _client_error_vectors()
    assert vectors
    async with logged_in(server, "alice") as raw:
        wrong = []
        for vector in vectors:
            error = await raw.answer(bytes.fromhex(vector["hex"]))
            expect = vector["expect"]
            if (
                error["op"] != "error"
                or error["code"] != expect["error"]
                or error.get("rid") != expect.get("rid")
                or ("field" in expect and error.get("field") != expect["field"])
            ):
                wrong.append(f"{vector['name']}: expected {expect}, got {error}")
            await raw.alive()
        assert not wrong, "\n".join(wrong)


# -- semantic errors, and that they change nothing (SPEC.md §5, §6.1, §7.1) ------------------


async def test_refused_requests_change_nothing(server: Running) -> None:
    await server.user("dr", Role.STAFF)
    for name in ("alice", "bob", "carol"):
        await server.user(name)
    async with logged_in(server, "dr") as dr, logged_in(server, "alice") as alice:
        group = (await dr.ok("group_create", name="移植群", members=["alice", "bob"]))["conv"]
        private = (await dr.ok("group_create", name="医护群"))["conv"]
        assert (await alice.ok("send", conv=group, cid="m1", text="第一条"))["seq"] == 1
        gid = group[2:]

        async def refused(client: Raw, op: str, code: str, field: str | None = None, **fields: Any) -> None:
            error = await client.request(op, **fields)
            assert (error["op"], error["code"]) == ("error", code), (op, fields, error)
            if field is not None:
                assert error.get("field") == field, (op, fields, error)
            assert error["message"]
            await client.alive()

        cid = itertools.count()

        async def bad_send(code: str, field: str | None = None, conv: str = group, **fields: Any) -> None:
            await refused(alice, "send", code, field, conv=conv, cid=f"bad-{next(cid)}", **fields)

        await bad_send("not_found", "conv", conv="g:999999", text="x")
        await bad_send("not_found", "conv", conv="g:999999999999999999", text="x")
        await bad_send("not_found", "conv", conv="d:999999", text="x")
        await bad_send("not_found", "conv", conv=f"d:{gid}", text="x")  # a group is not a direct chat
        await bad_send("forbidden", None, conv=private, text="x")
        await bad_send("not_found", "conv", conv="u:nosuchuser", text="x")
        await bad_send("bad_request", "conv", conv="u:alice", text="x")
        await bad_send("bad_request", "text", text="")
        await bad_send("bad_request", "text", text=" \n\t ")
        await bad_send("bad_request", "text")
        await bad_send("bad_request", "text", text=None)
        await bad_send("text_too_long", "text", text="长" * 4001)
        await bad_send("bad_request", "body", text="x", body={"title": "t"})
        await bad_send("bad_request", "body", kind="notice")
        await bad_send("bad_request", "body", kind="notice", text="x", body=None)
        await bad_send("bad_request", "body.title", kind="notice", body={"title": 5, "content": "c"})
        await bad_send("bad_request", "body.title", kind="notice", body={"title": "", "content": "c"})
        await bad_send("bad_request", "body.content", kind="notice", body={"title": "t", "content": "c" * 4001})
        await bad_send(
            "bad_request", "body.action.target", kind="notice",
            body={"title": "t", "content": "c", "action": {"label": "l", "target": "javascript:alert(1)"}},
        )
        await bad_send("bad_request", "body.lat", kind="location", body={"name": "n", "lat": 91, "lon": 0})
        await bad_send("bad_request", "body.url", kind="article", body={"title": "t", "url": "ftp://x"})
        await bad_send("bad_request", "kind", kind="survey", body={})
        await bad_send("bad_request", "kind", kind="zzz", text="x")
        # Valid messages between the refused ones, at the limits: they get the next seqs, with no gaps.
        assert (await alice.ok("send", conv=group, cid="m2", text="🩸" * 4000))["seq"] == 2
        notice = {"title": "取卵术前须知", "content": "术前一晚 22 点后禁食禁水。"}
        assert (await alice.ok("send", conv=group, cid="m3", kind="notice", body=notice))["seq"] == 3

        await refused(alice, "history", "bad_request", None, conv=group, before=3, after=1)
        await refused(alice, "history", "forbidden", None, conv=private)
        await refused(alice, "history", "not_found", "conv", conv="g:999999")
        await refused(alice, "members", "forbidden", None, conv=private)
        await refused(alice, "read", "forbidden", None, conv=private, seq=1)
        await refused(alice, "sync", "not_found", None, after={"u:nosuchuser": 0})
        await refused(alice, "group_create", "forbidden", None, name="患者建群", members=["bob"])
        await refused(alice, "group_add", "forbidden", None, conv=group, user="carol")
        await refused(alice, "group_add", "forbidden", None, conv=group, user="alice", role="owner")
        await refused(alice, "group_remove", "forbidden", None, conv=group, user="bob")
        await refused(alice, "group_add", "forbidden", None, conv=private, user="alice")
        await refused(dr, "group_add", "not_found", "user", conv=group, user="nosuchuser")
        await refused(dr, "group_add", "not_found", "conv", conv="g:999999", user="carol")
        await refused(dr, "group_remove", "not_found", "user", conv=group, user="carol")
        await refused(dr, "group_create", "not_found", "members[1]", name="g2", members=["alice", "nosuchuser"])

        # Nothing changed: the valid messages only, seqs 1..3; memberships and conversations as they were.
        page = (await dr.ok("history", conv=group))["messages"]
        assert [m["seq"] for m in page] == [1, 2, 3]
        assert [m["seq"] for m in (await alice.ok("history", conv=group))["messages"] if m["cid"]] == [1, 2, 3]
        assert page[2]["text"] == "【通知】取卵术前须知：术前一晚 22 点后禁食禁水。"
        assert (await dr.ok("history", conv=private))["messages"] == []
        assert [c["conv"] for c in (await alice.ok("convs"))["convs"]] == [group]
        assert [c["conv"] for c in (await dr.ok("convs"))["convs"]] == [group, private]
        members = (await dr.ok("members", conv=group))["members"]
        assert {m["username"]: m["member_role"] for m in members} == {"dr": "owner", "alice": "member", "bob": "member"}
        # A cid refused before may be used now: nothing was stored under it.
        assert (await alice.ok("send", conv=group, cid="bad-0", text="重试"))["dup"] is False


async def test_group_ops_on_a_direct_chat_are_bad_request(server: Running) -> None:
    for name in ("alice", "carol"):
        await server.user(name)
    await server.user("bob", Role.STAFF)
    await server.user("root", Role.ADMIN)
    async with logged_in(server, "alice") as alice, logged_in(server, "root") as root:
        direct = (await alice.ok("send", conv="u:bob", cid="c", text="hi"))["conv"]
        for client, op, fields in (
            (alice, "group_add", {"conv": direct, "user": "carol"}),
            (alice, "group_add", {"conv": "u:bob", "user": "carol"}),
            (alice, "group_remove", {"conv": direct, "user": "bob"}),
            (alice, "group_remove", {"conv": direct, "user": "alice"}),
            (root, "group_add", {"conv": direct, "user": "carol"}),
            (root, "group_remove", {"conv": direct, "user": "bob"}),
        ):
            error = await client.request(op, **fields)
            assert (error["code"], error.get("field")) == ("bad_request", "conv"), (op, fields, error)


async def test_what_no_store_can_hold_is_bad_request_and_nothing_is_stored(server: Running) -> None:
    """Issue 14 item 2 on the wire (every field of every op: tests/protocol/test_hostile.py): U+0000 in a string or a
    key, and NaN or infinity, are refused naming the field; a form reply's key once got as far as the database."""
    await server.user("dr", Role.STAFF)
    async with logged_in(server, "dr") as dr:
        group = (await dr.ok("group_create", name="g"))["conv"]
        wrong = []
        reply = {"conv": group, "kind": "form_reply"}
        for op, fields, field in (
            ("send", {"conv": group, "cid": "c1", "text": "a\x00b"}, "text"),
            ("send", {"conv": group, "cid": "c\x00", "text": "ok"}, "cid"),
            ("send", {"conv": group, "cid": "c3", "kind": "notice", "body": {"title": "t", "content": "\x00"}},
             "body.content"),
            ("send", {**reply, "cid": "c4", "body": {"form": 1, "values": {"体重\x00": "60"}}}, "body.values"),
            ("send", {**reply, "cid": "c5", "body": {"form": 1, "values": {"体重": "6\x000"}}}, "body.values.体重"),
            *(("send", {**reply, "cid": x, "body": {"form": 1, "values": {"体重": float(x)}}}, "body.values.体重")
              for x in ("nan", "-inf")),
            ("group_create", {"name": "a\x00b"}, "name"),
            ("qr_save", {"shortcut": "x", "title": "t", "text": "{{?体\x00重}}"}, "text"),
            ("facts_set", {"user": "dr", "key": "k", "value": "\x00"}, "value"),
        ):
            error = await dr.request(op, **fields)
            if (error["op"], error.get("code"), error.get("field")) != ("error", "bad_request", field):
                wrong.append(f"{op} {fields!r}: {error}")
            await dr.alive()
        for field in ("device", "client"):
            async with connect(server) as raw:
                error = await raw.answer(hello("dr", **{field: "pad\x00"}))
                if (error["op"], error.get("code"), error.get("field")) != ("error", "bad_request", field):
                    wrong.append(f"hello {field} with NUL: {error}")
        assert (await dr.ok("history", conv=group))["messages"] == []
        assert not wrong, "\n".join(wrong)


async def test_audit_since_past_the_year_9999_is_bad_request_not_internal(server: Running) -> None:
    """Issue 14 item 10: ``since`` 2^62 ms is no datetime, and the server answered ``internal`` (SPEC.md §5.16, §8)."""
    await server.user("root", Role.ADMIN)
    async with logged_in(server, "root") as root:
        error = await root.request("audit", since=2**62)
        assert (error["op"], error["code"], error.get("field")) == ("error", "bad_request", "since"), error
        assert (await root.ok("audit", since=253_402_300_799_999))["entries"] == []


# -- oversize frames (SPEC.md §2.3) -----------------------------------------------------------


def padded_ping(rid: int, size: int) -> bytes:
    """A valid ping frame of exactly ``size`` bytes (an unknown field carries the padding)."""
    head = len(encode({"op": "ping", "rid": rid, "pad": b""}))
    for overhead in range(0, 6):
        frame = encode({"op": "ping", "rid": rid, "pad": b"x" * (size - head - overhead)})
        if len(frame) == size:
            return frame
    raise AssertionError(f"cannot pad a ping to {size} bytes")


async def test_oversize_frames(server: Running) -> None:
    await server.user("alice")
    await server.user("bob")
    max_frame = server.settings.max_frame
    async with (
        open_client(server.url, username="bob", password=PASSWORD) as bob,
        logged_in(server, "alice") as alice,
    ):
        assert (await alice.answer(padded_ping(2, max_frame)))["op"] == "ok"  # exactly the limit: decoded
        for size in (max_frame + 1, 70_000, HARD_CAP):
            error = await alice.answer(padded_ping(3, size))
            assert (error["op"], error["code"]) == ("error", "frame_too_large"), (size, error)
            assert "rid" not in error
            await alice.alive()
            await bob.request("ping")
        # Over the hard cap the WebSocket layer closes on the frame's header, without reading the frame:
        # the close may come while the client is still sending it.
        with contextlib.suppress(ConnectionClosed):
            await alice.send(padded_ping(4, HARD_CAP + 1))
        reason, frames = await alice.closed()
        assert frames == []
        assert reason is not None and reason.code == 1009, reason
        # Meanwhile the server kept serving others.
        await bob.request("ping")
        async with logged_in(server, "alice") as again:
            await again.alive()
