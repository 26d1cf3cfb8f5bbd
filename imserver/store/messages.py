"""SQL for messages: the batched durable write, history pages and sync."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from imserver.store.bridge import Store
from imserver.store.conversations import address, summaries_txn, summary
from protocol.frames import Message, Sender


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
    origin: object = None
    """The connection it came from, which gets the ack instead of the push; not stored."""


@dataclass(frozen=True)
class Stored:
    """Where a draft ended up; ``dup`` if its client id had been used before."""

    conv_id: int
    seq: int
    id: int
    ts: int
    dup: bool


def millis(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


async def write_batch_txn(conn: asyncpg.Connection, drafts: list[Draft]) -> list[Stored]:
    """Store a batch in the caller's transaction; one result per draft, in order.

    Seqs are handed out by bumping ``conversations.last_seq`` in this same
    transaction, so a rolled-back batch leaves no gap. Drafts whose
    (sender, client id) is already stored get the stored result instead.
    Drafts must have distinct (sender, client id) pairs.
    """
    existing = {
        (r["sender_id"], r["client_id"]): Stored(r["conv_id"], r["seq"], r["id"], millis(r["created_at"]), True)
        for r in await conn.fetch(
            "select m.sender_id, m.client_id, m.conv_id, m.seq, m.id, m.created_at"
            " from messages m join unnest($1::bigint[], $2::text[]) k(s, c)"
            " on m.sender_id = k.s and m.client_id = k.c",
            [d.sender_id for d in drafts], [d.cid for d in drafts],
        )
    }
    fresh = [d for d in drafts if (d.sender_id, d.cid) not in existing]
    if fresh:
        counts = Counter(d.conv_id for d in fresh)
        conv_ids = sorted(counts)
        tops = await conn.fetch(
            "with locked as (select id from conversations where id = any($1) order by id for update)"
            " update conversations c set last_seq = c.last_seq + v.n"
            " from unnest($1::bigint[], $2::bigint[]) v(id, n) where c.id = v.id"
            " returning c.id, c.last_seq",
            conv_ids, [counts[c] for c in conv_ids],
        )
        next_seq = {r["id"]: r["last_seq"] - counts[r["id"]] + 1 for r in tops}
        seqs = []
        for d in fresh:
            seqs.append(next_seq[d.conv_id])
            next_seq[d.conv_id] += 1
        rows = await conn.fetch(
            "insert into messages (conv_id, seq, sender_id, kind, text, body, client_id)"
            " select * from unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],"
            " $5::text[], $6::jsonb[], $7::text[])"
            " returning conv_id, seq, id, created_at",
            [d.conv_id for d in fresh], seqs, [d.sender_id for d in fresh], [d.kind for d in fresh],
            [d.text for d in fresh], [d.body for d in fresh], [d.cid for d in fresh],
        )
        placed = {(r["conv_id"], r["seq"]): r for r in rows}
        for d, seq in zip(fresh, seqs, strict=True):
            r = placed[(d.conv_id, seq)]
            existing[(d.sender_id, d.cid)] = Stored(d.conv_id, seq, r["id"], millis(r["created_at"]), False)
    return [existing[(d.sender_id, d.cid)] for d in drafts]


_MESSAGE_COLUMNS = """
    m.conv_id, m.seq, m.id, m.kind, m.text, m.body, m.client_id, m.created_at,
    c.kind as conv_kind, u.id as sender_id, u.display_name, u.role
"""
_MESSAGE_JOINS = "join conversations c on c.id = m.conv_id join users u on u.id = m.sender_id"


def message(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"], conv=address(row["conv_kind"], row["conv_id"]), seq=row["seq"],
        sender=Sender(f"u{row['sender_id']}", row["display_name"], row["role"]),
        kind=row["kind"], text=row["text"], ts=millis(row["created_at"]),
        body=row["body"], cid=row["client_id"],
    )


async def history(
    store: Store, conv_id: int, *, before: int | None, after: int | None, limit: int
) -> tuple[list[Message], bool]:
    """One page, oldest first, and whether more lie further in the paging direction (SPEC.md §5.3)."""
    async def txn(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        if after is not None:
            return await conn.fetch(
                f"select {_MESSAGE_COLUMNS} from messages m {_MESSAGE_JOINS}"
                " where m.conv_id = $1 and m.seq > $2 order by m.seq limit $3",
                conv_id, after, limit + 1,
            )
        return await conn.fetch(
            f"select {_MESSAGE_COLUMNS} from messages m {_MESSAGE_JOINS}"
            " where m.conv_id = $1 and m.seq < $2 order by m.seq desc limit $3",
            conv_id, before if before is not None else 2**63 - 1, limit + 1,
        )
    rows = await store.run("history", txn, transaction=False)  # in paging direction, one extra row
    more = len(rows) > limit
    page = [message(r) for r in rows[:limit]]
    if after is None:
        page.reverse()
    return page, more


async def sync(store: Store, user_id: int, after: dict[int, int], limit: int) -> list[dict[str, Any]]:
    """Every conversation of the user with the messages after the given seqs (SPEC.md §5.2)."""
    async def txn(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        convs = await summaries_txn(conn, user_id)
        wanted = [r["id"] for r in convs if r["last_seq"] > after.get(r["id"], 0)]
        rows = await conn.fetch(
            f"select {_MESSAGE_COLUMNS} from unnest($1::bigint[], $2::bigint[]) p(conv_id, after)"
            " cross join lateral (select * from messages x where x.conv_id = p.conv_id"
            "   and x.seq > p.after order by x.seq limit $3) m"
            f" {_MESSAGE_JOINS} order by m.conv_id, m.seq",
            wanted, [after.get(c, 0) for c in wanted], limit + 1,
        )
        return convs, rows
    # A message committed between the two statements is at worst left for the live push.
    convs, rows = await store.run("sync", txn, transaction=False)
    by_conv: dict[int, list[Message]] = {}
    for r in rows:
        by_conv.setdefault(r["conv_id"], []).append(message(r))
    result = []
    for conv in convs:
        messages = by_conv.get(conv["id"], [])
        entry = summary(conv)
        entry["messages"] = messages[:limit]
        entry["more"] = len(messages) > limit
        result.append(entry)
    return result
