"""``imbot pathway enroll|date|status|run-due`` as a script runs them (a stable interface for scripts): each a separate
process against a real server and a real Postgres, reading only its JSON output and exit code, and what the
patient receives in the app."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest
import trio

from clients.python import open_client
from imserver.model import Role
from tests.conftest import PASSWORD, Running
from tests.helpers import take

pytestmark = pytest.mark.slow  # every test here starts a process

UNREACHABLE = "ws://127.0.0.1:9/"
"""No chat server here: enroll, date and status need only the database."""


class Imbot:
    def __init__(self, url: str, db: str) -> None:
        self.env = os.environ | {"IMBOT_URL": url, "IMBOT_PASSWORD": PASSWORD, "IMBOT_DATABASE_URL": db}

    async def run(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        done = await trio.run_process([sys.executable, "-m", "bots.cli", "pathway", *args], env=env or self.env,
                                      check=False, capture_stdout=True, capture_stderr=True)
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    async def json(self, *args: str, code: int = 0) -> dict[str, Any]:
        returncode, out, err = await self.run(*args)
        assert returncode == code, err
        result: dict[str, Any] = json.loads(out)
        return result


async def test_a_script_enrolls_dates_and_moves_time_and_she_receives_her_content(server: Running, db: str) -> None:
    """EDU-3: the file-building content reaches her service conversation on the cycle's first day at 09:00, and
    status tells where she stands and what comes next; TRT-2: a procedure date makes the next step's date known."""
    await server.user("pathway", Role.BOT, "宣教助手")
    await server.user("chen", Role.PATIENT, "陈红")
    imbot = Imbot(UNREACHABLE, db)

    enrolled = await imbot.json("enroll", "chen", "--pathway", "ivf", "--day", "2026-12-01", "--his-id", "P001",
                                "--now", "2026-12-01T08:00")
    assert enrolled["status"] == "applied" and enrolled["event"].startswith("cli-")
    assert await imbot.json("status", "chen", "--now", "2026-11-30T20:00") == {  # the evening before
        "patient": "chen", "pathway": "ivf", "version": 2, "cycle": enrolled["cycle"], "started": "2026-12-01",
        "dates": {}, "node": None, "next": {"key": "filing", "name": "建档", "date": "2026-12-01"},
        "prepare": "夫妻双方身份证、结婚证原件，既往检查报告",
    }

    imbot = Imbot(server.url, db)  # run-due sends, as the bot account
    async with open_client(server.url, username="chen", password=PASSWORD) as chen:
        assert await imbot.json("run-due", "--now", "2026-12-01T08:59") == {
            "now": "2026-12-01T08:59:00+08:00", "ran": 0, "kinds": {}, "failed": []}
        assert await imbot.json("run-due", "--now", "2026-12-01T09:00+08:00") == {
            "now": "2026-12-01T09:00:00+08:00", "ran": 1, "kinds": {"node": 1}, "failed": []}
        filing = await take(chen, 5)
        assert [m.kind for m in filing] == ["text", "text", "article", "signature_request", "form"]
        assert {(m.sender.name, m.sender.role) for m in filing} == {("宣教助手", "bot")}
        assert (await chen.send("u:pathway", "收到")).conv == filing[0].conv  # her service conversation

    dated = await imbot.json("date", "chen", "trigger", "2026-12-14", "--now", "2026-12-05T10:00")
    assert dated["status"] == "applied" and dated["cycle"] == enrolled["cycle"]
    status = await imbot.json("status", "chen", "--now", "2026-12-05T10:00")
    assert status["dates"] == {"trigger": "2026-12-14"}
    assert status["node"] == {"key": "filing", "name": "建档"}
    assert status["next"] == {"key": "trigger", "name": "夜针", "date": "2026-12-14"}
    assert status["prepare"] == "按医嘱准时注射夜针，注射后保留药盒"


async def test_a_date_moved_and_moved_back_counts_each_time(db: str) -> None:
    """TRT-2: every invocation is a new event, so the doctor moving a date A→B→A ends at A, not as a duplicate."""
    imbot = Imbot(UNREACHABLE, db)
    await imbot.json("enroll", "chen", "--pathway", "ivf", "--day", "2026-12-01")
    for day in ("2026-12-14", "2026-12-15", "2026-12-14"):
        assert (await imbot.json("date", "chen", "trigger", day))["status"] == "applied"
    assert (await imbot.json("status", "chen", "--now", "2026-12-05T10:00"))["dates"] == {"trigger": "2026-12-14"}


async def test_what_cannot_apply_exits_1_with_the_reason_and_bad_input_exits_2(db: str) -> None:
    """EDU-3, TRT-2: a date for a patient with no cycle, or a procedure her pathway has not, is refused (exit 1) and
    changes nothing; a malformed date or an unknown procedure is a usage error (exit 2) saying what is wrong."""
    imbot = Imbot(UNREACHABLE, db)
    refused = await imbot.json("date", "zhao", "retrieval", "2026-12-16", code=1)
    assert refused["status"] == "rejected" and refused["error"] == "zhao has no open cycle"
    await imbot.json("enroll", "chen", "--pathway", "ivf", "--day", "2026-12-01")
    refused = await imbot.json("date", "chen", "insemination", "2026-12-16", code=1)
    assert refused["error"] == "pathway ivf has no insemination"
    assert (await imbot.json("status", "chen"))["dates"] == {}

    code, out, err = await imbot.run("date", "chen", "trigger", "14/12")
    assert (code, out) == (2, "") and "argument day: not a date (YYYY-MM-DD): '14/12'" in err
    code, out, err = await imbot.run("date", "chen", "transplant", "2026-12-16")
    assert (code, out) == (2, "") and "invalid choice: 'transplant'" in err
    code, _, err = await imbot.run("enroll", "chen", "--pathway", "ivf", "--now", "tomorrow")
    assert code == 2 and "argument --now: not an ISO 8601 time: 'tomorrow'" in err

    assert await imbot.json("status", "nobody") == {"patient": "nobody", "pathway": None, "node": None, "next": None}
    code, _, err = await imbot.run("status", "chen", env={k: v for k, v in imbot.env.items()
                                                          if k not in ("IMBOT_DATABASE_URL", "DATABASE_URL")})
    assert code == 1 and "needs the bot's database: set IMBOT_DATABASE_URL" in err


async def test_run_due_names_what_failed_and_why(server: Running, db: str) -> None:
    """EDU-3: a patient the hospital system enrolled who has no app account yet cannot be sent her content; the
    summary says which job failed and why (it is retried on a later run)."""
    await server.user("pathway", Role.BOT, "宣教助手")
    imbot = Imbot(server.url, db)
    cycle = (await imbot.json("enroll", "wang", "--pathway", "iui", "--day", "2026-12-01"))["cycle"]
    summary = await imbot.json("run-due", "--now", "2026-12-01T09:00")
    assert (summary["ran"], summary["kinds"]) == (1, {"node": 1})
    [failed] = summary["failed"]
    assert failed["key"] == f"node:{cycle}:filing:2026-12-01:0" and failed["kind"] == "node"
    assert failed["error"].startswith("ClientError") and "no user wang" in failed["error"]
