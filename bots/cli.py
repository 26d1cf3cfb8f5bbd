"""``imbot``: run one bot, or list the bots this install has (its output is a stable interface for scripts).

    imbot run NAME                 logs in as the bot account NAME and runs until stopped (Ctrl-C, SIGTERM)
    imbot run-due NAME --now ISO   runs the bot's jobs due by that time (outbox steps included), then exits
    imbot list                     one JSON object per line: name, title, description, commands
    imbot pathway ...              the pathway bot's enroll, date, status and run-due (bots/pathway/cli.py)

Environment: IMBOT_URL (default ws://127.0.0.1:8080/), IMBOT_PASSWORD or IMBOT_TOKEN;
IMBOT_DATABASE_URL (else DATABASE_URL) for the bot's own schema ``bot_<name>`` (positions, jobs,
the outbox); without either, positions are kept in memory only and there is no outbox. The
outbox's outside channels: IMBOT_WECHAT_*, IMBOT_SMS_*, IMBOT_PHONE_* (bots/framework/channels.py).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import trio

import jsonlog
from bots import BOTS
from bots.framework import Bot, run_bot
from bots.framework.channels import ChannelConfigError, open_channels
from bots.framework.jobs import Attempt
from bots.framework.outbox import Outbox
from bots.framework.runner import job_handlers
from bots.framework.state import BotState
from bots.pathway import cli as pathway_cli
from bots.pathway.bot import PathwayBot
from clients.python import ClientError, open_client
from pgtrio.bridge import open_store
from protocol.clock import HOSPITAL_ZONE

DEFAULT_URL = "ws://127.0.0.1:8080/"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imbot", description="Run the chat server's bots.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one bot until stopped")
    run.add_argument("name", help="the bot, and the username of its bot account")
    run.add_argument("--url", default=os.environ.get("IMBOT_URL", DEFAULT_URL), help="server URL (IMBOT_URL)")
    _add_run_due(sub)
    sub.add_parser("list", help="the bots this install has, one JSON object per line")
    pathway = sub.add_parser("pathway", help="the pathway bot: enroll, date, status, run-due (JSON output)")
    _add_run_due(pathway_cli.add_commands(pathway, _when), bot=PathwayBot.name)
    return parser


def _add_run_due(sub: argparse._SubParsersAction, bot: str | None = None) -> None:
    """``run-due NAME``, or for ``bot`` (``imbot pathway run-due``) the same without NAME."""
    due = sub.add_parser("run-due", help="run the bot's jobs due by a given time, then exit")
    if bot is None:
        due.add_argument("name", help="the bot, and the username of its bot account")
    else:
        due.set_defaults(name=bot)
    due.add_argument("--now", required=True, type=_when,
                     help="ISO 8601 time, e.g. 2026-03-02T09:00 (without an offset: Asia/Shanghai)")
    due.add_argument("--url", default=os.environ.get("IMBOT_URL", DEFAULT_URL), help="server URL (IMBOT_URL)")


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=HOSPITAL_ZONE)


def describe(bot: Bot) -> dict[str, object]:
    return {
        "name": bot.name, "title": bot.title, "description": bot.description,
        "commands": [{"name": c.name, "usage": c.usage(), "help": c.help} for c in bot.registry],
    }


def _dsn() -> str | None:
    return os.environ.get("IMBOT_DATABASE_URL") or os.environ.get("DATABASE_URL")


@asynccontextmanager
async def _open_outbox(bot: Bot, dsn: str) -> AsyncIterator[Outbox]:
    """The bot's schema, migrated, and its outbox with the channels the environment configures."""
    async with open_store(dsn, min_size=1, max_size=4) as store, open_channels(os.environ) as channels:
        state = BotState(store, bot.name, bot.migrations)
        await state.migrate()
        yield Outbox(state, channels)


async def _run(bot: Bot, url: str, password: str | None, token: str | None) -> None:
    async with trio.open_nursery() as nursery:
        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
        nursery.start_soon(stop_on_signal)
        dsn = _dsn()
        if not dsn:  # positions in memory only, no outbox (bots/README.md)
            await run_bot(bot, url, username=bot.name, password=password, token=token)
            return
        async with _open_outbox(bot, dsn) as outbox:
            await run_bot(bot, url, username=bot.name, password=password, token=token, outbox=outbox)


async def _run_due(bot: Bot, url: str, password: str | None, token: str | None, now: datetime) -> list[Attempt]:
    dsn = _dsn()
    if not dsn:
        raise SystemExit("imbot: run-due needs the bot's database: set IMBOT_DATABASE_URL")
    async with (
        _open_outbox(bot, dsn) as outbox,
        open_client(url, username=bot.name, password=password, token=token, device=f"imbot-{bot.name}") as client,
    ):
        with outbox.connected(client):
            return await outbox.state.jobs.run_due_attempts(job_handlers(bot, outbox), now=now)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name in sorted(BOTS):
            print(json.dumps(describe(BOTS[name]()), ensure_ascii=False))
        return
    if args.command == "pathway" and args.action != "run-due":  # the bot's database only, no login
        sys.exit(pathway_cli.main(args, _dsn()))
    if args.name not in BOTS:
        raise SystemExit(f"imbot: no bot named {args.name!r}; `imbot list` shows them")
    password, token = os.environ.get("IMBOT_PASSWORD"), os.environ.get("IMBOT_TOKEN")
    if not password and not token:
        raise SystemExit("imbot: set IMBOT_PASSWORD or IMBOT_TOKEN")
    jsonlog.setup(bot=args.name)  # the one log format (jsonlog); every line names the bot
    try:
        if args.command in ("run-due", "pathway"):
            attempts = trio.run(_run_due, BOTS[args.name](), args.url, password or None, token or None, args.now)
            summary = (pathway_cli.due_summary(args.now, attempts) if args.command == "pathway"
                       else {"ran": len(attempts), "now": args.now.isoformat()})
            print(json.dumps(summary, ensure_ascii=False))
        else:
            trio.run(_run, BOTS[args.name](), args.url, password or None, token or None)
    except* ChannelConfigError as group:  # (nurseries deliver errors in groups, maybe nested)
        raise SystemExit(f"imbot: {_first(group)}") from None
    except* ClientError as group:
        exc = _first(group)
        assert isinstance(exc, ClientError)
        print(json.dumps({"error": exc.code, "message": exc.message}, ensure_ascii=False), file=sys.stderr)
        sys.exit(1)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


if __name__ == "__main__":
    main()
