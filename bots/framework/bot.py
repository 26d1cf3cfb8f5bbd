"""The ``Bot`` base class and the one rule that decides what a bot does with a message.

A bot is a small declarative class: a ``name`` (its account's username), a ``title`` and a
``description`` in Chinese, the ``commands`` it understands, and an ``on_message`` hook for
everything else. It talks to people only through :class:`Context`, which replies into the
conversation the message came from over the protocol (SPEC.md §5.1).

Who may run commands (the dispatch rule, :func:`dispatch`):

- Only ``text`` messages whose text starts with ``/`` are commands.
- Staff and admin accounts run them.
- Patient and family accounts run only the commands declared for them (``Command.patients``:
  ``/help``, which lists just those, and e.g. the pathway bot's ``/progress``); anything else is
  answered with a polite refusal. Her answers are visible only to her in a group (a
  mention-only message, SPEC.md §5.1 ``only``), so the group is not disturbed and she is not
  left wondering. Staff commands act on the care team's behalf (moving patients, sending
  notices) and must not be reachable, nor even named, for patients.
- Other bots' commands are ignored silently, so two bots can never talk each other into a loop.
- Everything else goes to ``on_message``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from bots.framework import texts
from bots.framework.commands import Args, Call, Command, CommandError, Registry, is_command
from bots.framework.connection import CONNECTION_ERRORS
from clients.python import Client, ClientError
from protocol import Message
from protocol.frames import SendAnswer

if TYPE_CHECKING:
    from bots.framework.jobs import Handler
    from bots.framework.outbox import Outbox

log = logging.getLogger("bots")

STAFF_ROLES = ("staff", "admin")
"""Account roles that may run commands (SPEC.md §1.2)."""


class Context:
    """One message being handled: who sent it, where, and how to answer.

    Replies carry a client message id derived from the message (``re:<conv>:<seq>:<n>``), so a
    message handled again after a lost connection answers with the same ids and the server keeps
    the first reply only (SPEC.md §5.1, idempotency): handling is repeatable, replies are not.
    """

    def __init__(self, client: Client, bot: Bot, message: Message, outbox: Outbox | None = None) -> None:
        self.client = client
        self.bot = bot
        self.message = message
        self._outbox = outbox
        self._replies = 0

    @property
    def outbox(self) -> Outbox:
        """The bot's notification outbox (bots/README.md); it needs the bot's database."""
        if self._outbox is None:
            raise RuntimeError("this bot runs without a database (IMBOT_DATABASE_URL): it has no outbox")
        return self._outbox

    @property
    def has_outbox(self) -> bool:
        return self._outbox is not None

    @property
    def conv(self) -> str:
        return self.message.conv

    @property
    def in_group(self) -> bool:
        return self.message.conv.startswith("g:")

    async def reply(self, text: str, *, privately: bool = False) -> SendAnswer:
        """Answer in the message's conversation; ``privately`` shows it to the sender only (in a group)."""
        self._replies += 1
        cid = f"re:{self.message.conv}:{self.message.seq}:{self._replies}"
        only = self.message.sender.id if privately and self.in_group else None
        return await self.client.send(self.message.conv, text, cid=cid, only=only)


class Bot:
    """Base of every bot. Subclasses set the class attributes and override ``commands``/``on_message``."""

    name: ClassVar[str]
    """The bot account's username, and the name ``imbot run NAME`` knows it by."""
    title: ClassVar[str]
    """What people call it, in Chinese (e.g. 回声机器人)."""
    description: ClassVar[str]
    """One line in Chinese: what it is for."""
    migrations: ClassVar[str | None] = None
    """The package of the bot's own SQL migrations (``bots.<name>.migrations``), applied into its schema."""

    def __init__(self) -> None:
        self.registry = Registry(self.title, self.commands())

    def commands(self) -> list[Command]:
        """The commands this bot understands, each with its handler in ``run``; ``/help`` is built in."""
        return []

    async def on_message(self, ctx: Context, message: Message) -> None:
        """Called for every message that is not a command for this bot (and not the bot's own)."""

    def jobs(self, outbox: Outbox) -> Mapping[str, Handler]:
        """Handlers of the bot's own durable job kinds, run by the runner beside the outbox's."""
        return {}

    async def serve(self, outbox: Outbox) -> None:
        """Work the bot does beside its messages and jobs for as long as it runs with a database: catching up on
        what it stored but did not finish, following an outside system's feed, serving an API. The runner starts
        it once, at the first login, in the nursery its jobs run in; an exception from it stops the bot. The
        default does nothing."""

    async def run_help(self, ctx: Context, args: Args) -> None:
        """``/help``: staff see every command; a patient or family member sees hers only, and only she does."""
        patient = ctx.message.sender.role not in STAFF_ROLES
        await ctx.reply(self.registry.help_text(args.get("命令名"), patients=patient), privately=patient)


async def dispatch(bot: Bot, ctx: Context) -> None:
    """Apply the dispatch rule (module docstring) to one message.

    Error handling: a person's mistake is answered with the CommandError's text; a bug in a
    handler is logged and answered with an apology; a ClientError while answering (the bot was
    removed from the group meanwhile, say) is logged. Connection errors propagate: the runner
    reconnects and the message is handled again (replies stay single, see :class:`Context`).
    """
    message = ctx.message
    if message.kind != "text" or not is_command(message.text):
        await bot.on_message(ctx, message)
        return
    role = message.sender.role
    if role == "bot":
        return
    try:
        if role not in STAFF_ROLES:
            call = _for_patients(bot, message.text)
            if call is None:
                await ctx.reply(texts.STAFF_ONLY, privately=True)
                return
        else:
            try:
                call = bot.registry.resolve(message.text)
            except CommandError as exc:
                await ctx.reply(str(exc))
                return
        run = bot.run_help if call.command is bot.registry.help else call.command.run
        if run is None:
            raise RuntimeError(f"/{call.command.name} has no handler")
        log.info("command", extra={"bot": bot.name, "conv": ctx.conv, "seq": message.seq, "command": call.command.name})
        if ctx.has_outbox and call.command is not bot.registry.help:  # a bot with a database audits (DESIGN rule 7)
            await ctx.outbox.state.audit(message.sender.id, f"/{call.command.name}", actor_name=message.sender.name,
                                         conv=ctx.conv, detail={"seq": message.seq, "args": dict(call.args)})
        try:
            await run(ctx, call.args)
        except CommandError as exc:  # a handler may refuse with the same kind of answer (hers to her alone)
            await ctx.reply(str(exc), privately=role not in STAFF_ROLES)
    except CONNECTION_ERRORS:
        raise
    except ClientError:
        log.exception("reply refused", extra={"bot": bot.name, "conv": ctx.conv, "seq": message.seq})
    except Exception:
        log.exception("command failed", extra={"bot": bot.name, "conv": ctx.conv, "seq": message.seq})
        name = message.text[1:].split(maxsplit=1)[0] if message.text[1:].split() else ""
        try:
            await ctx.reply(texts.FAILED.format(name=name))
        except ClientError:
            log.exception("apology refused", extra={"bot": bot.name, "conv": ctx.conv})


def _for_patients(bot: Bot, text: str) -> Call | None:
    """A command a patient or family member may run, parsed; None for anything else (not even its errors:
    they would tell her about staff commands)."""
    try:
        call = bot.registry.resolve(text)
    except CommandError:
        return None
    return call if call.command.patients else None
