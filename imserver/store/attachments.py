"""SQL for attachments: uploads in parts, the stored files, and quotas (MSG-4, migration 0005)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from pgtrio.bridge import Store

_COLUMNS = "id, uploader_id, mime, size, name, sha256, state = 'complete' as complete, received"


@dataclass(frozen=True)
class File:
    """A stored or half-uploaded file."""

    id: str
    uploader_id: int
    mime: str
    size: int
    name: str
    sha256: str
    complete: bool
    received: int
    """Bytes stored from the start without holes; ``size`` once every part is in."""

    def ref(self) -> dict[str, Any]:
        """The attachment object of message bodies (SPEC.md §6.1): what the server stored, never what a client said."""
        found: dict[str, Any] = {"id": self.id, "mime": self.mime, "size": self.size}
        if self.name:
            found["name"] = self.name
        return found


def _file(row: asyncpg.Record) -> File:
    return File(
        row["id"], row["uploader_id"], row["mime"], row["size"], row["name"], row["sha256"], row["complete"],
        row["received"],
    )


async def sweep_txn(db: asyncpg.Connection, expiry: float) -> None:
    """Delete uploads left unfinished for ``expiry`` seconds, with their parts."""
    await db.execute(
        "delete from attachments where state = 'uploading' and touched_at < now() - make_interval(secs => $1)",
        expiry,
    )


async def same_file_txn(
    db: asyncpg.Connection, uploader_id: int, mime: str, size: int, sha256: str, name: str
) -> File | None:
    """This account's upload of the same file, finished or not, so that beginning again resumes it."""
    row = await db.fetchrow(
        f"select {_COLUMNS} from attachments"
        " where uploader_id = $1 and sha256 = $2 and size = $3 and mime = $4 and name = $5",
        uploader_id, sha256, size, mime, name,
    )
    return None if row is None else _file(row)


async def quota_wait_txn(db: asyncpg.Connection, uploader_id: int, size: int, quota: int, window: float) -> float:
    """Seconds until ``size`` more bytes fit in the account's quota of ``quota`` bytes begun per ``window``
    seconds; 0 if they fit now. Files leave the window in the order they were begun."""
    wait: float = await db.fetchval(
        """
        with mine as (
            select created_at, size from attachments
            where uploader_id = $1 and created_at > now() - make_interval(secs => $4)
        ), used as (
            select coalesce(sum(size), 0) as total from mine
        )
        select case when used.total + $2 <= $3 then 0 else coalesce((
            select extract(epoch from x.created_at + make_interval(secs => $4) - now())
            from (select created_at, sum(size) over (order by created_at rows unbounded preceding) as freed
                  from mine) x
            where x.freed >= used.total + $2 - $3 order by x.created_at limit 1
        ), $4) end
        from used
        """,
        uploader_id, size, quota, window,
    )
    return max(float(wait), 0.0)


async def create_txn(
    db: asyncpg.Connection, file_id: str, uploader_id: int, mime: str, size: int, sha256: str, name: str
) -> File:
    """A new upload; if the same file was begun meanwhile (another connection), that one."""
    row = await db.fetchrow(
        f"insert into attachments (id, uploader_id, mime, size, sha256, name) values ($1, $2, $3, $4, $5, $6)"
        f" on conflict (uploader_id, sha256, size, mime, name) do nothing returning {_COLUMNS}",
        file_id, uploader_id, mime, size, sha256, name,
    )
    if row is not None:
        return _file(row)
    found = await same_file_txn(db, uploader_id, mime, size, sha256, name)
    assert found is not None
    return found


async def own_upload_txn(db: asyncpg.Connection, file_id: str, uploader_id: int, expiry: float) -> File | None:
    """The uploader's own upload, locked until the transaction ends (parts of one file are stored one at a
    time); None if there is none, or it expired unfinished."""
    row = await db.fetchrow(
        f"select {_COLUMNS} from attachments where id = $1 and uploader_id = $2"
        " and (state = 'complete' or touched_at >= now() - make_interval(secs => $3)) for update",
        file_id, uploader_id, expiry,
    )
    return None if row is None else _file(row)


async def add_part_txn(db: asyncpg.Connection, file_id: str, offset: int, data: bytes) -> None:
    """Store the bytes at ``offset`` (= the bytes received so far) and count them."""
    await db.execute(
        'insert into attachment_parts (attachment_id, "offset", data) values ($1, $2, $3)', file_id, offset, data
    )
    await db.execute(
        "update attachments set received = received + $2, touched_at = now() where id = $1", file_id, len(data)
    )


async def parts(store: Store, file_id: str, start: int, limit: int) -> list[tuple[int, bytes]]:
    """Up to ``limit`` parts from the one at offset ``start`` on, in order: for reading a whole file through."""
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(
            'select "offset", data from attachment_parts where attachment_id = $1 and "offset" >= $2'
            ' order by "offset" limit $3',
            file_id, start, limit,
        )
    return [(r["offset"], r["data"]) for r in await store.run("attachment_parts", txn, transaction=False)]


async def read_txn(db: asyncpg.Connection, file_id: str, offset: int, length: int) -> bytes:
    """Bytes ``offset`` to ``offset + length`` of a file (fewer at its end)."""
    rows = await db.fetch(
        'select "offset", data from attachment_parts where attachment_id = $1 and "offset" < $3 and "offset" >= ('
        '  select max("offset") from attachment_parts where attachment_id = $1 and "offset" <= $2)'
        ' order by "offset"',
        file_id, offset, offset + length,
    )
    return window([(r["offset"], r["data"]) for r in rows], offset, length)


async def read(store: Store, file_id: str, offset: int, length: int) -> bytes:
    return await store.run("fetch", read_txn, file_id, offset, length, transaction=False)


def window(parts: Iterable[tuple[int, bytes]], offset: int, length: int) -> bytes:
    """The bytes ``offset`` to ``offset + length`` of consecutive ``(offset, data)`` parts that cover them."""
    end = offset + length
    return b"".join(data[max(offset - at, 0):end - at] for at, data in parts if at < end and at + len(data) > offset)


async def complete(store: Store, file_id: str) -> None:
    async def txn(db: asyncpg.Connection) -> None:
        await db.execute(
            "update attachments set state = 'complete', completed_at = now() where id = $1 and state = 'uploading'",
            file_id,
        )
    await store.run("attachment_complete", txn)


async def discard(store: Store, file_id: str) -> None:
    """Forget an upload that failed its final checks, with its parts."""
    async def txn(db: asyncpg.Connection) -> None:
        await db.execute("delete from attachments where id = $1 and state = 'uploading'", file_id)
    await store.run("attachment_discard", txn)


async def files(store: Store, ids: list[str]) -> dict[str, File]:
    async def txn(db: asyncpg.Connection) -> list[asyncpg.Record]:
        return await db.fetch(f"select {_COLUMNS} from attachments where id = any($1)", ids)
    return {r["id"]: _file(r) for r in await store.run("attachments", txn, transaction=False)}
