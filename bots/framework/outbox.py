"""The notification outbox: one way for a bot to reach a person, over the app and outside channels
(DESIGN rule 8; FEE-3, TRT-2, SVC-2).

Theory of operation. ``notify(key, to, note, policy)`` stores the notification and schedules one
durable job per step of its escalation policy (bots.framework.escalation), due at the notify
time plus the step's ``after``, all in one transaction: notifying the same key again changes
nothing. When a step's job runs (kind ``outbox.step``, key ``outbox:<key>:<step>``):

1. a settled notification sends nothing;
2. if an earlier step left a notice in the app, the server is asked (``receipt``, SPEC.md §5.4.1)
   whether the person has read it; if so the read is recorded, the notification is settled with
   reason ``read``, the later steps are cancelled, and nothing is sent;
3. otherwise the step's channel is used with a key derived from the bot, the notification key
   and the step: the app notice's client message id (the server keeps one copy, SPEC.md §5.1)
   and the outside system's Idempotency-Key. A step run again (a retry, a runner that died after
   sending, a second instance) therefore never reaches the person twice. The attempt is recorded
   ``sent``; for systems with delivery reports (SMS, phone) an ``outbox.report`` job asks later
   and records ``delivered`` or ``failed``.

A step that fails for good (the system refuses, the person has no phone number, the channel is
not configured) is recorded ``failed`` and the escalation goes on with its next step. A step that
fails for now (the bot is offline, the gateway is down, the circuit is open) is recorded
``failed`` too, and its job is retried with backoff. ``settle(key, reason)`` is how a bot says the
person acted (paid the fee, came to the clinic): no later step runs.

One race remains by design: a step that has checked "not settled" and is sending while the bot
settles still sends (no transaction can span an outside call). ``history(key)`` shows what happened.

Time: steps are due by the bot's clock (``BotState.clock``), or by the ``now`` given to ``notify``,
``settle`` and the job runner (``Jobs.run_due``), so tests and ``imbot run-due --now`` drive days in
seconds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from bots.framework import texts
from bots.framework.channels import Channel, Note, Recipient, Undeliverable
from bots.framework.connection import CONNECTION_ERRORS
from bots.framework.escalation import APP_ONLY, Policy
from bots.framework.jobs import Handler, Job
from bots.framework.state import BotState
from clients.python import Client, ClientError
from integrations.http import Refused, Unavailable
from protocol.frames import Receipt

log = logging.getLogger("bots.outbox")

STEP = "outbox.step"
REPORT = "outbox.report"
STEP_ATTEMPTS = 8
"""Tries of one step when it fails for now: with the jobs' 30 s backoff, about two hours."""
TRANSIENT_CODES = frozenset({"rate_limited", "unavailable", "internal", "shutdown"})
"""Server refusals of the app notice that may pass (SPEC.md §7); the others are final."""


class Offline(Exception):
    """The bot has no connection to the server just now: the step is tried again later."""


class Pending(Exception):
    """The outside system has no final word on delivery yet: the report is asked again later."""


@dataclass(frozen=True)
class Attempt:
    step: int
    channel: str
    status: str
    """``sent``, ``delivered``, ``read`` or ``failed``."""
    at: datetime
    detail: str | None
    ref: str | None
    """Where it went: the app conversation, or the outside system's id."""
    seq: int | None
    """The app notice's seq in that conversation."""


@dataclass(frozen=True)
class History:
    """A notification and every attempt to deliver it, oldest first."""

    key: str
    recipient: Recipient
    note: Note
    policy: Policy
    priority: int
    created_at: datetime
    settled_at: datetime | None
    settled: str | None
    """Why it stopped: ``read``, or the reason the bot gave ``settle``."""
    steps: list[str]
    """The state of each step's job (``requested``, ``completed``, ``cancelled``, ``failed``…)."""
    attempts: list[Attempt]


@dataclass(frozen=True)
class _Row:
    id: int
    key: str
    recipient: Recipient
    note: Note
    policy: Policy
    priority: int
    settled_at: datetime | None


