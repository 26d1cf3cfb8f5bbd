"""Run one bot: log in through the SDK, follow its conversations, dispatch, reconnect forever.

Positions. The runner remembers, per conversation, the last message it has *handled* (not
merely received), and hands them to each new connection, so a message whose handling was
cut off by a lost connection is handled again; its replies keep their client message ids and
the server does not store them twice (bots.framework.bot.Context). With a ``BotState`` the
positions are kept in the bot's own schema after each message, so a restarted bot answers
what was said while it was down; without one they live in memory, and a fresh start begins
at the end of every conversation. Conversations joined while down start at their end.

Concurrency: ``run_bot`` is one task; the SDK client and its reader live in a nursery inside
it (``open_client``), so cancelling ``run_bot`` closes everything.
"""

from __future__ import annotations

import logging

import trio

from bots.framework.bot import CONNECTION_ERRORS, Bot, Context, dispatch
from bots.framework.state import BotState
from clients.python import Client, ClientError, open_client
from integrations.http import Backoff

log = logging.getLogger("bots")

RECONNECT = Backoff()
"""Delays between reconnection attempts (SPEC.md §7.4, close code 1006)."""


async def current_positions(client: Client) -> dict[str, int]:
    """The last seq of every conversation the user is in now (SPEC.md §5.5): where a fresh bot starts."""
    answer = await client.request("convs")
    return {conv["conv"]: conv["last_seq"] for conv in answer["convs"]}


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


async def run_bot(
    bot: Bot, url: str, *, username: str | None = None, password: str | None = None, token: str | None = None,
    backoff: Backoff = RECONNECT, state: BotState | None = None,
    task_status: trio.TaskStatus[Client] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``bot`` until cancelled; ``task_status.started`` gets the first logged-in client.

    Logs in with ``username`` and ``password`` or with ``token``; after a password login it keeps
    the session's token for reconnections and falls back to the password if the token is refused.

    Error handling: a lost connection, or a server that is down, is retried with ``backoff``
    without end. A refused login (``auth_failed``, a banned account, a refused token and no
    password) raises ClientError: retrying would not help.
    """
    positions: dict[str, int] | None = None
    saved: set[str] = set()
    started = False
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
                client.positions = (await current_positions(client)) | done if started else dict(done)
                me = client.welcome["user"]["id"]
                log.info("bot online", extra={"bot": bot.name, "convs": len(positions)})
                if not started:
                    started = True
                    task_status.started(client)
                attempt = 0
                async for message in client.messages(new_from_end=True):
                    if state is not None and message.conv not in saved:
                        # A conversation new since start: record where it began before handling anything
                        # in it, so a stop mid-handling resumes here rather than at its end.
                        await _save(state, {message.conv: message.seq - 1})
                        saved.add(message.conv)
                    if message.sender.id != me:
                        await dispatch(bot, Context(client, bot, message))
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
