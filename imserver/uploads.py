"""Upload and fetch of attachments over the protocol (MSG-4, IM-1; SPEC.md §5.18).

Frames are small (64 KiB), so a file goes up in parts into Postgres rows and comes
down in ranges. An upload is resumable: beginning the same file again (same account,
type, size, digest and name) returns the same upload and how much of it is stored,
and a part sent again is ignored. ``upload_end`` checks the stored bytes against the
declared size, digest and type before the file may be sent; an upload left
unfinished is dropped after ``upload_expiry``. Who may fetch is decided by
``imserver.attachments``; a staff read of a patient's file is audited (SEC-1).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import Any
from weakref import WeakKeyDictionary

import asyncpg
import trio

from imserver import filetypes, visibility
from imserver.actions.audit import do_read_file
from imserver.connection import Connection
from imserver.handlers import Handler, Handlers, Reply, session_of
from imserver.store import attachments
from imserver.store.attachments import File
from protocol import ErrorCode, ProtocolError
from protocol.frames import Fetch, Request, UploadBegin, UploadEnd, UploadPart

DIGEST_PAGE = 64
"""Parts read per database round trip when a finished upload is read through for its digest."""


class AttachmentHandlers:
    def __init__(self, core: Handlers) -> None:
        self.core = core
        self.limits = filetypes.limits(core.settings)  # a bad upload_types stops the server at start
        self._audited: WeakKeyDictionary[Connection, set[str]] = WeakKeyDictionary()
        """The patients' files each staff connection has read, and whose first read is in the audit log."""
        self.table: dict[type[Request], Handler] = {
            UploadBegin: self.upload_begin, UploadPart: self.upload_part, UploadEnd: self.upload_end,
            Fetch: self.fetch,
        }

    async def upload_begin(self, conn: Connection, req: UploadBegin) -> Reply:
        user = session_of(conn).user
        s = self.core.settings
        limit = self.limits.get(req.mime)
        if limit is None:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"files of type {req.mime} are not accepted", rid=req.rid,
                                field="mime")
        if req.size > limit:
            raise ProtocolError(ErrorCode.FILE_TOO_LARGE, f"at most {limit} bytes for {req.mime}", rid=req.rid,
                                field="size")
        quota = s.upload_quota if user.role in visibility.MASKED_ROLES else None

        async def txn(c: asyncpg.Connection) -> File:
            await attachments.sweep_txn(c, s.upload_expiry)
            found = await attachments.same_file_txn(c, user.id, req.mime, req.size, req.sha256, req.name)
            if found is not None:
                return found
            if quota is not None:
                wait = await attachments.quota_wait_txn(c, user.id, req.size, quota, s.upload_window)
                if wait:
                    raise ProtocolError(ErrorCode.RATE_LIMITED, f"at most {quota} bytes per {s.upload_window:g} s",
                                        rid=req.rid, field="size", retry_after_ms=math.ceil(wait * 1000))
            return await attachments.create_txn(
                c, f"att_{secrets.token_urlsafe(18)}", user.id, req.mime, req.size, req.sha256, req.name
            )
        file = await self.core.store.run("upload_begin", txn)
        return {"id": file.id, "received": file.received}

    async def upload_part(self, conn: Connection, req: UploadPart) -> Reply:
        user = session_of(conn).user

        async def txn(c: asyncpg.Connection) -> int:
            file = await self._own(c, user.id, req.id, req.rid)
            if req.offset > file.received:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"expected the part at offset {file.received}",
                                    rid=req.rid, field="offset")
            end = req.offset + len(req.data)
            if end > file.size:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"the file was declared {file.size} bytes long",
                                    rid=req.rid, field="data")
            if end <= file.received:  # sent again after a lost answer: already stored
                return file.received
            await attachments.add_part_txn(c, file.id, file.received, req.data[file.received - req.offset:])
            return end
        return {"id": req.id, "received": await self.core.store.run("upload_part", txn)}

    async def upload_end(self, conn: Connection, req: UploadEnd) -> Reply:
        user = session_of(conn).user
        file = await self.core.store.run("upload_end", self._own, user.id, req.id, req.rid)
        if file.complete:  # the answer to an earlier upload_end was lost
            return file.ref()
        if file.received < file.size:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{file.received} of {file.size} bytes received",
                                rid=req.rid, field="id")
        digest, head = await self._read_through(file)
        refusal = None
        if digest != file.sha256:
            refusal = ProtocolError(ErrorCode.BAD_REQUEST, f"the bytes received have sha256 {digest}", rid=req.rid,
                                    field="sha256")
        elif not filetypes.matches(file.mime, head):
            refusal = ProtocolError(ErrorCode.BAD_REQUEST, f"the content is not {file.mime}", rid=req.rid,
                                    field="mime")
        if refusal is not None:  # it can never pass: begin afresh
            await attachments.discard(self.core.store, file.id)
            raise refusal
        await attachments.complete(self.core.store, file.id)
        return file.ref()

    async def _own(self, c: asyncpg.Connection, user_id: int, file_id: str, rid: int) -> File:
        file = await attachments.own_upload_txn(c, file_id, user_id, self.core.settings.upload_expiry)
        if file is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such upload of yours (or it expired)", rid=rid, field="id")
        return file

    async def _read_through(self, file: File) -> tuple[str, bytes]:
        """The sha256 of a stored file and its first bytes, a page of parts at a time; hashing runs in a
        thread, so a large file does not stall the other connections."""
        digest = hashlib.sha256()
        head = b""
        start = 0
        while page := await attachments.parts(self.core.store, file.id, start, DIGEST_PAGE):
            chunks = [data for _, data in page]
            for chunk in chunks:
                if len(head) >= filetypes.HEAD:
                    break
                head += chunk[:filetypes.HEAD - len(head)]
            await trio.to_thread.run_sync(_update, digest, chunks)
            start = page[-1][0] + len(page[-1][1])
        return digest.hexdigest(), head

    async def fetch(self, conn: Connection, req: Fetch) -> Reply:
        user = session_of(conn).user
        file = (await attachments.files(self.core.store, [req.id])).get(req.id)
        grant = None if file is None else await self.core.attachments.access(user, file)
        if file is None or grant is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such file that you may see", rid=req.rid, field="id")
        if req.offset >= file.size:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"the file has {file.size} bytes", rid=req.rid,
                                field="offset")

        if await self._audits(conn, file):  # the read and its record are one transaction (SEC-1)
            data = await do_read_file(self.core.ctx, self.core.actor(conn), file, req.offset, req.length,
                                      conv_id=grant.conv_id, via=grant.via)
            self._audited.setdefault(conn, set()).add(file.id)
        else:
            data = await attachments.read(self.core.store, file.id, req.offset, req.length)
        return {"id": file.id, "mime": file.mime, "size": file.size, "sha256": file.sha256, "offset": req.offset,
                "data": data}

    async def _audits(self, conn: Connection, file: File) -> bool:
        """Is this the first read, on this connection, of a patient's or family member's file by staff?"""
        user = session_of(conn).user
        if user.role not in visibility.CARE_TEAM or file.id in self._audited.get(conn, ()):
            return False
        uploader = (await self.core.directory.users([file.uploader_id])).get(file.uploader_id)
        return uploader is None or uploader.role in visibility.MASKED_ROLES


def _update(digest: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        digest.update(chunk)
