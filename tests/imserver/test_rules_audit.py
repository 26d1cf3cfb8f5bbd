"""Audit (SEC-1) and protected personal data (SEC-2): every moderation action and every staff read of a profile is
in the audit log with who, what, whom, where and from which address; phone numbers are encrypted at rest."""

from __future__ import annotations

import asyncpg

from tests.conftest import Running
from tests.helpers import database_now
from tests.imserver.test_rules_support import PEOPLE, open_ward, refused

PHONE = "13912345678"
A, F = PEOPLE["patient"].username, PEOPLE["family"].username


async def test_every_moderation_action_and_profile_read_is_audited(server: Running) -> None:
    started = int((await database_now(server.store)).timestamp() * 1000)  # before the ward, which links the family
    async with open_ward(server, phones={"patient": PHONE}) as w:
        group, owner, admin = w.group, w["owner"], w["admin"]
        await owner.request("group_set", conv=group, muted=True)
        await owner.request("isolate", conv=group, member=w.ref("patient"))
        await owner.request("unisolate", conv=group, member=w.ref("patient"))
        await admin.request("group_ban", conv=group)
        await admin.request("group_unban", conv=group)
        await admin.request("user_ban", user=PEOPLE["bot"].username)
        await admin.request("user_unban", user=PEOPLE["bot"].username)
        await admin.request("words_set", word="代孕", policy="mask")
        await admin.request("words_remove", word="代孕")
        profile = await w["staff"].request("profile", conv=group, member=w.ref("patient"))
        assert profile | {"rid": 0} == {
            "op": "ok", "rid": 0, "id": w.ref("patient"), "username": A, "name": PEOPLE["patient"].name,
            "role": "patient", "phone": PHONE,
            "family": [{"id": w.ref("family"), "username": F, "name": PEOPLE["family"].name, "role": "family"}],
        }

        entries = (await admin.request("audit", limit=1000))["entries"]
        rows = [(e["actor"], e["action"], e["target"], e["conv"], e["detail"]) for e in entries]
        assert rows == [
            (PEOPLE["owner"].username, "family_link", A, None, {"family": F, "relation": "husband"}),
            (PEOPLE["owner"].username, "group_set", None, group, {"muted": True}),
            (PEOPLE["owner"].username, "isolate", A, group, {}),
            (PEOPLE["owner"].username, "unisolate", A, group, {}),
            (PEOPLE["admin"].username, "group_ban", None, group, {}),
            (PEOPLE["admin"].username, "group_unban", None, group, {}),
            (PEOPLE["admin"].username, "user_ban", PEOPLE["bot"].username, None, {}),
            (PEOPLE["admin"].username, "user_unban", PEOPLE["bot"].username, None, {}),
            (PEOPLE["admin"].username, "words_set", None, None, {"word": "代孕", "policy": "mask"}),
            (PEOPLE["admin"].username, "words_remove", None, None, {"word": "代孕", "policy": None}),
            (PEOPLE["staff"].username, "profile_read", A, group, {}),
        ]
        assert all(e["remote"].startswith("127.0.0.1") for e in entries), entries
        assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
        assert all(e["at"].endswith("+00:00") for e in entries)

        by_nurse = (await admin.request("audit", actor=PEOPLE["staff"].username))["entries"]
        assert [e["action"] for e in by_nurse] == ["profile_read"]
        assert len((await admin.request("audit", since=started))["entries"]) == len(entries)
        assert (await admin.request("audit", since=started + 3_600_000))["entries"] == []
        assert len((await admin.request("audit", limit=2))["entries"]) == 2


async def test_profile_is_for_staff_and_audit_for_admins(server: Running) -> None:
    async with open_ward(server, phones={"patient": PHONE}) as w:
        for kind in ("patient", "other", "family"):
            await refused(w[kind].request("profile", conv=w.group, member=w.ref(kind)), "forbidden")
        for kind in ("owner", "staff", "patient", "other", "family"):
            await refused(w[kind].request("audit"), "forbidden")
        await refused(w["staff"].request("profile", conv=w.group, member="a99"), "not_found")
        await refused(w["admin"].request("profile", conv=w.group, member=w.ref("patient")), "forbidden")  # not in it
        assert (await w["owner"].request("profile", conv=w.group, member=w.ref("other")))["phone"] is None
        actions = [(e["actor"], e["action"]) for e in (await w["admin"].request("audit"))["entries"]]
        assert actions[-1] == (PEOPLE["owner"].username, "profile_read")  # refusals read nothing: not audited
        assert len(actions) == 2  # the family link of the set-up, and that one read


async def test_phone_numbers_are_encrypted_at_rest(server: Running) -> None:
    async with open_ward(server, online=("owner",), phones={"patient": PHONE}) as w:

        async def stored(conn: asyncpg.Connection) -> bytes:
            blob: bytes = await conn.fetchval("select phone_enc from users where username = $1", A)
            return blob
        blob = await server.store.run("peek", stored)
        assert blob and PHONE.encode() not in blob and PHONE not in blob.hex()
        assert (await w["owner"].request("profile", conv=w.group, member=w.ref("patient")))["phone"] == PHONE


async def test_audit_names_a_direct_chat_by_its_own_address(server: Running) -> None:
    """(Every conversation used to be shown as g:<id>; fixed in 02762fe.)"""
    async with open_ward(server, online=("staff", "patient", "admin")) as w:
        direct = (await w["staff"].send(f"u:{A}", "张女士您好")).conv
        await w["staff"].request("profile", conv=direct, member=w.ref("patient"))
        (entry,) = (await w["admin"].request("audit", actor=PEOPLE["staff"].username))["entries"]
        assert entry["conv"] == direct
