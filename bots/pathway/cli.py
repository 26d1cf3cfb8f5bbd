"""``imbot pathway``: the pathway bot from a shell (EDU-3, TRT-2), for operators and scripted checks.

    imbot pathway enroll PATIENT --pathway ivf|iui [--day D] [--his-id] [--phone] [--openid] [--now T]
    imbot pathway date PATIENT trigger|retrieval|fresh_transfer|frozen_transfer|insemination YYYY-MM-DD [--now T]
    imbot pathway status PATIENT [--now T]
    imbot pathway run-due --now T                 (``imbot run-due pathway``, with a fuller summary)

Why these exist beside the chat commands (``/enroll``, ``/date``, ``/status``): a check script, or an
operator while the hospital system's link is down, can stand in for the hospital system and move
time without a chat client. So ``enroll`` and ``date`` do exactly what a hospital-system event does:
they build the event and hand it to ``intake.take`` (recorded with source ``cli``), which stores it
and then acts on it. They and ``status`` need only the bot's database (IMBOT_DATABASE_URL, else
DATABASE_URL), not the chat server; sending is the jobs' work, which ``run-due`` does as the bot
account (bots/cli.py runs it; this module says what its summary holds).

Each ``enroll`` and ``date`` is a new event with a fresh id: an id derived from the content would
make "the date moved from A to B and back to A" a duplicate, and the move back would be lost.

Output is one JSON object on stdout. Exit codes: 0 done (a duplicate included), 1 the event was
rejected (the reason is in ``error``), 2 bad command-line input (argparse).
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import trio

from bots.framework.jobs import Attempt
from bots.framework.state import BotState
from bots.pathway.bot import PathwayBot
from bots.pathway.definition import PROCEDURES
from bots.pathway.events import Patient
from bots.pathway.intake import ActFailed, Outcome, enroll, set_date
from bots.pathway.schedule import position
from bots.pathway.store import CycleRow, PathwayStore
from pgtrio.bridge import open_store
from protocol.clock import HOSPITAL_ZONE, system_clock
from protocol.frames import USERNAME_PATTERN
from protocol.kinds import parse_day

SOURCE = "cli"
"""What events from this command line are recorded as coming from (the hospital system's are ``his``)."""


def add_commands(parser: argparse.ArgumentParser, when: Callable[[str], datetime]) -> argparse._SubParsersAction:
    """Add ``enroll``, ``date`` and ``status`` under ``parser``; return its subparsers, for ``run-due``.

    ``when`` parses ``--now`` (ISO 8601, Asia/Shanghai without an offset).
    """
    actions = parser.add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("patient", type=_username, help="her username in the app")
    common.add_argument("--now", type=when, help="when this happens, ISO 8601 (no offset: Asia/Shanghai); default: now")
    enroll = actions.add_parser("enroll", parents=[common], help="start her cycle, as the hospital system would")
    enroll.add_argument("--pathway", required=True, choices=("ivf", "iui"), help="ivf (试管婴儿) or iui (人授)")
    enroll.add_argument("--day", type=_day, help="the day the cycle starts, YYYY-MM-DD (default: today)")
    enroll.add_argument("--his-id", default="", help="her record number in the hospital system")
    enroll.add_argument("--phone", default="", help="her mobile number, for treatment items by SMS")
    enroll.add_argument("--openid", default="", help="her WeChat openid, for treatment items by WeChat")
    dated = actions.add_parser("date", parents=[common], help="record a procedure's date, as the hospital system would")
    dated.add_argument("procedure", choices=tuple(PROCEDURES), help="the procedure")
    dated.add_argument("day", type=_day, help="its day, YYYY-MM-DD")
    actions.add_parser("status", parents=[common], help="her pathway, current node, next step and its date")
    return actions


def _username(text: str) -> str:
    if not re.match(USERNAME_PATTERN, text):
        raise argparse.ArgumentTypeError(f"not a username (a-z, 0-9, _ . -): {text!r}")
    return text


def _day(text: str) -> date:
    day = parse_day(text)
    if day is None:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}")
    return day


