"""Reading: ``sync``, ``history``, ``read``, ``receipt`` and ``convs`` (SPEC.md §5.2–§5.5).

Every page is filtered per viewer by ``views`` (DESIGN rule 4); the seqs a viewer may
not see are reported as hidden ranges, so they never look like gaps. Every answer fits
in one frame (SPEC.md §3.7): a page of messages ends where the next would not fit, with
``more``, and the conversations of ``sync`` and ``convs`` come a page at a time.
"""

from __future__ import annotations

import asyncpg
import msgspec

from imserver import views, visibility
from imserver.access import access_conversation, require_role, user_of
from imserver.connection import Connection, framed
from imserver.handlers.base import route
from imserver.model import Roster
from imserver.services import Services
from imserver.store import conversations, messages
from imserver.visibility import Viewer
from protocol import ErrorCode, ProtocolError
from protocol.frames import (
    Convs,
    ConvsAnswer,
    ConvSummary,
    History,
    HistoryAnswer,
    Read,
    ReadAnswer,
    ReadPush,
    Receipt,
    ReceiptAnswer,
    Sync,
    SyncAnswer,
    SyncEntry,
)


async def sync(s: Services, client: Connection, req: Sync) -> SyncAnswer:
    """The user's conversations after the cursor, each with its page of messages, as many as fit: the messages
    share the answer's bytes in the order of the conversations, and those not reached come with none and
    ``more`` (SPEC.md §5.2)."""
    user = user_of(client)
    after: dict[int, int] = {}
    for addr, seq in req.after.items():
        conv_id = (await access_conversation(s, client, addr)).conv_id if addr.startswith("u:") else int(addr[2:])
        after[conv_id] = seq
    pager: views.Pager[SyncEntry] = views.Pager(req.cursor, views.PAGE_BUDGET)
    convs, rows, unread = await messages.sync(s.store, user.id, after, req.limit, start=pager.number())
    await _people_in(s, [r for found in rows.values() for r in found])
    viewer = s.directory.viewer(user.id)
    reached = True
    for conv in convs:
        roster = await s.directory.roster(conv["id"])
        if roster is None:
            continue
        summary = await _summary(s, viewer, conv, roster, unread.get(conv["id"], []))
        found = [] if roster.banned else rows.get(conv["id"], [])
        entry = SyncEntry(**msgspec.structs.asdict(summary), messages=[], hidden=[], more=bool(found))
        if not pager.add((conv["id"],), entry, views.ENTRY_LISTS_BYTES):
            break
        if reached and found:
            entry.messages, entry.hidden, cut = views.page(
                found[:req.limit], viewer, roster, s.directory.cached_users(), pager.budget)
            entry.more = cut or len(found) > req.limit
            reached = not cut
    return SyncAnswer(rid=req.rid, convs=pager.items, cursor=pager.cursor)


async def history(s: Services, client: Connection, req: History) -> HistoryAnswer:
    """A page of one conversation, as much of it as fits, taken in the paging direction (SPEC.md §5.3)."""
    if req.before is not None and req.after is not None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "give before or after, not both", field="after")
    roster = await access_conversation(s, client, req.conv)
    rows, more = await messages.history(s.store, roster.conv_id, before=req.before, after=req.after, limit=req.limit)
    await _people_in(s, rows)
    viewer = s.directory.viewer(user_of(client).id)
    shown, hidden, cut = views.page(rows if req.after is not None else reversed(rows), viewer, roster,
                                    s.directory.cached_users(), views.Budget(views.PAGE_BUDGET))
    return HistoryAnswer(rid=req.rid, conv=roster.address, messages=shown, hidden=hidden, more=more or cut)


async def read(s: Services, client: Connection, req: Read) -> ReadAnswer:
    user = user_of(client)
    roster = await access_conversation(s, client, req.conv)
    read_seq = await conversations.mark_read(s.store, roster.conv_id, user.id, req.seq)
    if read_seq is None:  # removed from the conversation meanwhile
        raise ProtocolError(ErrorCode.FORBIDDEN)
    rows = (await messages.unread_rows(s.store, user.id, [(roster.conv_id, read_seq)]))[roster.conv_id]
    unread = views.unread(rows, s.directory.viewer(user.id), roster)
    s.hub.deliver([user.id], framed(ReadPush(conv=roster.address, read_seq=read_seq, unread=unread)), client)
    return ReadAnswer(rid=req.rid, conv=roster.address, read_seq=read_seq, unread=unread)


async def receipt(s: Services, client: Connection, req: Receipt) -> ReceiptAnswer:
    """The other person's read marker in a direct chat: a bot stops escalating a notice once it is read."""
    user = require_role(client, visibility.HOSPITAL, "only staff, bots and admins see read receipts")
    roster = await access_conversation(s, client, req.conv)
    if roster.kind == "group":
        raise ProtocolError(ErrorCode.BAD_REQUEST, "read receipts exist in direct chats only", field="conv")
    last_seq, markers = await conversations.read_markers(s.store, roster.conv_id)
    peers = [seq for uid, seq in markers.items() if uid != user.id]
    return ReceiptAnswer(rid=req.rid, conv=roster.address, last_seq=last_seq, read_seq=markers.get(user.id, 0),
                         peer_read_seq=peers[0] if peers else 0)


async def convs(s: Services, client: Connection, req: Convs) -> ConvsAnswer:
    user = user_of(client)
    viewer = s.directory.viewer(user.id)
    pager: views.Pager[ConvSummary] = views.Pager(req.cursor)
    found = [c for c in await conversations.summaries(s.store, user.id) if pager.wants((c["id"],))]
    unread = await messages.unread_rows(
        s.store, user.id, [(c["id"], c["read_seq"]) for c in found if c["last_seq"] > c["read_seq"]]
    )
    for conv in found:
        roster = await s.directory.roster(conv["id"])
        if roster is not None and not pager.add((conv["id"],), await _summary(s, viewer, conv, roster,
                                                                             unread.get(conv["id"], []))):
            break
    return ConvsAnswer(rid=req.rid, convs=pager.items, cursor=pager.cursor)


async def _summary(
    s: Services, viewer: Viewer, conv: asyncpg.Record, roster: Roster, unread_rows: list[messages.Row]
) -> ConvSummary:
    """A conversation as ``convs`` and ``sync`` show it (SPEC.md §5.5)."""
    peer = (await s.directory.users([conv["peer_id"]])).get(conv["peer_id"]) if conv["peer_id"] else None
    unread = 0 if roster.banned else views.unread(unread_rows, viewer, roster)
    return views.summary(viewer, roster, peer, conv["role"], conv["last_seq"], conv["read_seq"], unread)


async def _people_in(s: Services, rows: list[messages.Row]) -> None:
    """Load the senders and mention targets of these rows, members or not any more, before rendering."""
    ids = {r.sender_id for r in rows} | {r.only_user_id for r in rows if r.only_user_id is not None}
    await s.directory.users(list(ids))


ROUTES = dict([
    route(Sync).to(sync), route(History).to(history), route(Read).to(read), route(Receipt).to(receipt),
    route(Convs).to(convs),
])
