"""Sending messages (SPEC.md §5.1): every rule a message passes before the batch writer stores it.

Masking, mute and read-only family (IM-4, IM-9), mention-only messages (IM-10), the
sensitive-word filter (IM-11), banned groups (IM-15), files the sender may send (MSG-4)
and kinds with their bodies (MSG-1). The answer is pushed once the message is committed
(DESIGN rule 1); a resend of a stored message gets the first answer (DESIGN rule 2).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from imserver import visibility
from imserver.access import access_conversation, access_member, actor_of, conversation_id, user_of
from imserver.actions.audit import do_record
from imserver.connection import Connection
from imserver.handlers.base import route
from imserver.model import Roster, User
from imserver.services import Services
from imserver.store import messages
from imserver.visibility import Audience
from imserver.words import Verdict
from imserver.writer import Outcome
from protocol import ErrorCode, ProtocolError
from protocol.frames import QrSave, Send, SendAnswer, Sender


async def send(s: Services, client: Connection, req: Send) -> None:
    user = user_of(client)
    s.writer.admit(user.id)  # shed before any work when her queue is full (SPEC.md §7.6)
    try:
        draft, roster, blocked = await _draft(s, client, req)
    except ProtocolError:
        if await _answer_resend(s, client, user, req):  # the rules may have changed since the first try
            return None
        raise
    if blocked:
        if await _answer_resend(s, client, user, req):
            return None
        await do_record(s.actions, actor_of(client), "message_refused", conv_id=roster.conv_id,
                        detail={"cid": req.cid, "words": blocked})

    def done(outcome: Outcome) -> None:
        if isinstance(outcome, ProtocolError):
            client.fail(ProtocolError(outcome.code, outcome.detail, rid=req.rid))
        elif not outcome.answers(draft):  # the cid names another message of hers (SPEC.md §5.1, §5.2.1)
            client.fail(ProtocolError(ErrorCode.CID_REUSED, rid=req.rid, field="cid"))
        elif blocked:
            client.fail(ProtocolError(ErrorCode.SENSITIVE_WORDS, rid=req.rid))
        else:
            client.reply(SendAnswer(rid=req.rid, conv=roster.address, seq=outcome.seq, id=outcome.id, ts=outcome.ts,
                                    dup=outcome.dup))
    s.writer.submit(draft, done, client)
    return None


async def _answer_resend(s: Services, client: Connection, user: User, req: Send) -> bool:
    """A resend of a stored message gets the first answer, whatever the rules say now (DESIGN rule 2): the
    same client id and content to the same conversation; anything else is not a resend (SPEC.md §5.1)."""
    earlier = await messages.by_client_id(s.store, user.id, req.cid)
    if earlier is None:
        return False
    address, stored, audience = earlier
    if stored.conv_id != await conversation_id(s, client, req.conv):
        return False
    if stored.digest not in (None, request_digest(req)):
        raise ProtocolError(ErrorCode.CID_REUSED, field="cid")
    if audience == Audience.STAFF:
        client.fail(ProtocolError(ErrorCode.SENSITIVE_WORDS, rid=req.rid))
    else:
        client.reply(SendAnswer(rid=req.rid, conv=address, seq=stored.seq, id=stored.id, ts=stored.ts, dup=True))
    return True


async def _draft(s: Services, client: Connection, req: Send) -> tuple[messages.Draft, Roster, list[str]]:
    """The message to store, after every rule (IM-4, IM-9, IM-10, IM-11, IM-15); the words that refuse it."""
    user = user_of(client)
    text, body = content(s, req)
    roster = await access_conversation(s, client, req.conv)
    refusal = visibility.send_refusal(s.directory.viewer(user.id), roster)
    if refusal is not None:
        raise ProtocolError(refusal)
    only_id = None
    if req.only is not None:
        only_id = access_member(s, client, roster, req.only, field="only")
        if only_id == user.id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "a message only for yourself", field="only")
    files = None if body is None else await s.attachments.bind(user, s.kinds, req.kind, body)
    text, body, verdict = _screen(s, user, req.kind, text, body, files or [])
    audience = Audience.STAFF if verdict.blocked else Audience.ONLY if only_id else Audience.ALL
    if verdict.flagged and not verdict.blocked:
        await do_record(s.actions, actor_of(client), "message_flagged", conv_id=roster.conv_id,
                        detail={"cid": req.cid, "words": verdict.flagged})
    draft = messages.Draft(
        roster.conv_id, user.id, Sender(user.ref, user.display_name, str(user.role), user.title),
        req.kind, text, body, req.cid, audience=str(audience), only_user_id=only_id,
        flagged=() if verdict.blocked else tuple(verdict.flagged),
        attachments=tuple(dict.fromkeys(f["id"] for f in files)) if files else (), digest=request_digest(req),
    )
    return draft, roster, verdict.blocked


def request_digest(req: Send) -> bytes:
    """What the sender asked for, whatever the order of a body's keys: a resend has the same (SPEC.md §5.1)."""
    asked = msgspec.json.encode((req.kind, req.text, req.body, req.only), order="sorted")
    return hashlib.blake2b(asked, digest_size=16).digest()


def content(s: Services, req: Send | QrSave) -> tuple[str, dict[str, Any] | None]:
    """The text and the validated body of a message (or of a quick reply's template, SPEC.md §5.19)."""
    if req.kind != "text":
        body, text = s.kinds.validate(req.kind, req.body)
        return text, body
    if req.body is not None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "kind text takes text, not body", field="body")
    if not req.text or not req.text.strip():
        raise ProtocolError(ErrorCode.BAD_REQUEST, "text is empty", field="text")
    if len(req.text) > s.settings.max_text:
        raise ProtocolError(ErrorCode.TEXT_TOO_LONG, f"at most {s.settings.max_text} characters", field="text")
    return req.text, None


def _screen(
    s: Services, sender: User, kind: str, text: str, body: dict[str, Any] | None, files: list[dict[str, Any]]
) -> tuple[str, dict[str, Any] | None, Verdict]:
    """The sensitive-word filter (IM-11), applied to what patients and family send.

    Every string of the body is words, map keys included (a form's answers are keyed by what the patient
    typed); in the attachment maps of the body (``files``) only the file's name is: its id and type are not.
    """
    words = s.words
    if sender.role not in visibility.MASKED_ROLES or not words.size:
        return text, body, Verdict(text)
    if body is None:
        verdict = words.check(text)
        return verdict.text, None, verdict
    total = Verdict(text)
    shielded = {id(f) for f in files}

    def screen(value: Any) -> Any:
        if isinstance(value, str):
            found = words.check(value)
            for name in ("blocked", "flagged", "masked"):
                total.note(name, getattr(found, name))
            return found.text
        if isinstance(value, dict):
            if id(value) in shielded:
                return {k: screen(v) if k == "name" else v for k, v in value.items()}
            return {screen(k): screen(v) for k, v in value.items()}
        if isinstance(value, list):
            return [screen(v) for v in value]
        return value
    masked = screen(body)
    if total.clean:
        return text, body, total
    masked, fallback = s.kinds.validate(kind, masked)
    return fallback, masked, total


ROUTES = dict([route(Send).to(send)])
