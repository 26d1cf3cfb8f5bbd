"""The ``imserver`` command line: run the server, migrate, and operator commands.

Operator commands write to the database directly (``DATABASE_URL``) and
announce live changes on the event bus, so a running server picks them up.
Results are printed as JSON; errors go to stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import trio

import jsonlog
from imserver import auth, visibility
from imserver.config import Settings
from imserver.custom_kinds import parse_definition
from imserver.model import MemberRole, Role, Roster
from imserver.moderation import ban_txn, link_family_txn
from imserver.server import ChatServer, open_keys, tune_garbage_collector
from imserver.store import accounts, conversations, kinds, moderation, quickreplies
from imserver.store.migrate import available, migrate
from imserver.words import Policy, normalise
from pgtrio.bridge import Store, open_store
from protocol import ProtocolError
from protocol.clock import HOSPITAL_ZONE
from protocol.frames import USERNAME_PATTERN


class CliError(Exception):
    """A problem the operator can fix; printed without a traceback."""


class Lines(list[Any]):
    """A result printed as JSON lines, one item a line."""


MIN_PASSWORD = 8


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imserver", description="Hospital chat server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending schema migrations to DATABASE_URL")
    run = sub.add_parser("run", help="run the server on DATABASE_URL")
    run.add_argument("--listen", help="HOST:PORT for WebSocket clients (default 127.0.0.1:8080)")
    run.add_argument("--http-listen", help="HOST:PORT for /healthz and /metrics (default 127.0.0.1:8081)")

    user = sub.add_parser("user", help="accounts").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create an account; the password is read from stdin")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[str(r) for r in Role])
    add.add_argument("--display-name")
    add.add_argument("--title", default="", help="a staff member's title, e.g. 主任医师")
    add.add_argument("--phone", help="stored encrypted (SEC-2)")
    for verb in ("ban", "unban"):
        user.add_parser(verb, help=f"{verb} an account (IM-14)").add_argument("username")

    group = sub.add_parser("group", help="groups").add_subparsers(dest="action", required=True)
    create = group.add_parser("create", help="create a group")
    create.add_argument("name")
    create.add_argument("--owner", required=True, metavar="USERNAME")
    gadd = group.add_parser("add", help="add a member, or change a member's role")
    gadd.add_argument("group_id", type=int)
    gadd.add_argument("username")
    gadd.add_argument("--role", default="member", choices=[str(r) for r in MemberRole])
    mute = group.add_parser("mute", help="mute all / open all (IM-4)")
    mute.add_argument("group_id", type=int)
    mute.add_argument("state", choices=["on", "off"])
    gset = group.add_parser("set", help="switch a group setting (IM-5, IM-9)")
    gset.add_argument("group_id", type=int)
    gset.add_argument("setting", choices=["family_can_speak", "allow_friends"])
    gset.add_argument("state", choices=["on", "off"])
    for verb in ("isolate", "unisolate"):
        iso = group.add_parser(verb, help=f"{verb} a member (IM-12, IM-13)")
        iso.add_argument("group_id", type=int)
        iso.add_argument("username")
    for verb in ("ban", "unban"):
        group.add_parser(verb, help=f"{verb} a group (IM-15)").add_argument("group_id", type=int)

    family = sub.add_parser("family", help="family links").add_subparsers(dest="action", required=True)
    link = family.add_parser("link", help="link a family account to a patient (IM-8)")
    link.add_argument("patient")
    link.add_argument("family")
    link.add_argument("--relation", required=True, choices=["husband", "parent", "child", "other"])

    words = sub.add_parser("words", help="sensitive words (IM-11)").add_subparsers(dest="action", required=True)
    wadd = words.add_parser("add", help="add a word or change its policy")
    wadd.add_argument("word")
    wadd.add_argument("--policy", required=True, choices=[str(p) for p in Policy])
    words.add_parser("remove", help="remove a word").add_argument("word")
    words.add_parser("list", help="list the words")

    kind = sub.add_parser("kind", help="custom message kinds (MSG-1)").add_subparsers(dest="action", required=True)
    kind.add_parser("define", help="define or replace a kind from a JSON file (- for stdin)").add_argument("file")
    kind.add_parser("list", help="the custom kinds as JSON lines")

    team = sub.add_parser("team", help="care teams (MSG-3)").add_subparsers(dest="action", required=True)
    team.add_parser("create", help="create a care team").add_argument("name")
    for verb in ("add", "remove"):
        member = team.add_parser(verb, help=f"{verb} a staff account")
        member.add_argument("name")
        member.add_argument("username")
    team.add_parser("list", help="the teams and their members")

    audit = sub.add_parser("audit", help="the audit log as JSON lines (SEC-1)")
    audit.add_argument("--since", type=_local_time, help="ISO 8601; without a zone, Beijing time (Asia/Shanghai)")
    audit.add_argument("--actor", help="username, or cli:<os user>")
    audit.add_argument("--limit", type=int, default=1000)
    return parser


def _local_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=HOSPITAL_ZONE)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    jsonlog.setup()
    try:
        settings = Settings.load()
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
    try:
        for line in result if isinstance(result, Lines) else [] if result is None else [result]:
            print(json.dumps(line, ensure_ascii=False), flush=True)
    except BrokenPipeError:  # `imserver audit | head`: the reader has what it wanted
        sys.stderr.close()


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
    tune_garbage_collector()
    server = ChatServer(settings, store, await open_keys(store))
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
    phone_enc = (await open_keys(store)).cipher.encrypt(args.phone) if args.phone else None
    try:
        user = await accounts.create_user(
            store, args.username, args.display_name or args.username, Role(args.role),
            await auth.hash_password(password), title=args.title, phone_enc=phone_enc,
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


def _operator() -> str:
    """Who runs an operator command, for the audit log."""
    return f"cli:{getpass.getuser()}"


async def _audited(
    store: Store, action: str, txn: Callable[[asyncpg.Connection], Awaitable[Any]], *,
    target_id: int | None = None, conv_id: int | None = None, detail: dict[str, Any] | None = None,
) -> Any:
    async def run(conn: asyncpg.Connection) -> Any:
        result = await txn(conn)
        await moderation.audit_txn(conn, actor_id=None, actor=_operator(), action=action, target_id=target_id,
                                   conv_id=conv_id, detail=detail, remote="cli")
        return result
    return await store.run(action, run)


async def _group(store: Store, group_id: int) -> Roster:
    roster = await conversations.roster(store, group_id)
    if roster is None or roster.kind != "group":
        raise CliError(f"no group {group_id}")
    return roster


async def _group_switch(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    roster = await _group(store, args.group_id)
    if args.action == "mute":
        changes = {"muted": args.state == "on"}
    elif args.action == "set":
        changes = {args.setting: args.state == "on"}
    else:
        changes = {"banned": args.action == "ban"}
    action = "group_set" if args.action in ("mute", "set") else f"group_{args.action}"

    async def txn(conn: asyncpg.Connection) -> None:
        await conversations.update_group_txn(conn, roster.conv_id, changes)
    await _audited(store, action, txn, conv_id=roster.conv_id, detail=changes)
    return {"conv": roster.address, **changes}


async def _group_isolate(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    roster = await _group(store, args.group_id)
    user_id = await _username(store, args.username)
    if user_id not in roster.members:
        raise CliError(f"{args.username} is not a member of group {args.group_id}")
    on = args.action == "isolate"
    if on and roster.members[user_id] in visibility.MANAGERS:  # lifting stays possible after a promotion
        raise CliError("owners and admins cannot be isolated")

    async def txn(conn: asyncpg.Connection) -> None:
        await conversations.isolate_txn(conn, roster.conv_id, user_id, on)
    await _audited(store, args.action, txn, target_id=user_id, conv_id=roster.conv_id)
    return {"conv": roster.address, "user": args.username, "isolated": on}


async def _user_ban(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    user_id = await _username(store, args.username)
    banned = args.action == "ban"

    async def txn(conn: asyncpg.Connection) -> None:
        await ban_txn(conn, user_id, banned)
    await _audited(store, f"user_{args.action}", txn, target_id=user_id)
    return {"user": args.username, "banned": banned}


async def _family_link(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    patient = await accounts.user_by_name(store, args.patient)
    family = await accounts.user_by_name(store, args.family)
    if patient is None or patient.role is not Role.PATIENT:
        raise CliError(f"no patient {args.patient}")
    if family is None or family.role is not Role.FAMILY:
        raise CliError(f"no family account {args.family}")

    async def txn(conn: asyncpg.Connection) -> None:
        await link_family_txn(conn, patient.id, family.id, args.relation)
    await _audited(store, "family_link", txn, target_id=patient.id,
                   detail={"family": family.username, "relation": args.relation})
    return {"patient": patient.username, "family": family.username, "relation": args.relation}


async def _words(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "list":
        return Lines({"word": w, "policy": p} for w, p in await moderation.words(store))
    if not normalise(args.word):
        raise CliError("the word has no letters")
    policy = args.policy if args.action == "add" else None

    async def txn(conn: asyncpg.Connection) -> bool:
        return await moderation.set_word_txn(conn, args.word, policy, None)
    if not await _audited(store, "words_set" if policy else "words_remove", txn,
                          detail={"word": args.word, "policy": policy}):
        raise CliError(f"no word {args.word}")
    return {"word": args.word, "policy": policy}


async def _kind(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "list":
        return Lines(await kinds.definitions(store))
    try:
        text = sys.stdin.read() if args.file == "-" else await trio.Path(args.file).read_text("utf-8")
        definition = msgspec.to_builtins(parse_definition(json.loads(text)))
    except (OSError, ValueError, ProtocolError) as exc:
        raise CliError(f"{args.file}: {getattr(exc, 'field', None) or ''} {exc}".strip()) from None

    async def txn(conn: asyncpg.Connection) -> None:
        await kinds.define_txn(conn, definition, None)
    await _audited(store, "kind_define", txn, detail={"kind": definition["name"]})
    return {"kind": definition["name"]}


async def _team(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "list":
        found = await quickreplies.teams(store, None)
        users = {u.id: u.username for u in await accounts.users_by_id(store, [i for _, ids in found for i in ids])}
        return Lines({"team": name, "members": [users[i] for i in ids]} for name, ids in found)
    if args.action == "create":
        async def create(conn: asyncpg.Connection) -> None:
            if await quickreplies.create_team_txn(conn, args.name) is None:
                raise CliError(f"team {args.name} exists")
        await _audited(store, "team_create", create, detail={"team": args.name})
        return {"team": args.name}
    user = await accounts.user_by_name(store, args.username)
    if user is None or user.role not in (Role.STAFF, Role.ADMIN):
        raise CliError(f"no staff account {args.username}")

    async def change(conn: asyncpg.Connection) -> None:
        team_id = await quickreplies.team_id_txn(conn, args.name)
        if team_id is None:
            raise CliError(f"no team {args.name}")
        if not await quickreplies.set_team_member_txn(conn, team_id, user.id, args.action == "add") \
                and args.action == "remove":
            raise CliError(f"{args.username} is not in team {args.name}")
    await _audited(store, f"team_{args.action}", change, target_id=user.id, detail={"team": args.name})
    return {"team": args.name, "user": args.username}


async def _audit(store: Store, settings: Settings, args: argparse.Namespace) -> Any:
    return Lines(await moderation.audit_entries(store, since=args.since, actor=args.actor, limit=args.limit))


_COMMANDS: dict[tuple[str, str | None], Callable[..., Awaitable[Any]]] = {
    ("migrate", None): _migrate,
    ("run", None): _run,
    ("user", "add"): _user_add,
    ("user", "ban"): _user_ban,
    ("user", "unban"): _user_ban,
    ("group", "create"): _group_create,
    ("group", "add"): _group_add,
    ("group", "mute"): _group_switch,
    ("group", "set"): _group_switch,
    ("group", "ban"): _group_switch,
    ("group", "unban"): _group_switch,
    ("group", "isolate"): _group_isolate,
    ("group", "unisolate"): _group_isolate,
    ("family", "link"): _family_link,
    ("words", "add"): _words,
    ("words", "remove"): _words,
    ("words", "list"): _words,
    ("kind", "define"): _kind,
    ("kind", "list"): _kind,
    ("team", "create"): _team,
    ("team", "add"): _team,
    ("team", "remove"): _team,
    ("team", "list"): _team,
    ("audit", None): _audit,
}
