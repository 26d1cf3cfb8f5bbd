"""Run one bot: log in through the SDK, follow its conversations, dispatch, reconnect forever.

Positions. The runner remembers, per conversation, the last message it has *handled* (not
merely received), and hands them to each new connection, so a message whose handling was
cut off by a lost connection is handled again; its replies keep their client message ids and
the server does not store them twice (bots.framework.bot.Context). For now the positions live
in memory only: on a fresh start the bot begins at the end of every conversation it is in
(it does not answer what was said while it was stopped, and never answers anything twice).
Keeping them in the bot's own Postgres schema, so a restart resumes where it stopped, comes
with the jobs slice of issue 5.

Concurrency: ``run_bot`` is one task; the SDK client and its reader live in a nursery inside
it (``open_client``), so cancelling ``run_bot`` closes everything.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import trio

from bots.framework.bot import CONNECTION_ERRORS, Bot, Context, dispatch
from clients.python import Client, ClientError, open_client

log = logging.getLogger("bots")


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: growing, capped, jittered (SPEC.md §7.4, close code 1006)."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        base = min(self.first * self.factor**attempt, self.cap)
        return base * (1 + self.jitter * (2 * random.random() - 1))


async def current_positions(client: Client) -> dict[str, int]:
    """The last seq of every conversation the user is in now (SPEC.md §5.5): where a fresh bot starts."""
    answer = await client.request("convs")
    return {conv["conv"]: conv["last_seq"] for conv in answer["convs"]}


async def run_bot(
    bot: Bot, url: str, *, username: str | None = None, password: str | None = None, token: str | None = None,
    backoff: Backoff = Backoff(), task_status: trio.TaskStatus[Client] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``bot`` until cancelled; ``task_status.started`` gets the first logged-in client.

    Logs in with ``username`` and ``password`` or with ``token``; after a password login it keeps
    the session's token for reconnections and falls back to the password if the token is refused.

    Error handling: a lost connection, or a server that is down, is retried with ``backoff``
    without end. A refused login (``auth_failed``, a banned account, a refused token and no
    password) raises ClientError: retrying would not help.
    """
    positions: dict[str, int] | None = None
    started = False
    attempt = 0
    while True:
        try:
            async with open_client(
                url, username=username, password=password, token=token, device=f"imbot-{bot.name}"
            ) as client:
                token = client.token
                if positions is None:
                    positions = await current_positions(client)
                done = positions
                client.positions = dict(done)
                me = client.welcome["user"]["id"]
                log.info("bot online", extra={"bot": bot.name, "convs": len(positions)})
                if not started:
                    started = True
                    task_status.started(client)
                attempt = 0
                async for message in client.messages():
                    if message.sender.id != me:
                        await dispatch(bot, Context(client, bot, message))
                    done[message.conv] = message.seq
        except ClientError as exc:
            if exc.code == "token_invalid" and password is not None and token is not None:
                log.warning("token refused, logging in with the password", extra={"bot": bot.name})
                token = None
                continue
            raise
        except CONNECTION_ERRORS as exc:
            log.warning("connection lost, reconnecting", extra={"bot": bot.name, "error": repr(exc)})
        await trio.sleep(backoff.delay(attempt))
        attempt += 1
