"""The operator commands (docs/operations.md) against a running server's database: each takes effect
live, through the event bus, and is audited as ``cli:<os user>``. (``imclient members`` is tested elsewhere.)
Each command is a real ``imserver`` process, which takes about half a second to start."""

from __future__ import annotations

import getpass
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import trio

from protocol.clock import HOSPITAL_ZONE
from tests.conftest import Running
from tests.helpers import database_now
from tests.imserver.test_rules_support import (
    PEOPLE,
    Ward,
    imserver,
    imserver_ok,
    login,
    none_of,
    open_ward,
    pushed_msg,
    pushes,
    refused,
)

ONLINE = ("owner", "staff", "patient", "other", "family")
A, B = PEOPLE["patient"].username, PEOPLE["other"].username

pytestmark = pytest.mark.slow  # every test here starts a process


async def everyone_told(w: Ward, **switches: bool) -> None:
    state = {"op": "group", "conv": w.group, "muted": False, "allow_friends": False, "family_can_speak": False,
             "banned": False}
    for kind in ONLINE:
        assert await pushes(w[kind], "group") == [state | switches], kind


async def test_group_switches_take_effect_live(server: Running, db: str) -> None:
    async with open_ward(server, online=ONLINE) as w:
        gid, group = w.group[2:], w.group
        assert await imserver_ok(db, "group", "mute", gid, "on") == [{"conv": group, "muted": True}]
        await everyone_told(w, muted=True)
        await refused(w["patient"].send(group, "禁言了吗"), "muted")
        await w["staff"].send(group, "护士可以说话")
        assert await imserver_ok(db, "group", "mute", gid, "off") == [{"conv": group, "muted": False}]
        await everyone_told(w)
        await w["patient"].send(group, "可以说话了")

        await imserver_ok(db, "group", "set", gid, "family_can_speak", "on")
        await everyone_told(w, family_can_speak=True)
        await w["family"].send(group, "家属发言")
        await imserver_ok(db, "group", "set", gid, "family_can_speak", "off")
        await everyone_told(w)
        await refused(w["family"].send(group, "还能说吗"), "family_read_only")

        assert await imserver_ok(db, "group", "set", gid, "allow_friends", "on") == [
            {"conv": group, "allow_friends": True}
        ]
        await everyone_told(w, allow_friends=True)
        members = (await w["other"].request("members", conv=group))["members"]
        (alias,) = [m["id"] for m in members if m["role"] == "patient" and m["id"] != w.ref("other")]
        await w["other"].request("friend_request", conv=group, member=alias)
        assert (await pushes(w["patient"], "friend_request"))[0]["from"]["name"] != PEOPLE["other"].name

        assert await imserver_ok(db, "group", "ban", gid) == [{"conv": group, "banned": True}]
        await everyone_told(w, allow_friends=True, banned=True)
        await refused(w["patient"].request("history", conv=group), "group_banned")
        await imserver_ok(db, "group", "unban", gid)
        await everyone_told(w, allow_friends=True)
        assert len((await w["patient"].request("history", conv=group))["messages"]) == 3


async def test_isolation_takes_effect_live(server: Running, db: str) -> None:
    async with open_ward(server, online=ONLINE) as w:
        gid, group = w.group[2:], w.group
        m1 = (await w["patient"].send(group, "隔离前")).seq
        for kind in ("owner", "staff", "other", "family"):
            await pushed_msg(w[kind], group)
        assert await imserver_ok(db, "group", "isolate", gid, A) == [{"conv": group, "user": A, "isolated": True}]
        for kind in ("staff", "other", "family"):
            assert await pushes(w[kind], "hidden") == [
                {"op": "hidden", "conv": group, "ranges": [[m1, m1]], "retract": True}
            ], kind
        for kind in ("patient", "owner"):
            await none_of(w[kind], "hidden", "group", seconds=0.1)
        m2 = (await w["patient"].send(group, "隔离中")).seq
        assert (await pushed_msg(w["owner"], group))["seq"] == m2
        assert await pushes(w["other"], "hidden") == [{"op": "hidden", "conv": group, "ranges": [[m2, m2]]}]
        await imserver_ok(db, "group", "unisolate", gid, A)
        m3 = (await w["patient"].send(group, "解除后")).seq
        assert (await pushed_msg(w["other"], group))["seq"] == m3
        history = await w["other"].request("history", conv=group)
        assert ([m["seq"] for m in history["messages"]], history["hidden"]) == ([m3], [[m1, m2]])

        failures: dict[str, Any] = {}

        async def run(who: str) -> None:
            failures[who] = await imserver(db, "group", "isolate", gid, who)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, PEOPLE["admin"].username)  # not a member
            nursery.start_soon(run, PEOPLE["owner"].username)  # owners and admins cannot be isolated
        assert [(f.returncode, f.stdout) for f in failures.values()] == [(1, b"")] * 2
        assert b"not a member" in failures[PEOPLE["admin"].username].stderr
        assert b"cannot be isolated" in failures[PEOPLE["owner"].username].stderr


