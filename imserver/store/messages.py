"""SQL for messages: the batched durable write, history pages and sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from imserver.model import address
from imserver.store.conversations import summaries_txn
from pgtrio.bridge import Store
from protocol.frames import Sender


@dataclass
class Draft:
    """A message accepted from a client, not yet committed."""

    conv_id: int
    sender_id: int
    sender: Sender
    """How the sender is shown in the message (SPEC.md §6)."""
    kind: str
    text: str
    body: dict[str, Any] | None
    cid: str
    audience: str = "all"
    only_user_id: int | None = None
    flagged: tuple[str, ...] = ()
    """Words the filter flagged, for the push to the group's staff; not stored with the message."""
    attachments: tuple[str, ...] = ()
    """The files it carries (MSG-4), recorded with it for the access check of ``fetch``."""
    digest: bytes | None = None
    """What its sender asked for (``request_digest``), to tell a resend from a client id reused (migration 0007)."""


@dataclass(frozen=True)
class Stored:
    """Where a draft ended up; ``dup`` if its client id had been used before."""

    conv_id: int
    seq: int
    id: int
    ts: int
    dup: bool
    sender_hidden: bool = False
    """Whether the sender's isolation hid it when it was stored (IM-12, IM-13), read under the same
    conversation lock that gave it its seq, so live delivery agrees with history."""
    digest: bytes | None = None
    """The digest of the request that stored it (None for messages stored before migration 0007)."""

    def answers(self, draft: Draft) -> bool:
        """Whether this stored message is what ``draft`` asks for: a true resend, not its client id reused for
        another conversation or other content (SPEC.md §5.1, Idempotency)."""
        return self.conv_id == draft.conv_id and (self.digest is None or self.digest == draft.digest)


