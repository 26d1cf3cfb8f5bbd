"""The ``imserver`` command line: run the server, migrate, and operator commands.

Operator commands write to the database directly (``DATABASE_URL``) and
announce live changes on the event bus, so a running server picks them up.
Results are printed as JSON; errors go to stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import trio

from imserver import auth, logs
from imserver.config import Settings
from imserver.model import MemberRole, Role
from imserver.server import ChatServer, open_server_key
from imserver.store import accounts, conversations
from imserver.store.bridge import Store, open_store
from imserver.store.migrate import available, migrate
from protocol.frames import USERNAME_PATTERN


class CliError(Exception):
    """A problem the operator can fix; printed without a traceback."""


MIN_PASSWORD = 8


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imserver", description="Hospital chat server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="start everything with demo data (a private Postgres unless DATABASE_URL is set)")
    sub.add_parser("migrate", help="apply pending schema migrations to DATABASE_URL")
    run = sub.add_parser("run", help="run the server on DATABASE_URL")
    run.add_argument("--listen", help="HOST:PORT for WebSocket clients (default 127.0.0.1:8080)")
    run.add_argument("--http-listen", help="HOST:PORT for /healthz and /metrics (default 127.0.0.1:8081)")

    user = sub.add_parser("user", help="accounts").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create an account; the password is read from stdin")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[str(r) for r in Role])
    add.add_argument("--display-name")

    group = sub.add_parser("group", help="groups").add_subparsers(dest="action", required=True)
    create = group.add_parser("create", help="create a group")
    create.add_argument("name")
    create.add_argument("--owner", required=True, metavar="USERNAME")
    gadd = group.add_parser("add", help="add a member, or change a member's role")
    gadd.add_argument("group_id", type=int)
    gadd.add_argument("username")
    gadd.add_argument("--role", default="member", choices=[str(r) for r in MemberRole])
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logs.setup()
    try:
        settings = Settings.load()
        if args.command == "demo":
            from imserver.demo import run_demo
            run_demo(settings)
            return
        if not settings.database_url:
            raise CliError("DATABASE_URL is not set")
        command = _COMMANDS[(args.command, getattr(args, "action", None))]
        result = trio.run(_with_store, settings, command, args)
    except (CliError, ValueError) as exc:
        print(f"imserver: {exc}", file=sys.stderr)
        sys.exit(1)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"imserver: database error: {exc}", file=sys.stderr)
        sys.exit(1)
    if result is not None:
        print(json.dumps(result, ensure_ascii=False))


async def _with_store(settings: Settings, command: Callable[..., Awaitable[Any]], args: argparse.Namespace) -> Any:
    try:
        async with open_store(settings.database_url, max_size=settings.db_pool_size) as store:
            return await command(store, settings, args)
    except BaseExceptionGroup as group:  # open_store's nurseries wrap what the command raised
        raise _sole(group) from None


def _sole(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _migrate(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    return {"applied": await migrate(store)}


async def _run(store: Store, settings: Settings, args: argparse.Namespace) -> None:
    overrides = {k: v for k, v in (("listen", args.listen), ("http_listen", args.http_listen)) if v}
    await serve_until_signal(store, dataclasses.replace(settings, **overrides))


async def serve_until_signal(
    store: Store, settings: Settings, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    await _check_schema(store)
    server = ChatServer(settings, store, await open_server_key(store))
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(server.serve)
            task_status.started(addresses)
            async for _ in signals:
                server.shutdown()
                break


async def _check_schema(store: Store) -> None:
    async def txn(conn: asyncpg.Connection) -> set[int]:
        exists = await conn.fetchval("select to_regclass('schema_migrations') is not null")
        return {r[0] for r in await conn.fetch("select version from schema_migrations")} if exists else set()
    done = await store.run("check_schema", txn, transaction=False)
    if {m.version for m in available()} - done:
        raise CliError("the database schema is not current: run `imserver migrate` first")


async def _user_add(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    if not re.match(USERNAME_PATTERN, args.username):
        raise CliError("username: lowercase letters, digits, '_', '.', '-'; at most 64 characters")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise CliError(f"the password (on stdin) must have at least {MIN_PASSWORD} characters")
    try:
        user = await accounts.create_user(
            store, args.username, args.display_name or args.username, Role(args.role),
            await auth.hash_password(password),
        )
    except asyncpg.UniqueViolationError:
        raise CliError(f"user {args.username} already exists") from None
    return {"id": user.id}


async def _username(store: Store, username: str) -> int:
    user = await accounts.user_by_name(store, username)
    if user is None:
        raise CliError(f"no user {username}")
    return user.id


async def _group_create(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    owner = await _username(store, args.owner)
    return {"id": await store.run("group_create", conversations.create_group_txn, args.name, owner, [])}


async def _group_add(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    roster = await conversations.roster(store, args.group_id)
    if roster is None or roster.kind != "group":
        raise CliError(f"no group {args.group_id}")
    user_id = await _username(store, args.username)
    role = MemberRole(args.role)
    await store.run("group_add", conversations.set_members_txn, args.group_id, [(user_id, role)])
    return {"conv": roster.address, "user": args.username, "role": str(role)}


_COMMANDS: dict[tuple[str, str | None], Callable[..., Awaitable[Any]]] = {
    ("migrate", None): _migrate,
    ("run", None): _run,
    ("user", "add"): _user_add,
    ("group", "create"): _group_create,
    ("group", "add"): _group_add,
}