async def test_accounts_family_words_and_the_audit_log(server: Running, db: str) -> None:
    operator = f"cli:{getpass.getuser()}"
    async with open_ward(server, online=("owner", "patient", "admin")) as w:
        out: dict[str, list[dict[str, Any]]] = {}

        async def ok(name: str, *args: str, stdin: bytes = b"") -> None:
            out[name] = await imserver_ok(db, *args, stdin=stdin)

        async with trio.open_nursery() as nursery:  # independent commands run side by side: each is a process
            nursery.start_soon(partial(ok, "user", "user", "add", "fam_bella", "--role", "family",
                                       "--display-name", "赵家属", "--phone", "13700000000",
                                       stdin=b"a-long-password\n"))
            nursery.start_soon(ok, "group", "group", "create", "随访群", "--owner", PEOPLE["owner"].username)
            nursery.start_soon(ok, "mask", "words", "add", "代孕", "--policy", "mask")
            nursery.start_soon(ok, "block", "words", "add", "加微信", "--policy", "block")
        assert list(out["user"][0]) == ["id"]
        assert out["mask"] == [{"word": "代孕", "policy": "mask"}]
        await until_shown(w, "问代孕", "问＊＊")
        await refused(w["patient"].send(w.group, "可以加微信吗"), "sensitive_words")  # added at the same time
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ok, "link", "family", "link", B, "fam_bella", "--relation", "husband")
            nursery.start_soon(ok, "list", "words", "list")
        assert out["link"] == [{"patient": B, "family": "fam_bella", "relation": "husband"}]
        assert out["list"] == [{"word": "代孕", "policy": "mask"}, {"word": "加微信", "policy": "block"}]
        follow_up = f"g:{out['group'][0]['id']}"
        async with login(server, "fam_bella", password="a-long-password") as husband:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ok, "add", "group", "add", follow_up[2:], B)  # her husband follows her in
                nursery.start_soon(ok, "remove", "words", "remove", "代孕")
            assert (await pushes(husband, "conv"))[0]["conv"] == follow_up
            with trio.fail_after(2):  # he sees his wife for real once the server has heard of the link
                while True:
                    members = (await husband.request("members", conv=follow_up))["members"]
                    if any(m["id"] == w.ref("other") for m in members):
                        break
                    await trio.sleep(0.05)
        await until_shown(w, "问代孕", "问代孕")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ok, "mine", "audit", "--actor", operator)
            nursery.start_soon(ok, "none", "audit", "--since", "2999-01-01T00:00:00+08:00")
            # A time without a zone is Beijing time: since an hour ago there, everything of this test (taken as
            # UTC, that time would be hours ahead, and nothing would be listed).
            now = await database_now(server.store)  # the audit's clock
            hour_ago = now.astimezone(HOSPITAL_ZONE).replace(tzinfo=None) - timedelta(hours=1)
            nursery.start_soon(ok, "naive", "audit", "--since", hour_ago.isoformat())
        assert sorted((e["action"], e["target"], str(e["detail"])) for e in out["mine"]) == sorted([
            ("family_link", B, str({"family": "fam_bella", "relation": "husband"})),
            ("words_set", None, str({"word": "代孕", "policy": "mask"})),
            ("words_set", None, str({"word": "加微信", "policy": "block"})),
            ("words_remove", None, str({"word": "代孕", "policy": None})),
        ])
        assert {(e["actor"], e["remote"]) for e in out["mine"]} == {(operator, "cli")}
        assert out["none"] == []
        assert out["naive"] == (await w["admin"].request("audit"))["entries"]  # everything so far
        assert (await w["admin"].request("audit", actor=operator))["entries"] == out["mine"]
        by_owner = (await w["admin"].request("audit", actor=PEOPLE["owner"].username))["entries"]
        assert [e["action"] for e in by_owner] == ["family_link"]

        failures: dict[tuple[str, ...], Any] = {}

        async def run(*args: str) -> None:
            failures[args] = await imserver(db, *args)
        async with trio.open_nursery() as nursery:
            for args in (("words", "remove", "没有这个词"),
                         ("family", "link", "fam_bella", B, "--relation", "husband")):  # roles swapped
                nursery.start_soon(run, *args)
        for args, done in failures.items():
            assert done.returncode == 1 and done.stderr.startswith(b"imserver: ") and not done.stdout, (args, done)


async def until_shown(w: Ward, text: str, shown: str, seconds: float = 2) -> None:
    """A word change reaches the server through the event bus: send until the text is shown as ``shown``."""
    with trio.fail_after(seconds):
        while True:
            ack = await w["patient"].send(w.group, text)
            (message,), _ = await w["owner"].history(w.group, after=ack.seq - 1)
            if message.text == shown:
                return
            await trio.sleep(0.05)
