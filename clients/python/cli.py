"""The ``imclient`` command line: send, read history, listen, upload and fetch files, as one user (protocol v1).

The password comes from IMCLIENT_PASSWORD (never from the command line, where
other users of the machine could read it). Output is JSON, one object per
line; errors go to stderr with the protocol's error code and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
from typing import Any

import msgspec
import trio

from clients.python.client import Client, ClientError, ConnectionLost, ContractError, open_client
from protocol import ErrorCode, ErrorFrame
from protocol.errors import MESSAGES_ZH
from protocol.frames import Convs, History, Member, Members, SendAnswer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imclient", description="Chat from the command line")
    parser.add_argument("--url", required=True, help="ws://HOST:PORT or wss://HOST:PORT")
    parser.add_argument("--user", required=True, help="username (password in IMCLIENT_PASSWORD)")
    parser.add_argument("--device", default="imclient")
    parser.add_argument("--readonly", action="store_true", help="open a read-only session")
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send a text message")
    send.add_argument("conv", help="g:<group id> or u:<username>")
    send.add_argument("text")
    send.add_argument("--client-id", help="client message id; a resend with the same id is not duplicated")
    send.add_argument("--only", metavar="USERNAME", help="mention-only: visible to this member (and the group's "
                      "managers) alone; a member id as `members` shows it (u12, a3) works too")
    members = sub.add_parser("members", help="print the members of a conversation as this user may see them")
    members.add_argument("conv")
    history = sub.add_parser("history", help="print messages, oldest first")
    history.add_argument("conv")
    history.add_argument("--after", type=int, help="only messages after this seq")
    history.add_argument("--limit", type=int, default=50)
    listen = sub.add_parser("listen", help="print live messages of a conversation")
    listen.add_argument("conv")
    listen.add_argument("--count", type=int, help="stop after this many messages")
    listen.add_argument("--timeout", type=float, help="stop after this many seconds")
    upload = sub.add_parser("upload", help="store a file; print the attachment to put in a message body")
    upload.add_argument("file")
    upload.add_argument("--mime", help="the file's type (default: guessed from its name)")
    upload.add_argument("--name", help="the name people see (default: the file's name)")
    fetch = sub.add_parser("fetch", help="download a stored file")
    fetch.add_argument("id", help="the attachment id, att_...")
    fetch.add_argument("--out", metavar="FILE", help="write it here and print what was written (default: stdout)")
    qr = sub.add_parser("qr", help="quick replies (staff)").add_subparsers(dest="qr_command", required=True)
    search = qr.add_parser("search", help="what typing /TEXT offers, best first")
    search.add_argument("text", nargs="?", default="")
    search.add_argument("--limit", type=int, default=10)
    add = qr.add_parser("add", help="save a quick reply: a text template, or --kind and --body")
    add.add_argument("shortcut")
    add.add_argument("title")
    add.add_argument("text", nargs="?", help="e.g. '{{patient}}您好，移植后请平卧半小时'")
    add.add_argument("--kind", default="text")
    add.add_argument("--body", type=json.loads, help="the template body of another kind, as JSON")
    add.add_argument("--scope", choices=["personal", "team", "shared"], default="personal")
    add.add_argument("--team", help="the care team of a team quick reply")
    add.add_argument("--id", type=int, help="change this quick reply instead of adding one")
    use = qr.add_parser("use", help="fill quick replies in for a conversation and send them")
    use.add_argument("ids", type=_ids, help="ID, or ID,ID,... to send several as one")
    use.add_argument("conv")
    use.add_argument("--fill", type=_fill, action="append", default=[], metavar="PROMPT=VALUE")
    use.add_argument("--member", metavar="USERNAME", help="the patient they are for, where the conversation does "
                     "not say (a group); a member id as `members` shows it works too")
    return parser


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("ID or ID,ID,...") from None


def _fill(text: str) -> tuple[str, str]:
    prompt, sep, value = text.partition("=")
    if not sep or not prompt:
        raise argparse.ArgumentTypeError("PROMPT=VALUE")
    return prompt, value


def _json(value: Any) -> str:
    """One line of output: a frame struct or a value, as JSON (a frame's ``op`` and ``rid`` left out)."""
    found = msgspec.to_builtins(value)
    if isinstance(found, dict):
        found = {k: v for k, v in found.items() if k not in ("op", "rid")}
    return json.dumps(found, ensure_ascii=False)


async def _send(client: Client, args: argparse.Namespace) -> None:
    only = await _member_id(client, args.conv, args.only) if args.only else None
    ack = await client.send(args.conv, args.text, cid=args.client_id, only=only)
    print(_sent(ack))


def _sent(ack: SendAnswer) -> str:
    return json.dumps({"conv": ack.conv, "seq": ack.seq, "id": ack.id, "dup": ack.dup})


async def _members_of(client: Client, conv: str) -> list[Member]:
    return (await client.whole(Members(conv=conv))).members


async def _member_id(client: Client, conv: str, name: str) -> str:
    """The id the server shows for a member, found by username (or given as an id already)."""
    members = await _members_of(client, conv)
    for member in members:
        if member.username == name:
            return member.id
    if any(member.id == name for member in members):
        return name
    code = ErrorCode.NOT_FOUND
    raise ClientError(ErrorFrame(code=code, message=MESSAGES_ZH[code], detail=f"no member {name}"))


async def _members(client: Client, args: argparse.Namespace) -> None:
    for member in await _members_of(client, args.conv):
        print(_json(member))


async def _history(client: Client, args: argparse.Namespace) -> None:
    page, _ = await client.history(args.conv, after=args.after, limit=args.limit)
    for message in page:
        print(_json(message))


async def _listen(client: Client, args: argparse.Namespace) -> None:
    conv = args.conv
    if conv.startswith("u:"):  # live messages name the canonical d:<id>
        conv = (await client.request(History(conv=conv, limit=1))).conv
    client.positions = {c.conv: c.last_seq for c in (await client.whole(Convs())).convs}
    seen = 0
    with trio.move_on_after(args.timeout if args.timeout is not None else float("inf")):
        async for message in client.messages(resync=False):
            if message.conv != conv:
                continue
            print(_json(message), flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                return


async def _upload(client: Client, args: argparse.Namespace) -> None:
    path = trio.Path(args.file)
    mime = args.mime or (mimetypes.guess_type(args.file)[0] or "application/octet-stream").lower()
    ref = await client.upload(await path.read_bytes(), mime, args.name if args.name is not None else path.name)
    print(_json(ref))


async def _fetch(client: Client, args: argparse.Namespace) -> None:
    data = await client.download(args.id)
    if args.out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    await trio.Path(args.out).write_bytes(data)
    print(json.dumps({"id": args.id, "out": args.out, "size": len(data)}, ensure_ascii=False))


async def _qr(client: Client, args: argparse.Namespace) -> None:
    if args.qr_command == "search":
        for reply in await client.quick_replies(args.text, limit=args.limit):
            print(_json(reply))
    elif args.qr_command == "add":
        print(_json(await client.save_quick_reply(
            args.shortcut, args.title, args.text, kind=args.kind, body=args.body, scope=args.scope, team=args.team,
            id=args.id,
        )))
    else:
        member = await _member_id(client, args.conv, args.member) if args.member else None
        for ack in await client.send_quick_replies(args.conv, args.ids, member=member, fill=dict(args.fill)):
            print(_sent(ack))


_COMMANDS: dict[str, Any] = {
    "send": _send, "history": _history, "listen": _listen, "members": _members, "upload": _upload, "fetch": _fetch,
    "qr": _qr,
}


async def _main(args: argparse.Namespace) -> None:
    password = os.environ.get("IMCLIENT_PASSWORD")
    if not password:
        raise SystemExit("imclient: set IMCLIENT_PASSWORD")
    async with open_client(
        args.url, username=args.user, password=password, device=args.device, readonly=args.readonly
    ) as client:
        await _COMMANDS[args.command](client, args)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        trio.run(_main, args)
    except ClientError as exc:
        print(json.dumps({"error": exc.code, "message": exc.message, "detail": exc.detail}, ensure_ascii=False),
              file=sys.stderr)
        sys.exit(1)
    except (ConnectionLost, ContractError, OSError) as exc:
        print(json.dumps({"error": "connection", "message": str(exc)}, ensure_ascii=False), file=sys.stderr)
        sys.exit(1)