class Outbox:
    """The outbox of one bot, in its own schema. ``client`` is the bot's connection, set by the runner."""

    def __init__(
        self, state: BotState, channels: Mapping[str, Channel] | None = None, *,
        report_after: timedelta = timedelta(minutes=1),
    ) -> None:
        self.state = state
        self.channels = dict(channels or {})
        self.report_after = report_after
        self.client: Client | None = None
        self._s = state.schema

    @contextmanager
    def connected(self, client: Client) -> Iterator[None]:
        """Send app notices through ``client`` while the block runs (the runner's connection)."""
        self.client = client
        try:
            yield
        finally:
            if self.client is client:
                self.client = None

    def handlers(self) -> dict[str, Handler]:
        """The outbox's job kinds, for ``Jobs.run`` / ``Jobs.run_due``."""
        return {STEP: self._step, REPORT: self._report}

    # -- the API --------------------------------------------------------------------------------

    async def notify(
        self, key: str, to: Recipient, note: Note, *, policy: Policy = APP_ONLY, priority: int = 0,
        now: datetime | None = None,
    ) -> bool:
        """Notify ``to`` of ``note`` by ``policy``; True if new, False if ``key`` was notified before (nothing changes).

        Error handling: ValueError for a key, title or text the app could not carry (checked now,
        not when the step runs).
        """
        _check(key, to, note)

        async def txn(conn: asyncpg.Connection) -> bool:
            created = await conn.fetchval(
                f"insert into {self._s}.outbox (key, recipient, title, content, link, policy, priority, created_at)"
                " values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (key) do nothing returning created_at",
                key, _recipient_data(to), note.title, note.content, note.link, policy.to_data(), priority,
                self.state.clock() if now is None else now,
            )
            if created is None:
                return False
            for i, step in enumerate(policy.steps):
                await self.state.jobs.schedule_txn(
                    conn, _step_key(key, i), STEP, created + step.after, {"key": key, "step": i},
                    max_attempts=STEP_ATTEMPTS, priority=priority,
                )
            return True
        return await self.state.store.run("outbox_notify", txn)

    async def settle(self, key: str, reason: str, *, now: datetime | None = None) -> bool:
        """The person acted (``reason``: "paid", "came to the clinic"…): no further step; True if it was open."""
        async def txn(conn: asyncpg.Connection) -> bool:
            return await self._settle_txn(conn, key, reason, now, after_step=-1)
        return await self.state.store.run("outbox_settle", txn)

    async def history(self, key: str) -> History | None:
        """The notification ``key`` and every attempt, or None if there is none."""
        async def txn(conn: asyncpg.Connection) -> History | None:
            row = await conn.fetchrow(f"select * from {self._s}.outbox where key = $1", key)
            if row is None:
                return None
            attempts = await conn.fetch(
                f"select * from {self._s}.outbox_attempts where outbox_id = $1 order by id", row["id"],
            )
            found = _row(row)
            steps = [_step_key(key, i) for i in range(len(found.policy.steps))]
            jobs = {r["key"]: r["state"] for r in await conn.fetch(
                f"select key, state from {self._s}.jobs where key = any($1::text[])", steps,
            )}
            return History(
                key, found.recipient, found.note, found.policy, found.priority, row["created_at"], found.settled_at,
                row["settled"], [jobs.get(step, "") for step in steps],
                [Attempt(a["step"], a["channel"], a["status"], a["at"], a["detail"], a["ref"], a["seq"])
                 for a in attempts],
            )
        return await self.state.store.run("outbox_history", txn, transaction=False)

    # -- steps ----------------------------------------------------------------------------------

    async def _step(self, job: Job) -> None:
        row = await self._row(job.payload["key"])
        index: int = job.payload["step"]
        if row is None or row.settled_at is not None:
            return
        if await self._read_meanwhile(row, index, job.now):
            return
        channel = row.policy.steps[index].channel
        try:
            ref, seq = await self._send(row, index, channel)
        except (Undeliverable, Refused, _Final) as exc:
            await self._record(row.id, index, channel, "failed", job.now, detail=str(exc))
            return
        except (Offline, Unavailable, _Transient, *CONNECTION_ERRORS) as exc:
            await self._record(row.id, index, channel, "failed", job.now, detail=f"{exc} (will retry)")
            raise
        reports = channel in self.channels and self.channels[channel].reports
        report_due = job.now + self.report_after if reports else None
        await self._sent(row, index, channel, ref, seq, job.now, report_due)

    async def _send(self, row: _Row, index: int, channel: str) -> tuple[str, int | None]:
        key = delivery_key(self._s, row.key, index)
        if channel == "app":
            return await self._send_app(row, key)
        outside = self.channels.get(channel)
        if outside is None:
            raise Undeliverable(f"the {channel} channel is not configured (bots/README.md)")
        return await outside.send(row.recipient, row.note, key), None

    async def _send_app(self, row: _Row, cid: str) -> tuple[str, int]:
        """The notice in the person's service conversation; its cid makes a repeat the same message."""
        body: dict[str, Any] = {"title": row.note.title, "content": row.note.content}
        if row.note.link:
            body["action"] = {"label": texts.OUTBOX_LINK, "target": row.note.link}
        try:
            answer = await self._client().send(f"u:{row.recipient.username}", kind="notice", body=body, cid=cid,
                                               retries=0)
        except ClientError as exc:
            raise _refusal(exc, "the notice") from exc
        return answer.conv, answer.seq

    async def _read_meanwhile(self, row: _Row, index: int, now: datetime) -> bool:
        """Has the person read an app notice an earlier step sent? If so, record it and settle (steps after
        ``index`` are cancelled)."""
        notice = await self._app_notice(row.id, index)
        if notice is None:
            return False
        step, conv, seq = notice
        try:
            receipt = await self._client().request(Receipt(conv=conv))
        except ClientError as exc:
            raise _refusal(exc, "receipt") from exc
        if receipt.peer_read_seq < seq:
            return False

        async def txn(conn: asyncpg.Connection) -> None:
            await self._record_txn(conn, row.id, step, "app", "read", now, ref=conv, seq=seq)
            await self._settle_txn(conn, row.key, "read", now, after_step=index)
        await self.state.store.run("outbox_read", txn)
        log.info("notification read", extra={"key": row.key, "before_step": index})
        return True

    def _client(self) -> Client:
        if self.client is None:
            raise Offline("the bot is not connected to the server")
        return self.client

    async def _report(self, job: Job) -> None:
        row = await self._row(job.payload["key"])
        index: int = job.payload["step"]
        assert row is not None
        channel = row.policy.steps[index].channel
        report = await self.channels[channel].report(job.payload["ref"])
        if report.outcome == "pending":
            raise Pending(f"{channel} reports {report.detail!r} so far")
        status = "delivered" if report.outcome == "delivered" else "failed"
        await self._record(row.id, index, channel, status, job.now, detail=report.detail, ref=job.payload["ref"])

    # -- SQL ------------------------------------------------------------------------------------

    async def _row(self, key: str) -> _Row | None:
        async def txn(conn: asyncpg.Connection) -> _Row | None:
            row = await conn.fetchrow(f"select * from {self._s}.outbox where key = $1", key)
            return _row(row) if row is not None else None
        return await self.state.store.run("outbox_row", txn, transaction=False)

    async def _app_notice(self, outbox_id: int, before: int) -> tuple[int, str, int] | None:
        """The latest app notice sent by a step before ``before``: its step, conversation and seq."""
        async def txn(conn: asyncpg.Connection) -> tuple[int, str, int] | None:
            row = await conn.fetchrow(
                f"select step, ref, seq from {self._s}.outbox_attempts where outbox_id = $1 and channel = 'app'"
                " and status = 'sent' and step < $2 order by step desc limit 1",
                outbox_id, before,
            )
            return (row["step"], row["ref"], row["seq"]) if row is not None else None
        return await self.state.store.run("outbox_app_notice", txn, transaction=False)

    async def _record(self, outbox_id: int, step: int, channel: str, status: str, at: datetime, **more: Any) -> None:
        async def txn(conn: asyncpg.Connection) -> None:
            await self._record_txn(conn, outbox_id, step, channel, status, at, **more)
        await self.state.store.run("outbox_record", txn)

    async def _record_txn(
        self, conn: asyncpg.Connection, outbox_id: int, step: int, channel: str, status: str, at: datetime, *,
        detail: str | None = None, ref: str | None = None, seq: int | None = None,
    ) -> None:
        """One attempt's outcome; a step is sent, delivered and read once (a repeat records nothing)."""
        await conn.execute(
            f"insert into {self._s}.outbox_attempts (outbox_id, step, channel, status, detail, ref, seq, at)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
            outbox_id, step, channel, status, detail and detail[:2000], ref, seq, at,
        )

    async def _sent(
        self, row: _Row, index: int, channel: str, ref: str, seq: int | None, at: datetime, report_due: datetime | None,
    ) -> None:
        """Record ``sent`` and, for a system with delivery reports, schedule asking for it, in one transaction."""
        async def txn(conn: asyncpg.Connection) -> None:
            await self._record_txn(conn, row.id, index, channel, "sent", at, ref=ref, seq=seq)
            if report_due is not None:
                await self.state.jobs.schedule_txn(
                    conn, f"{_step_key(row.key, index)}:report", REPORT, report_due,
                    {"key": row.key, "step": index, "ref": ref}, priority=row.priority,
                )
        await self.state.store.run("outbox_sent", txn)

    async def _settle_txn(
        self, conn: asyncpg.Connection, key: str, reason: str, now: datetime | None, *, after_step: int,
    ) -> bool:
        """Settle and cancel the steps after ``after_step`` (a running step does not cancel itself)."""
        steps = await conn.fetchval(
            f"update {self._s}.outbox set settled_at = $3, settled = $2"
            " where key = $1 and settled_at is null returning jsonb_array_length(policy)",
            key, reason, self.state.clock() if now is None else now,
        )
        if steps is None:
            return False
        await self.state.jobs.cancel_txn(conn, [_step_key(key, i) for i in range(after_step + 1, steps)])
        return True


