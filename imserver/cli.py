"""The ``imserver`` command line: run the server, migrate, and operator commands.

Operator commands are the server's actions (``imserver.actions``) run by the operator
against ``DATABASE_URL``: checked, audited as ``cli:<os user>`` and announced on the event
bus exactly as when staff make the change, so a running server picks them up.
Results are printed as JSON; errors go to stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import trio

import jsonlog
from imserver.actions.accounts import do_ban_user, do_create_user, do_link_family, do_set_role
from imserver.actions.base import Actor, Context
from imserver.actions.conversations import (
    do_add_member,
    do_ban_group,
    do_create_group,
    do_isolate,
    do_set_group,
)
from imserver.actions.kinds import do_define_kind
from imserver.actions.teams import do_create_team, do_set_team_member
from imserver.actions.words import do_set_word
from imserver.config import Settings
from imserver.model import MemberRole, Role, Roster, User
from imserver.server import ChatServer, open_keys, tune_garbage_collector
from imserver.store import accounts, conversations, kinds, moderation, quickreplies
from imserver.store.migrate import migrate, pending
from imserver.words import Policy
from pgtrio.bridge import Store, open_store
from protocol import ProtocolError
from protocol.clock import HOSPITAL_ZONE


class CliError(Exception):
    """A problem the operator can fix; printed without a traceback."""


class Lines(list[Any]):
    """A result printed as JSON lines, one item a line."""


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
    role = user.add_parser("role", help="change an account's role; its sessions end")
    role.add_argument("username")
    role.add_argument("--role", required=True, choices=[str(r) for r in Role])

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
    except ProtocolError as exc:  # an action's refusal
        print(f"imserver: {exc.detail or exc.message}", file=sys.stderr)
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
            return await command(Context(store), settings, args)
    except BaseExceptionGroup as group:  # open_store's nurseries wrap what the command raised
        raise _sole(group) from None


def _sole(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _migrate(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    return {"applied": await migrate(ctx.store)}


async def _run(ctx: Context, settings: Settings, args: argparse.Namespace) -> None:
    overrides = {k: v for k, v in (("listen", args.listen), ("http_listen", args.http_listen)) if v}
    await serve_until_signal(ctx.store, dataclasses.replace(settings, **overrides))


async def serve_until_signal(
    store: Store, settings: Settings, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    if await pending(store):
        raise CliError("the database schema is not current: run `imserver migrate` first")
    tune_garbage_collector()
    server = ChatServer(settings, store, await open_keys(store))
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(server.serve)
            task_status.started(addresses)
            async for _ in signals:
                server.shutdown()
                break


async def _user(store: Store, username: str) -> User:
    user = await accounts.user_by_name(store, username)
    if user is None:
        raise CliError(f"no user {username}")
    return user


async def _group(store: Store, group_id: int) -> Roster:
    roster = await conversations.roster(store, group_id)
    if roster is None or roster.kind != "group":
        raise CliError(f"no group {group_id}")
    return roster


async def _user_add(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    password = sys.stdin.readline().rstrip("\r\n")
    user = await do_create_user(ctx, Actor.operator(), args.username, args.display_name or args.username,
                                Role(args.role), password, title=args.title, phone=args.phone)
    return {"id": user.id}


async def _user_ban(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    user = await _user(ctx.store, args.username)
    await do_ban_user(ctx, Actor.operator(), user.id, args.action == "ban")
    return {"user": args.username, "banned": args.action == "ban"}


async def _user_role(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    user = await _user(ctx.store, args.username)
    await do_set_role(ctx, Actor.operator(), user, Role(args.role))
    return {"user": args.username, "role": args.role}


async def _group_create(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    owner = await _user(ctx.store, args.owner)
    return {"id": await do_create_group(ctx, Actor.operator(), args.name, owner.id, [])}


async def _group_add(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    roster = await _group(ctx.store, args.group_id)
    user = await _user(ctx.store, args.username)
    await do_add_member(ctx, Actor.operator(), roster.conv_id, user.id, MemberRole(args.role))
    return {"conv": roster.address, "user": args.username, "role": args.role}


async def _group_set(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    roster = await _group(ctx.store, args.group_id)
    setting = "muted" if args.action == "mute" else args.setting
    changes = await do_set_group(ctx, Actor.operator(), roster.conv_id, **{setting: args.state == "on"})
    return {"conv": roster.address, **changes}


async def _group_ban(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    roster = await _group(ctx.store, args.group_id)
    await do_ban_group(ctx, Actor.operator(), roster.conv_id, args.action == "ban")
    return {"conv": roster.address, "banned": args.action == "ban"}


async def _group_isolate(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    roster = await _group(ctx.store, args.group_id)
    user = await _user(ctx.store, args.username)
    await do_isolate(ctx, Actor.operator(), roster.conv_id, user.id, args.action == "isolate")
    return {"conv": roster.address, "user": args.username, "isolated": args.action == "isolate"}


async def _family_link(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    patient, family = await _user(ctx.store, args.patient), await _user(ctx.store, args.family)
    await do_link_family(ctx, Actor.operator(), patient, family, args.relation)
    return {"patient": patient.username, "family": family.username, "relation": args.relation}


async def _words(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "list":
        return Lines({"word": w, "policy": p} for w, p in await moderation.words(ctx.store))
    policy = Policy(args.policy) if args.action == "add" else None
    await do_set_word(ctx, Actor.operator(), args.word, policy)
    return {"word": args.word, "policy": None if policy is None else str(policy)}


async def _kind(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "list":
        return Lines(await kinds.definitions(ctx.store))
    try:
        text = sys.stdin.read() if args.file == "-" else await trio.Path(args.file).read_text("utf-8")
        raw = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.file}: {exc}") from None
    try:
        definition = await do_define_kind(ctx, Actor.operator(), raw)
    except ProtocolError as exc:  # name the part of the file that is wrong
        raise CliError(f"{args.file}: {exc.field or ''} {exc}".strip()) from None
    return {"kind": definition.name}


async def _team(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "list":
        found = await quickreplies.teams(ctx.store, None)
        users = {u.id: u.username for u in await accounts.users_by_id(ctx.store, [i for _, ids in found for i in ids])}
        return Lines({"team": name, "members": [users[i] for i in ids]} for name, ids in found)
    if args.action == "create":
        await do_create_team(ctx, Actor.operator(), args.name)
        return {"team": args.name}
    user = await _user(ctx.store, args.username)
    await do_set_team_member(ctx, Actor.operator(), args.name, user, args.action == "add")
    return {"team": args.name, "user": args.username}


async def _audit(ctx: Context, settings: Settings, args: argparse.Namespace) -> Any:
    return Lines(await moderation.audit_entries(ctx.store, since=args.since, actor=args.actor, limit=args.limit))


_COMMANDS: dict[tuple[str, str | None], Callable[..., Awaitable[Any]]] = {
    ("migrate", None): _migrate,
    ("run", None): _run,
    ("user", "add"): _user_add,
    ("user", "ban"): _user_ban,
    ("user", "unban"): _user_ban,
    ("user", "role"): _user_role,
    ("group", "create"): _group_create,
    ("group", "add"): _group_add,
    ("group", "mute"): _group_set,
    ("group", "set"): _group_set,
    ("group", "ban"): _group_ban,
    ("group", "unban"): _group_ban,
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