def main(args: argparse.Namespace, dsn: str | None) -> int:
    """Run ``enroll``, ``date`` or ``status``, print its JSON object, return the exit code."""
    if not dsn:
        raise SystemExit(f"imbot pathway {args.action}: needs the bot's database: set IMBOT_DATABASE_URL"
                         " (or DATABASE_URL)")
    result: dict[str, Any] = trio.run(_main, args, dsn)
    print(json.dumps(result, ensure_ascii=False))
    return 1 if result.get("status") in ("rejected", "failed") else 0


async def _main(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    now: datetime = args.now or system_clock()
    async with open_pathways(dsn) as store:
        if args.action == "status":
            return status_of(args.patient, await store.open_cycle(args.patient), now)
        try:
            if args.action == "enroll":
                patient = Patient(username=args.patient, his_id=args.his_id, phone=args.phone, openid=args.openid)
                day = args.day or now.astimezone(HOSPITAL_ZONE).date()
                outcome = await enroll(store, SOURCE, _event_id(), patient, args.pathway, day, now)
            else:
                outcome = await set_date(store, SOURCE, _event_id(), Patient(username=args.patient),
                                         args.procedure, args.day, now)
        except ActFailed as exc:  # kept: the bot tries it again at its next start
            outcome = exc.outcome()
        return outcome_json(outcome)


@asynccontextmanager
async def open_pathways(dsn: str) -> AsyncIterator[PathwayStore]:
    """The bot's schema, migrated, with the pathways this install ships published (as the bot does at start)."""
    async with open_store(dsn, min_size=1, max_size=2) as pool:
        state = BotState(pool, PathwayBot.name, PathwayBot.migrations)
        await state.migrate()
        store = PathwayStore(state)
        await store.publish_shipped()
        yield store


def _event_id() -> str:
    return f"{SOURCE}-{uuid.uuid4()}"


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    done: dict[str, Any] = {"status": outcome.status, "event": outcome.event, "cycle": outcome.cycle}
    if outcome.status in ("rejected", "failed"):
        done["error"] = outcome.error
    return done


def status_of(patient: str, cycle: CycleRow | None, now: datetime) -> dict[str, Any]:
    """Where she stands at ``now`` (EDU-3): what ``/progress`` tells her, as data."""
    if cycle is None:
        return {"patient": patient, "pathway": None, "node": None, "next": None}
    where = position(cycle.cycle, now)
    return {
        "patient": patient, "pathway": cycle.pathway.key, "version": cycle.pathway.version, "cycle": cycle.id,
        "started": cycle.started.isoformat(),
        "dates": {procedure: day.isoformat() for procedure, day in sorted(cycle.dates.items())},
        "node": None if where.current is None else {"key": where.current.key, "name": where.current.name},
        "next": None if where.next is None else {
            "key": where.next.key, "name": where.next.name,
            "date": None if where.next_date is None else where.next_date.isoformat(),
        },
        "prepare": "" if where.next is None else where.next.prepare,
    }


def due_summary(now: datetime, attempts: list[Attempt]) -> dict[str, Any]:
    """What ``run-due`` did: how many job attempts ran, how many of each kind (``node``: a node's content and
    group move; ``treatment``: a procedure's items; ``order``: a doctor's order's education; ``outbox.*``:
    notices outside the app), and each attempt that failed, with why (retried on a later run, until the job's
    attempts run out)."""
    failed = sorted((a for a in attempts if a.error is not None), key=lambda a: a.job.key)
    return {
        "now": now.isoformat(), "ran": len(attempts),
        "kinds": dict(sorted(Counter(a.job.kind for a in attempts).items())),
        "failed": [{"key": a.job.key, "kind": a.job.kind, "error": a.error} for a in failed],
    }
