"""An operator changes an account's role (``imserver user role``, the action the console will call too): the
account's sessions end at once, it logs in again with the new role's rights and is shown as that role; the
change is audited (SEC-1)."""

from __future__ import annotations

import getpass

import pytest
import trio

from clients.python import ClientError, open_client
from tests.conftest import Running
from tests.imserver.test_rules_bans import watch_until_closed
from tests.imserver.test_rules_support import PEOPLE, imserver, imserver_ok, login, open_ward, refused

NURSE = PEOPLE["staff"].username


@pytest.mark.slow  # runs the imserver command line
async def test_a_role_change_ends_the_sessions_and_takes_effect_at_the_next_login(server: Running, db: str) -> None:
    async with open_ward(server, online=("staff", "admin")) as w:
        await refused(w["staff"].request("audit"), "forbidden")
        token = w["staff"].token
        closed: dict[str, dict[str, object]] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_until_closed, w["staff"], closed)
            assert await imserver_ok(db, "user", "role", NURSE, "--role", "admin") == [{"user": NURSE, "role": "admin"}]
        assert closed["bye"]["code"] == "session_ended"
        with pytest.raises(ClientError) as old_token:
            async with open_client(server.url, token=token):
                pass
        assert old_token.value.code == "token_invalid"
        async with login(server, "staff") as nurse:
            assert nurse.welcome.user.role == "admin"
            entries = (await nurse.request("audit"))["entries"]  # an admin's right now
        assert [(e["actor"], e["action"], e["target"], e["detail"]) for e in entries][-1] == (
            f"cli:{getpass.getuser()}", "user_role", NURSE, {"role": "admin", "was": "staff"})

        refusal = await imserver(db, "user", "role", "nobody", "--role", "staff")
        assert (refusal.returncode, refusal.stderr) == (1, b"imserver: no user nobody\n")
