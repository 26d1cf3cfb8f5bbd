"""Message kinds through a real server (MSG-1, MSG-2): every template kind round-trips to another member and into
history unchanged, an invalid body is refused naming the field, and admins define new kinds at run time, by
protocol or operator command, which every member can then use and look up."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import trio

from clients.python import Client, open_client
from imserver.config import Settings
from imserver.model import Role
from tests.conftest import PASSWORD, Running
from tests.conftest import test_settings as server_settings
from tests.helpers import take
from tests.imserver.test_attachments import SAMPLES
from tests.imserver.test_rules_support import imserver, imserver_ok, refused
from tests.protocol.test_custom_kinds import SURVEY
from tests.protocol.test_kinds import BAD, GOOD


@pytest.fixture
def settings() -> Settings:
    # The tables below send some fifty messages on one connection: keep the rate limit out of the way.
    return server_settings(rate=10_000.0, burst=10_000)


def without_nil(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def swapped(value: Any, files: dict[str, dict[str, Any]]) -> Any:
    """``value`` with each attachment of the tables replaced by the file really stored for it."""
    if isinstance(value, dict):
        if value.get("id") in files:
            return files[value["id"]]
        return {k: swapped(v, files) for k, v in value.items()}
    if isinstance(value, list):
        return [swapped(v, files) for v in value]
    return value


async def stored_files(client: Client) -> dict[str, dict[str, Any]]:
    """Upload a file of the right type for every attachment the tables name (the server checks they exist)."""
    wanted = {a["id"]: a for _, body, _, _ in GOOD for a in attachments_in(body)}
    return {fake: msgspec.to_builtins(await client.upload(SAMPLES[a["mime"]] + bytes(100), a["mime"],
                                                          a.get("name", "")))
            for fake, a in wanted.items()}


def attachments_in(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value] if str(value.get("id", "")).startswith("att_") else [
            a for v in value.values() for a in attachments_in(v)]
    return [a for v in value for a in attachments_in(v)] if isinstance(value, list) else []


async def test_every_kind_round_trips_and_a_bad_body_is_refused(server: Running) -> None:
    await server.user("dr_li", Role.STAFF, "李医生")
    await server.user("chen")
    async with (
        open_client(server.url, username="dr_li", password=PASSWORD) as doctor,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        group = (await doctor.request("group_create", name="取卵群", members=["chen"]))["conv"]
        files = await stored_files(doctor)
        for kind, body, _, _ in GOOD:
            await doctor.send(group, kind=kind, body=swapped(body, files))
        got = await take(chen, len(GOOD))
        history, _ = await chen.history(group, limit=len(GOOD))
        for message, kept, (kind, _, normalised, fallback) in zip(got, history, GOOD, strict=True):
            assert (message.kind, message.text, without_nil(message.body or {})) == (
                kind, fallback, without_nil(swapped(normalised, files)))
            assert (kept.kind, kept.text, kept.body) == (message.kind, message.text, message.body)

        for kind, body, field in BAD:
            error = await refused(doctor.send(group, kind=kind, body=body), "bad_request")
            assert error.field == field, (kind, body)
        error = await refused(doctor.send(group, kind="survey", body={"title": "t"}), "bad_request")
        assert error.field == "kind"
        assert (await doctor.history(group, after=len(GOOD)))[0] == []  # nothing refused was stored


@pytest.mark.slow
async def test_admins_define_kinds_that_everyone_can_use(server: Running, db: str) -> None:
    await server.user("admin", Role.ADMIN, "信息科")
    await server.user("dr_li", Role.STAFF, "李医生")
    await server.user("chen")
    async with (
        open_client(server.url, username="admin", password=PASSWORD) as admin,
        open_client(server.url, username="dr_li", password=PASSWORD) as doctor,
        open_client(server.url, username="chen", password=PASSWORD) as chen,
    ):
        await refused(doctor.request("kind_define", definition=SURVEY), "forbidden")
        bad = await refused(admin.request("kind_define", definition=SURVEY | {"fallback": "{nope}"}), "bad_request")
        assert bad.field == "definition.fallback"
        bad = await refused(admin.request("kind_define", definition=SURVEY | {"name": "notice"}), "bad_request")
        assert bad.field == "definition.name"
        bad = await refused(admin.request("kind_define", definition={**SURVEY, "fields": [{"name": "x"}]}),
                            "bad_request")
        assert (bad.field or "").startswith("definition.fields[0]")

        assert (await admin.request("kind_define", definition=SURVEY))["kind"] == "transfer_survey"
        listed = await chen.request("kinds")
        assert "transfer_survey" in listed["kinds"] and "notice" in listed["kinds"]
        assert [k["name"] for k in listed["custom"]] == ["transfer_survey"]
        group = (await doctor.request("group_create", name="移植群", members=["chen"]))["conv"]
        await doctor.send(group, kind="transfer_survey", body={"score": "满意", "day": "2026-12-01"})
        (got,) = await take(chen, 1)
        assert (got.kind, got.text, got.body) == (
            "transfer_survey", "【满意度调查】满意（2026-12-01）", {"score": "满意", "day": "2026-12-01"})
        await refused(doctor.send(group, kind="transfer_survey", body={"score": "好", "day": "2026-12-01"}),
                      "bad_request")
        audit = await imserver_ok(db, "audit", "--actor", "admin")
        assert [(a["action"], a["detail"]) for a in audit] == [("kind_define", {"kind": "transfer_survey"})]

        # An operator defines one from a file; the running server learns of it over the bus.
        followup = {"name": "pregnancy_check", "title": "验孕结果", "fallback": "【验孕】{result}",
                    "fields": [{"name": "result", "type": "choice", "label": "结果", "choices": ["阳性", "阴性"]}]}
        assert await imserver_ok(db, "kind", "define", "-", stdin=json.dumps(followup).encode()) == [
            {"kind": "pregnancy_check"}]
        with trio.fail_after(5):
            while "pregnancy_check" not in (await doctor.request("kinds"))["kinds"]:  # noqa: ASYNC110 (the bus event is not visible to a client)
                await trio.sleep(0.05)
        await doctor.send(group, kind="pregnancy_check", body={"result": "阳性"})
        assert [m.text for m in await take(chen, 1)] == ["【验孕】阳性"]
        done = await imserver(db, "kind", "define", "-", stdin=json.dumps(followup | {"fallback": "{x}"}).encode())
        assert done.returncode != 0 and b"fallback" in done.stderr
        assert [k["name"] for k in await imserver_ok(db, "kind", "list")] == ["pregnancy_check", "transfer_survey"]
