"""Uploading a file in parts (MSG-4, IM-1; SPEC.md §5.18).

Frames are small (64 KiB), so a file goes up in parts into Postgres rows. An upload is
resumable: beginning the same file again (same account, type, size, digest and name)
returns the same upload and how much of it is stored, and a part sent again is ignored.
Ending it checks the stored bytes against the declared size, digest and type before the
file may be sent; an upload left unfinished is dropped after ``upload_expiry``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import Any

import asyncpg
import trio

from imserver import filetypes, visibility
from imserver.actions.base import Actor, Context, Tx, transact
from imserver.config import Settings
from imserver.store import attachments
from imserver.store.attachments import File
from protocol import ErrorCode, ProtocolError

DIGEST_PAGE = 64
"""Parts read per database round trip when a finished upload is read through for its digest."""


async def do_begin_upload(
    ctx: Context, actor: Actor, settings: Settings, *, mime: str, size: int, sha256: str, name: str
) -> File:
    """A new upload, or the unfinished or finished one of the same file.

    Error handling: BAD_REQUEST (``mime``) for a type not accepted; FILE_TOO_LARGE (``size``)
    above its type's limit; RATE_LIMITED (``size``) when a patient's or family member's quota
    of bytes per ``upload_window`` is used up.
    """
    limit = filetypes.limits(settings).get(mime)
    if limit is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"files of type {mime} are not accepted", field="mime")
    if size > limit:
        raise ProtocolError(ErrorCode.FILE_TOO_LARGE, f"at most {limit} bytes for {mime}", field="size")
    quota = settings.upload_quota if actor.role in visibility.MASKED_ROLES else None
    uploader = _account(actor)

    async def body(tx: Tx) -> File:
        await attachments.sweep_txn(tx.db, settings.upload_expiry)
        found = await attachments.same_file_txn(tx.db, uploader, mime, size, sha256, name)
        if found is not None:
            return found
        if quota is not None:
            wait = await attachments.quota_wait_txn(tx.db, uploader, size, quota, settings.upload_window)
            if wait:
                raise ProtocolError(ErrorCode.RATE_LIMITED, f"at most {quota} bytes per {settings.upload_window:g} s",
                                    field="size", retry_after_ms=math.ceil(wait * 1000))
        return await attachments.create_txn(
            tx.db, f"att_{secrets.token_urlsafe(18)}", uploader, mime, size, sha256, name
        )
    return await transact(ctx, actor, "upload_begin", body)


async def do_add_part(ctx: Context, actor: Actor, settings: Settings, file_id: str, offset: int, data: bytes) -> int:
    """Store the part at ``offset`` of the actor's upload; the bytes stored so far.

    Error handling: NOT_FOUND (``id``) for no such upload of theirs; BAD_REQUEST for a part
    that leaves a hole (``offset``) or runs past the declared size (``data``).
    """
    async def body(tx: Tx) -> int:
        file = await _own_txn(tx.db, actor, file_id, settings.upload_expiry)
        if offset > file.received:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"expected the part at offset {file.received}", field="offset")
        end = offset + len(data)
        if end > file.size:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"the file was declared {file.size} bytes long", field="data")
        if end <= file.received:  # sent again after a lost answer: already stored
            return file.received
        await attachments.add_part_txn(tx.db, file.id, file.received, data[file.received - offset:])
        return end
    return await transact(ctx, actor, "upload_part", body)


async def do_end_upload(ctx: Context, actor: Actor, settings: Settings, file_id: str) -> File:
    """Check a fully uploaded file and make it sendable; a file that fails is dropped, to be begun afresh.

    Error handling: NOT_FOUND (``id``) for no such upload of theirs; BAD_REQUEST for bytes
    missing (``id``), a digest that differs (``sha256``) or content not of its type (``mime``).
    """
    file = await transact(ctx, actor, "upload_end", lambda tx: _own_txn(tx.db, actor, file_id, settings.upload_expiry))
    if file.complete:  # the answer to an earlier upload_end was lost
        return file
    if file.received < file.size:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{file.received} of {file.size} bytes received", field="id")
    digest, head = await _read_through(ctx, file)
    refusal = None
    if digest != file.sha256:
        refusal = ProtocolError(ErrorCode.BAD_REQUEST, f"the bytes received have sha256 {digest}", field="sha256")
    elif not filetypes.matches(file.mime, head):
        refusal = ProtocolError(ErrorCode.BAD_REQUEST, f"the content is not {file.mime}", field="mime")
    if refusal is not None:  # it can never pass: begin afresh
        await attachments.discard(ctx.store, file.id)
        raise refusal
    await attachments.complete(ctx.store, file.id)
    return file


def _account(actor: Actor) -> int:
    assert actor.id is not None, "files are uploaded by accounts"
    return actor.id


async def _own_txn(db: asyncpg.Connection, actor: Actor, file_id: str, expiry: float) -> File:
    file = await attachments.own_upload_txn(db, file_id, _account(actor), expiry)
    if file is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such upload of yours (or it expired)", field="id")
    return file


async def _read_through(ctx: Context, file: File) -> tuple[str, bytes]:
    """The sha256 of a stored file and its first bytes, a page of parts at a time; hashing runs in a
    thread, so a large file does not stall the other connections."""
    digest = hashlib.sha256()
    head = b""
    start = 0
    while page := await attachments.parts(ctx.store, file.id, start, DIGEST_PAGE):
        chunks = [data for _, data in page]
        for chunk in chunks:
            if len(head) >= filetypes.HEAD:
                break
            head += chunk[:filetypes.HEAD - len(head)]
        await trio.to_thread.run_sync(_update, digest, chunks)
        start = page[-1][0] + len(page[-1][1])
    return digest.hexdigest(), head


def _update(digest: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        digest.update(chunk)
