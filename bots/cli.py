"""``imbot``: run one bot, or list the bots this install has (issue 5's scripted command line).

    imbot run NAME   logs in as the bot account NAME and runs until stopped (Ctrl-C, SIGTERM)
    imbot list       one JSON object per line: name, title, description, commands

Environment: IMBOT_URL (default ws://127.0.0.1:8080/), IMBOT_PASSWORD or IMBOT_TOKEN;
IMBOT_DATABASE_URL (else DATABASE_URL) for the bot's own schema ``bot_<name>`` (positions, jobs);
without either, positions are kept in memory only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys

import trio

from bots import BOTS
from bots.framework import Bot, run_bot
from bots.framework.state import BotState
from clients.python import ClientError
from pgtrio.bridge import open_store

DEFAULT_URL = "ws://127.0.0.1:8080/"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imbot", description="Run the chat server's bots.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one bot until stopped")
    run.add_argument("name", help="the bot, and the username of its bot account")
    run.add_argument("--url", default=os.environ.get("IMBOT_URL", DEFAULT_URL), help="server URL (IMBOT_URL)")
    sub.add_parser("list", help="the bots this install has, one JSON object per line")
    return parser


def describe(bot: Bot) -> dict[str, object]:
    return {
        "name": bot.name, "title": bot.title, "description": bot.description,
        "commands": [{"name": c.name, "usage": c.usage(), "help": c.help} for c in bot.registry],
    }


async def _run(bot: Bot, url: str, password: str | None, token: str | None) -> None:
    async with trio.open_nursery() as nursery:
        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
        nursery.start_soon(stop_on_signal)
        dsn = os.environ.get("IMBOT_DATABASE_URL") or os.environ.get("DATABASE_URL")
        if not dsn:  # positions in memory only (bots/README.md)
            await run_bot(bot, url, username=bot.name, password=password, token=token)
            return
        async with open_store(dsn, min_size=1, max_size=4) as store:
            state = BotState(store, bot.name, bot.migrations)
            await state.migrate()
            await run_bot(bot, url, username=bot.name, password=password, token=token, state=state)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name in sorted(BOTS):
            print(json.dumps(describe(BOTS[name]()), ensure_ascii=False))
        return
    if args.name not in BOTS:
        raise SystemExit(f"imbot: no bot named {args.name!r}; `imbot list` shows them")
    password, token = os.environ.get("IMBOT_PASSWORD"), os.environ.get("IMBOT_TOKEN")
    if not password and not token:
        raise SystemExit("imbot: set IMBOT_PASSWORD or IMBOT_TOKEN")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        trio.run(_run, BOTS[args.name](), args.url, password or None, token or None)
    except ClientError as exc:
        print(json.dumps({"error": exc.code, "message": exc.message}, ensure_ascii=False), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
