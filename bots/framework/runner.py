"""Run one bot: log in through the SDK, follow its conversations, dispatch, reconnect forever.

Positions. The runner remembers, per conversation, the last message it has *handled* (not
merely received), and hands them to each new connection, so a message whose handling was
cut off by a lost connection is handled again; its replies keep their client message ids and
the server does not store them twice (bots.framework.bot.Context). With a ``BotState`` the
positions are kept in the bot's own schema after each message, so a restarted bot answers
what was said while it was down; without one they live in memory, and a fresh start begins
at the end of every conversation. Conversations joined while down start at their end.

Jobs and the outbox. Given an ``Outbox`` (which needs the bot's database), the runner runs the
bot's durable jobs beside its messages from the first login on: the outbox's steps and the
bot's own kinds (``Bot.jobs``), and the bot's ``serve`` beside them. The outbox sends app notices
through the current connection.

Concurrency: ``run_bot`` is one task; the SDK client and its reader live in a nursery inside
it (``open_client``), and the jobs runner in a nursery of its own, so cancelling ``run_bot``
closes everything.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from functools import partial

import trio

from bots.framework.bot import Bot, Context, dispatch
from bots.framework.connection import CONNECTION_ERRORS
from bots.framework.jobs import Handler
from bots.framework.outbox import Outbox
from bots.framework.state import BotState
from clients.python import Client, ClientError, open_client
from integrations.http import Backoff
from protocol.frames import Convs

log = logging.getLogger("bots")

RECONNECT = Backoff()
"""Delays between reconnection attempts (SPEC.md §7.4, close code 1006)."""


async def current_positions(client: Client) -> dict[str, int]:
    """The last seq of every conversation the user is in now (SPEC.md §5.5): where a fresh bot starts."""
    answer = await client.whole(Convs())
    return {conv.conv: conv.last_seq for conv in answer.convs}


async def _starting_positions(client: Client, state: BotState | None) -> dict[str, int]:
    """Where a starting bot picks up: its saved positions; the end of conversations it has none for."""
    current = await current_positions(client)
    if state is None:
        return current
    saved = await state.positions()
    positions = current | {conv: seq for conv, seq in saved.items() if conv in current}
    await state.save(positions)
    return positions


async def _save(state: BotState, positions: dict[str, int]) -> None:
    """Record positions even if the bot is being stopped: a lost save would skip messages on restart."""
    with trio.CancelScope(shield=True), trio.move_on_after(SAVE_TIMEOUT):
        await state.save(positions)


LOGIN_REFUSED = frozenset({"auth_failed", "token_invalid", "account_banned"})
"""Errors retrying cannot cure; any other refusal (``internal``, ``unavailable``…) is retried with backoff."""

SAVE_TIMEOUT = 5.0
"""Seconds a shielded save may hold up a stopping bot."""


def job_handlers(bot: Bot, outbox: Outbox) -> dict[str, Handler]:
    """Every job kind a bot's runner runs: the outbox's and the bot's own."""
    return {**outbox.handlers(), **bot.jobs(outbox)}


async def run_bot(
    bot: Bot, url: str, *, username: str | None = None, password: str | None = None, token: str | None = None,
    backoff: Backoff = RECONNECT, state: BotState | None = None, outbox: Outbox | None = None,
    task_status: trio.TaskStatus[Client] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``bot`` until cancelled; ``task_status.started`` gets the first logged-in client.

    Logs in with ``username`` and ``password`` or with ``token``; after a password login it keeps
    the session's token for reconnections and falls back to the password if the token is refused.
    With an ``outbox`` (module docstring) it also runs the bot's jobs; ``state`` is then the outbox's.

    Error handling: a lost connection, or a server that is down, is retried with ``backoff``
    without end. A refused login (``auth_failed``, a banned account, a refused token and no
    password) raises ClientError: retrying would not help.
    """
    if outbox is not None:
        state = outbox.state
    async with trio.open_nursery() as jobs:
        async def started(client: Client) -> None:
            if outbox is not None:
                jobs.start_soon(bot.serve, outbox)
                jobs.start_soon(partial(outbox.state.jobs.run, job_handlers(bot, outbox)))
            task_status.started(client)
        await _follow(bot, url, username, password, token, backoff, state, outbox, started)
        jobs.cancel_scope.cancel()


async def _follow(
    bot: Bot, url: str, username: str | None, password: str | None, token: str | None, backoff: Backoff,
    state: BotState | None, outbox: Outbox | None, started: Callable[[Client], Awaitable[None]],
) -> None:
    """Log in, follow the bot's conversations and dispatch, reconnecting for ever (``run_bot``)."""
    positions: dict[str, int] | None = None
    saved: set[str] = set()
    first = True
    attempt = 0
    while True:
        try:
            async with open_client(
                url, username=username, password=password, token=token, device=f"imbot-{bot.name}"
            ) as client:
                token = client.token
                if positions is None:
                    positions = await _starting_positions(client, state)
                    saved = set(positions)
                done = positions
                # Conversations joined while disconnected start at their end, like those joined while running.
                client.positions = dict(done) if first else (await current_positions(client)) | done
                me = client.welcome.user.id
                log.info("bot online", extra={"bot": bot.name, "convs": len(positions)})
                with outbox.connected(client) if outbox is not None else nullcontext():
                    if first:
                        first = False
                        await started(client)
                    attempt = 0
                    async for message in client.messages(new_from_end=True):
                        if state is not None and message.conv not in saved:
                            # A conversation new since start: record where it began before handling anything
                            # in it, so a stop mid-handling resumes here rather than at its end.
                            await _save(state, {message.conv: message.seq - 1})
                            saved.add(message.conv)
                        if message.sender.id != me:
                            await dispatch(bot, Context(client, bot, message, outbox))
                        done[message.conv] = message.seq
                        if state is not None:  # after the replies: a stop in between re-handles, replies dedupe
                            await _save(state, {message.conv: message.seq})
        except ClientError as exc:
            if exc.code == "token_invalid" and password is not None and token is not None:
                log.warning("token refused, logging in with the password", extra={"bot": bot.name})
                token = None
                continue
            if exc.code in LOGIN_REFUSED:
                raise
            log.warning("request refused, retrying", extra={"bot": bot.name, "error": exc.code})
        except CONNECTION_ERRORS as exc:
            log.warning("connection lost, reconnecting", extra={"bot": bot.name, "error": repr(exc)})
        await trio.sleep(backoff.delay(attempt))
        attempt += 1