def millis(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


async def write_batch(db: asyncpg.Connection, drafts: list[Draft]) -> list[Stored]:
    """Store a batch with one call of ``im_write_batch`` (migrations 0003, 0005, 0007); one result per draft, in order.

    Outside a transaction the call commits on its own; inside one it joins it.
    Seqs are handed out by bumping ``conversations.last_seq`` in the same
    statement, so a failed batch leaves no gap. Drafts whose (sender, client id)
    is already stored get the stored result instead. Drafts must have distinct
    (sender, client id) pairs.
    """
    rows = await db.fetch(
        "select * from im_write_batch($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::jsonb[],"
        " $6::text[], $7::text[], $8::bigint[], $9::text[], $10::bytea[])",
        [d.conv_id for d in drafts], [d.sender_id for d in drafts], [d.kind for d in drafts],
        [d.text for d in drafts], [d.body for d in drafts], [d.cid for d in drafts],
        [d.audience for d in drafts], [d.only_user_id for d in drafts],
        [",".join(d.attachments) if d.attachments else None for d in drafts], [d.digest for d in drafts],
    )
    by_index = {
        r["idx"]: Stored(r["conv_id"], r["seq"], r["id"], millis(r["created_at"]), r["dup"], r["sender_hidden"],
                         r["digest"])
        for r in rows
    }
    return [by_index[i] for i in range(1, len(drafts) + 1)]


_ROW_COLUMNS = """
    m.conv_id, m.seq, m.id, m.sender_id, m.kind, m.text, m.body, m.client_id, m.created_at,
    m.audience, m.only_user_id
"""


@dataclass(frozen=True)
class Row:
    """A stored message as the visibility rules and the views need it."""

    conv_id: int
    seq: int
    id: int
    sender_id: int
    kind: str
    text: str
    body: dict[str, Any] | None
    cid: str
    ts: int
    audience: str
    only_user_id: int | None
    sender_hidden: bool | None = None
    """Set for a message just written (see Stored); None for rows read back."""


def _row(r: asyncpg.Record) -> Row:
    return Row(
        r["conv_id"], r["seq"], r["id"], r["sender_id"], r["kind"], r["text"], r["body"], r["client_id"],
        millis(r["created_at"]), r["audience"], r["only_user_id"],
    )


async def history(
    store: Store, conv_id: int, *, before: int | None, after: int | None, limit: int
) -> tuple[list[Row], bool]:
    """One page, oldest first, and whether more lie further in the paging direction (SPEC.md §5.3)."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        if after is not None:
            return await db.fetch(
                f"select {_ROW_COLUMNS} from messages m where m.conv_id = $1 and m.seq > $2 order by m.seq limit $3",
                conv_id, after, limit + 1,
            )
        return await db.fetch(
            f"select {_ROW_COLUMNS} from messages m where m.conv_id = $1 and m.seq < $2 order by m.seq desc limit $3",
            conv_id, before if before is not None else 2**63 - 1, limit + 1,
        )
    rows = await store.run("history", txn, transaction=False)  # in paging direction, one extra row
    more = len(rows) > limit
    page = [_row(r) for r in rows[:limit]]
    if after is None:
        page.reverse()
    return page, more


async def by_client_id(store: Store, sender_id: int, cid: str) -> tuple[str, Stored, str] | None:
    """A message already stored under this client id: its conversation's address, where it is, its audience."""
    async def txn(db: asyncpg.Connection) -> asyncpg.Record | None:
        return await db.fetchrow(
            "select m.conv_id, m.seq, m.id, m.created_at, m.audience, m.request_digest, c.kind from messages m"
            " join conversations c on c.id = m.conv_id where m.sender_id = $1 and m.client_id = $2",
            sender_id, cid,
        )
    row = await store.run("by_client_id", txn, transaction=False)
    if row is None:
        return None
    stored = Stored(row["conv_id"], row["seq"], row["id"], millis(row["created_at"]), True,
                    digest=row["request_digest"])
    return address(row["kind"], row["conv_id"]), stored, row["audience"]


async def carrying(store: Store, attachment_id: str, user_id: int) -> list[Row]:
    """The messages that carry a file, in the conversations the user is a member of (GIN index, migration 0005)."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            f"select {_ROW_COLUMNS} from messages m join members b on b.conv_id = m.conv_id and b.user_id = $2"
            " where m.attachments @> array[$1::text]",
            attachment_id, user_id,
        )
    return [_row(r) for r in await store.run("carrying", txn, transaction=False)]


async def seqs_by_sender(store: Store, conv_id: int, sender_id: int) -> list[int]:
    """Every seq a member sent in a conversation, for retracting them when she is isolated."""
    async def txn(db: asyncpg.Connection) -> list[int]:
        rows = await db.fetch(
            "select seq from messages where conv_id = $1 and sender_id = $2 order by seq", conv_id, sender_id
        )
        return [r["seq"] for r in rows]
    return await store.run("seqs_by_sender", txn, transaction=False)


UNREAD_CAP = 999
"""Unread counts stop here (clients show "99+" long before)."""


async def sync(
    store: Store, user_id: int, after: dict[int, int], limit: int, *, start: int = 0
) -> tuple[list[asyncpg.Record], dict[int, list[Row]], dict[int, list[Row]]]:
    """The user's conversations numbered above ``start``, the messages after the given seqs (at most ``limit`` + 1
    each), and the messages after each read marker (at most UNREAD_CAP + 1), for the views to filter (SPEC.md
    §5.2)."""
    async def txn(db: asyncpg.Connection) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        convs = [r for r in await summaries_txn(db, user_id) if r["id"] > start]
        wanted = [r["id"] for r in convs if r["last_seq"] > after.get(r["id"], 0)]
        rows = await db.fetch(
            f"select {_ROW_COLUMNS} from unnest($1::bigint[], $2::bigint[]) p(conv_id, after)"
            " cross join lateral (select * from messages x where x.conv_id = p.conv_id"
            "   and x.seq > p.after order by x.seq limit $3) m order by m.conv_id, m.seq",
            wanted, [after.get(c, 0) for c in wanted], limit + 1,
        )
        return convs, rows
    # A message committed between the statements is at worst left for the live push.
    convs, rows = await store.run("sync", txn, transaction=False)
    by_conv: dict[int, list[Row]] = {}
    for r in rows:
        by_conv.setdefault(r["conv_id"], []).append(_row(r))
    markers = [(c["id"], c["read_seq"]) for c in convs if c["last_seq"] > c["read_seq"]]
    return convs, by_conv, await unread_rows(store, user_id, markers)


async def unread_rows(store: Store, user_id: int, markers: list[tuple[int, int]]) -> dict[int, list[Row]]:
    """Messages of others after each (conversation, read marker), at most UNREAD_CAP + 1 per conversation."""
    if not markers:
        return {}

    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            f"select {_ROW_COLUMNS} from unnest($1::bigint[], $2::bigint[]) p(conv_id, after)"
            " cross join lateral (select * from messages x where x.conv_id = p.conv_id and x.seq > p.after"
            "   and x.sender_id <> $3 order by x.seq limit $4) m",
            [c for c, _ in markers], [s for _, s in markers], user_id, UNREAD_CAP + 1,
        )
    found: dict[int, list[Row]] = {c: [] for c, _ in markers}
    for r in await store.run("unread", txn, transaction=False):
        found[r["conv_id"]].append(_row(r))
    return found