class _Final(Exception):
    """The server refused for good (SPEC.md §7): no such person, say."""


class _Transient(Exception):
    """The server refused for now (SPEC.md §7: unavailable, rate_limited…)."""


def _refusal(exc: ClientError, what: str) -> Exception:
    return (_Transient if exc.code in TRANSIENT_CODES else _Final)(f"{what} refused: {exc}")


def delivery_key(schema: str, key: str, step: int) -> str:
    """The idempotency key of one step: the same for every try, different for every bot, notification and step.

    A hash, so it carries nothing personal (SPEC.md §5.1) and fits a client message id (64 chars).
    """
    return "ob-" + hashlib.sha256(f"{schema}\x00{key}\x00{step}".encode()).hexdigest()[:40]


def _step_key(key: str, step: int) -> str:
    return f"outbox:{key}:{step}"


def _recipient_data(to: Recipient) -> dict[str, str]:
    return {k: v for k, v in (("username", to.username), ("phone", to.phone), ("openid", to.openid)) if v}


def _row(row: asyncpg.Record) -> _Row:
    recipient = Recipient(row["recipient"]["username"], row["recipient"].get("phone"), row["recipient"].get("openid"))
    note = Note(row["title"], row["content"], row["link"])
    return _Row(row["id"], row["key"], recipient, note, Policy.parse(row["policy"]), row["priority"], row["settled_at"])


def _check(key: str, to: Recipient, note: Note) -> None:
    """What the app's notice kind would refuse (SPEC.md §6.1), refused when notifying."""
    if not 1 <= len(key) <= 200:
        raise ValueError("the notification key must be 1 to 200 characters")
    if not to.username:
        raise ValueError("the recipient needs a username (the app channel and read detection use it)")
    if not 1 <= len(note.title) <= 200:
        raise ValueError("the title must be 1 to 200 characters")
    if len(note.content) > 4000:
        raise ValueError("the text must be at most 4000 characters")
