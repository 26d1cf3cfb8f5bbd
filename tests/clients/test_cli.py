"""The imclient command line against a real server (the commands of README's "Running it for real")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio

from clients.python import open_client
from imserver.model import Role
from tests.conftest import PASSWORD, Running
from tests.helpers import script

pytestmark = pytest.mark.slow  # every test here starts a process


async def imclient(server: Running, user: str, *args: str, password: str = PASSWORD) -> trio.CompletedProcess[bytes]:
    env = {**os.environ, "IMCLIENT_PASSWORD": password}
    return await trio.run_process(
        [script("imclient"), "--url", server.url, "--user", user, *args],
        capture_stdout=True, capture_stderr=True, check=False, env=env,
    )


def lines(result: trio.CompletedProcess[bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


async def test_send_history_listen(server: Running) -> None:
    await server.user("dr", Role.STAFF, "王医生")
    await server.user("alice")
    sent = lines(await imclient(server, "dr", "send", "u:alice", "你好", "--client-id", "k1"))
    assert sent == [{"conv": sent[0]["conv"], "seq": 1, "id": sent[0]["id"], "dup": False}]
    again = lines(await imclient(server, "dr", "send", "u:alice", "你好", "--client-id", "k1"))
    assert again[0]["dup"] is True and again[0]["seq"] == 1
    await imclient(server, "alice", "send", "u:dr", "谢谢")
    history = lines(await imclient(server, "alice", "history", "u:dr"))
    assert [(m["seq"], m["text"]) for m in history] == [(1, "你好"), (2, "谢谢")]
    assert lines(await imclient(server, "alice", "history", "u:dr", "--after", "1")) == history[1:]

    async with trio.open_nursery() as nursery:
        listened: list[trio.CompletedProcess[bytes]] = []

        async def listen() -> None:
            listened.append(await imclient(server, "alice", "listen", "u:dr", "--count", "2", "--timeout", "10"))
        nursery.start_soon(listen)
        await trio.sleep(1.0)  # let the listener connect before the live messages
        for text in ("第一条", "第二条"):
            await imclient(server, "dr", "send", "u:alice", text)
    assert [m["text"] for m in lines(listened[0])] == ["第一条", "第二条"]


async def test_errors_exit_non_zero_with_the_protocol_code(server: Running) -> None:
    await server.user("alice")
    wrong = await imclient(server, "alice", "send", "g:1", "x", password="wrong-password")
    assert wrong.returncode != 0 and json.loads(wrong.stderr)["error"] == "auth_failed"
    missing = await imclient(server, "alice", "send", "g:999", "x")
    assert missing.returncode != 0 and json.loads(missing.stderr)["error"] == "not_found"


async def test_members_and_mention_only(server: Running) -> None:
    await server.user("dr", Role.STAFF, "王医生")
    for name in ("alice", "bob"):
        await server.user(name, name=f"{name}-real-name")
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        group = (await doctor.request("group_create", name="g", members=["alice", "bob"]))["conv"]
    as_bob = lines(await imclient(server, "bob", "members", group))
    assert {m["role"] for m in as_bob} == {"staff", "patient"}
    alice_seen_by_bob = [m for m in as_bob if m["role"] == "patient" and m["id"] != bob_id(as_bob)]
    assert alice_seen_by_bob and "username" not in alice_seen_by_bob[0]  # masked (IM-6)
    assert "alice-real-name" not in json.dumps(as_bob, ensure_ascii=False)
    sent = lines(await imclient(server, "dr", "send", group, "只给你看", "--only", "alice"))
    assert sent[0]["seq"] == 1
    assert [m["text"] for m in lines(await imclient(server, "alice", "history", group))] == ["只给你看"]
    assert lines(await imclient(server, "bob", "history", group)) == []


def bob_id(members: list[dict[str, object]]) -> object:
    return next(m["id"] for m in members if m.get("username") == "bob")


async def test_upload_and_fetch_a_file(server: Running, tmp_path: Path) -> None:
    """MSG-4: ``imclient upload FILE`` prints the attachment to send; ``imclient fetch ID`` writes the file to
    ``--out`` or to standard output, for those who may see it."""
    await server.user("dr", Role.STAFF, "王医生")
    await server.user("alice")
    await server.user("bob")
    data = b"%PDF-1.7\n" + os.urandom(150_000)
    (tmp_path / "移植须知.pdf").write_bytes(data)
    uploaded = await imclient(server, "dr", "upload", str(tmp_path / "移植须知.pdf"))
    ref = lines(uploaded)[0]
    assert ref == {"id": ref["id"], "mime": "application/pdf", "size": len(data), "name": "移植须知.pdf"}
    async with open_client(server.url, username="dr", password=PASSWORD) as doctor:
        await doctor.send("u:alice", kind="lab_report_pdf", body={"title": "移植须知", "pdf": ref})
    out = tmp_path / "fetched.pdf"
    fetched = lines(await imclient(server, "alice", "fetch", str(ref["id"]), "--out", str(out)))
    assert fetched == [{"id": ref["id"], "out": str(out), "size": len(data)}] and out.read_bytes() == data
    assert (await imclient(server, "alice", "fetch", str(ref["id"]))).stdout == data
    refused = await imclient(server, "bob", "fetch", str(ref["id"]))
    assert refused.returncode == 1 and json.loads(refused.stderr)["error"] == "not_found"
    (tmp_path / "a.exe").write_bytes(b"MZ" + os.urandom(100))
    wrong = await imclient(server, "alice", "upload", str(tmp_path / "a.exe"), "--mime", "application/pdf")
    assert wrong.returncode == 1 and json.loads(wrong.stderr)["error"] == "bad_request"
