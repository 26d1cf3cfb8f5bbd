"""Files over the protocol: ``upload_begin``, ``upload_part``, ``upload_end`` and ``fetch`` (MSG-4, IM-1;
SPEC.md §5.18).

Uploading is done by the actions (``imserver.actions.uploads``); a file comes down in ranges.
Who may fetch it is decided by ``imserver.attachments``; a staff member's first read of a
patient's file on a connection is audited (SEC-1).
"""

from __future__ import annotations

from imserver import visibility
from imserver.access import actor_of, user_of
from imserver.actions.audit import do_read_file
from imserver.actions.uploads import do_add_part, do_begin_upload, do_end_upload
from imserver.connection import Connection
from imserver.handlers.base import route
from imserver.services import Services
from imserver.store import attachments
from imserver.store.attachments import File
from protocol import ErrorCode, ProtocolError
from protocol.frames import Fetch, FetchAnswer, UploadBegin, UploadEnd, UploadEndAnswer, UploadPart, UploadProgress


async def upload_begin(s: Services, client: Connection, req: UploadBegin) -> UploadProgress:
    file = await do_begin_upload(s.actions, actor_of(client), s.settings, mime=req.mime, size=req.size,
                                 sha256=req.sha256, name=req.name)
    return UploadProgress(rid=req.rid, id=file.id, received=file.received)


async def upload_part(s: Services, client: Connection, req: UploadPart) -> UploadProgress:
    received = await do_add_part(s.actions, actor_of(client), s.settings, req.id, req.offset, req.data)
    return UploadProgress(rid=req.rid, id=req.id, received=received)


async def upload_end(s: Services, client: Connection, req: UploadEnd) -> UploadEndAnswer:
    file = await do_end_upload(s.actions, actor_of(client), s.settings, req.id)
    return UploadEndAnswer(rid=req.rid, **file.ref())  # the attachment object of message bodies


async def fetch(s: Services, client: Connection, req: Fetch) -> FetchAnswer:
    user = user_of(client)
    file = (await attachments.files(s.store, [req.id])).get(req.id)
    grant = None if file is None else await s.attachments.access(user, file)
    if file is None or grant is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such file that you may see", field="id")
    if req.offset >= file.size:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"the file has {file.size} bytes", field="offset")
    if await _audits(s, client, file):  # the read and its record are one transaction (SEC-1)
        data = await do_read_file(s.actions, actor_of(client), file, req.offset, req.length, conv_id=grant.conv_id,
                                  via=grant.via)
        s.files_read.setdefault(client, set()).add(file.id)
    else:
        data = await attachments.read(s.store, file.id, req.offset, req.length)
    return FetchAnswer(rid=req.rid, id=file.id, mime=file.mime, size=file.size, sha256=file.sha256, offset=req.offset,
                       data=data)


async def _audits(s: Services, client: Connection, file: File) -> bool:
    """Is this the first read, on this connection, of a patient's or family member's file by staff?"""
    if user_of(client).role not in visibility.CARE_TEAM or file.id in s.files_read.get(client, ()):
        return False
    uploader = (await s.directory.users([file.uploader_id])).get(file.uploader_id)
    return uploader is None or uploader.role in visibility.MASKED_ROLES


ROUTES = dict([
    route(UploadBegin).to(upload_begin), route(UploadPart).to(upload_part), route(UploadEnd).to(upload_end),
    route(Fetch).to(fetch),
])
